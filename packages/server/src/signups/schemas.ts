import { Type } from '@sinclair/typebox';
import { ChildRecordSchema, PushResultSchema, SignupStatusSchema, UsernameSchema, UUID_V4_PATTERN } from '@fieldvault/protocol';
import type { SignupRecord } from '../couch/records.js';
import { isoOrNull, iso } from '../http/schemas.js';
import { RoleSchema, UserViewSchema } from '../users/schemas.js';

/** What admins see of a request: never the password hash. */
export const SignupViewSchema = Type.Object(
  {
    username: Type.String(),
    status: SignupStatusSchema,
    imei: Type.String(),
    requestedAt: Type.String(),
    updatedAt: Type.String(),
    decidedAt: Type.Union([Type.String(), Type.Null()]),
    decidedBy: Type.Union([Type.String(), Type.Null()]),
    role: Type.Union([RoleSchema, Type.Null()]),
    /** Records still in quarantine for this request. */
    records: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export const SignupParamsSchema = Type.Object({ username: UsernameSchema }, { additionalProperties: false });

export const SignupListQuerySchema = Type.Object(
  {
    status: Type.Optional(SignupStatusSchema),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    cursor: Type.Optional(UsernameSchema),
  },
  { additionalProperties: false },
);

export const SignupListResponseSchema = Type.Object(
  { signups: Type.Array(SignupViewSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

export const SignupShowQuerySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    /** Record id after which the page of quarantined records starts. */
    cursor: Type.Optional(Type.String({ pattern: UUID_V4_PATTERN.source })),
  },
  { additionalProperties: false },
);

export const SignupShowResponseSchema = Type.Object(
  {
    signup: SignupViewSchema,
    /** Quarantined records, in id order; visible to admins only. */
    records: Type.Array(
      Type.Object({ record: ChildRecordSchema, receivedAt: Type.String() }, { additionalProperties: false }),
    ),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

/** Admins only: the approved user's role; admin is refused (admins need TOTP enrolment). */
export const ApproveBodySchema = Type.Object(
  { role: Type.Optional(Type.Union([Type.Literal('field_worker'), Type.Literal('supervisor'), Type.Literal('admin')])) },
  { additionalProperties: false },
);

export const ApproveResponseSchema = Type.Object(
  {
    signup: SignupViewSchema,
    user: UserViewSchema,
    /** Records moved into the records database by this call. */
    moved: Type.Integer({ minimum: 0 }),
    /** Records that could not be moved (they stay in quarantine; approving again retries them). */
    failed: Type.Array(PushResultSchema),
  },
  { additionalProperties: false },
);

export const RejectResponseSchema = Type.Object(
  { signup: SignupViewSchema, deleted: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);

export function signupView(s: SignupRecord, records: number): {
  username: string;
  status: SignupRecord['status'];
  imei: string;
  requestedAt: string;
  updatedAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  role: SignupRecord['role'];
  records: number;
} {
  return {
    username: s.username,
    status: s.status,
    imei: s.imei,
    requestedAt: iso(s.requestedAt),
    updatedAt: iso(s.updatedAt),
    decidedAt: isoOrNull(s.decidedAt),
    decidedBy: s.decidedBy,
    role: s.role,
    records,
  };
}
