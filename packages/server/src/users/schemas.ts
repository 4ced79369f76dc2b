import { Type } from '@sinclair/typebox';
import { UsernameSchema } from '@fieldvault/protocol';
import { ROLES, type Role, type UserRecord } from '../couch/records.js';
import type { LoginLock } from './credentials.js';
import { TokenSchema, iso, isoOrNull } from '../http/schemas.js';
import { PasswordInputSchema } from '@fieldvault/protocol';

/**
 * An `enum` rather than a union of literals: a wrong role is then reported with the allowed
 * values ("must be equal to one of the allowed values: field_worker, supervisor, admin") instead
 * of "must be equal to constant".
 */
export const RoleSchema = Type.Unsafe<Role>({ type: 'string', enum: [...ROLES] });

/** A login lock in force: `until` is null for a hard lock (ends only with a password reset). */
export const LoginLockViewSchema = Type.Object(
  { failures: Type.Integer(), until: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

/** A password as typed: bounded in UTF-16 units here, the policy counts code points after NFKC. */

export { PasswordInputSchema };

export const UserViewSchema = Type.Object(
  {
    username: Type.String(),
    role: RoleSchema,
    disabled: Type.Boolean(),
    /** False until the invitation was used to set a password (or after an admin reset). */
    hasPassword: Type.Boolean(),
    createdAt: Type.String(),
    createdBy: Type.String(),
    updatedAt: Type.String(),
    passwordChangedAt: Type.Union([Type.String(), Type.Null()]),
    /** Admin two-factor state: `none`, `pending` (enrolment started, not confirmed) or `enrolled`. */
    totp: Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('enrolled')]),
    /**
     * Present where the route looked it up (user routes): the login lock after repeated failed
     * logins, or null when the account is not locked.
     */
    lock: Type.Optional(Type.Union([LoginLockViewSchema, Type.Null()])),
  },
  { additionalProperties: false },
);

export const ResetTokenViewSchema = Type.Object(
  {
    /** Hand to the user out of band; it is shown once and stored only as a hash. */
    token: TokenSchema,
    expiresAt: Type.String(),
  },
  { additionalProperties: false },
);

export const SetupAdminBodySchema = Type.Object(
  { setupToken: Type.String({ minLength: 1, maxLength: 256 }), username: UsernameSchema, password: PasswordInputSchema },
  { additionalProperties: false },
);

export const CreateUserBodySchema = Type.Object({ username: UsernameSchema, role: RoleSchema }, { additionalProperties: false });

export const UpdateUserBodySchema = Type.Object(
  { role: Type.Optional(RoleSchema), disabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);

export const UsernameParamsSchema = Type.Object({ username: UsernameSchema }, { additionalProperties: false });

export const ListQuerySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[a-z0-9._-]+$' })),
  },
  { additionalProperties: false },
);

export const SetPasswordBodySchema = Type.Object(
  { resetToken: TokenSchema, password: PasswordInputSchema },
  { additionalProperties: false },
);

/** The public view of a user; `lock` is included when the caller looked it up (null: not locked). */
export function userView(u: UserRecord, lock?: LoginLock | null): {
  username: string;
  role: UserRecord['role'];
  disabled: boolean;
  hasPassword: boolean;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  passwordChangedAt: string | null;
  totp: 'none' | 'pending' | 'enrolled';
  lock?: { failures: number; until: string | null } | null;
} {
  return {
    username: u.username,
    role: u.role,
    disabled: u.disabled,
    hasPassword: u.passwordHash !== null,
    createdAt: iso(u.createdAt),
    createdBy: u.createdBy,
    updatedAt: iso(u.updatedAt),
    passwordChangedAt: isoOrNull(u.passwordChangedAt),
    totp: u.totp === null ? 'none' : u.totp.confirmedAt === null ? 'pending' : 'enrolled',
    ...(lock === undefined ? {} : { lock: lock === null ? null : { failures: lock.failures, until: isoOrNull(lock.until) } }),
  };
}
