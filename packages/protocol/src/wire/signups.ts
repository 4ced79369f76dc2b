/**
 * Pending sign-ups on the wire (issue 7): an unverified phone user asks a server for an account
 * (`POST /v1/signups`) and later asks how the request stands (`POST /v1/signups/status`). Both
 * are unauthenticated but device-signed like the login: a fresh challenge from
 * `POST /v1/auth/challenge`, signed with the device key over {@link signupSignatureMessage}.
 * Shared by the server (route schemas) and the SDK. See docs/protocol.md.
 */
import { Type, type Static } from '@sinclair/typebox';
import { UsernameSchema } from '../ids.js';
import { IsoTimeSchema, PasswordInputSchema } from './common.js';
import { deviceSignedFields, signedMessageBytes, type DeviceSignedInput } from './device-signed.js';
import { PUSH_MAX_RECORDS_CEILING, PushResultSchema } from './sync.js';

/** The two signed sign-up calls; the action is part of the signed bytes so one can't stand for the other. */
export const SIGNUP_ACTIONS = ['request', 'status'] as const;
export type SignupAction = (typeof SIGNUP_ACTIONS)[number];

/** Where a sign-up request stands: waiting for an admin, approved (log in online now) or rejected. */
export const SIGNUP_STATUSES = ['pending', 'approved', 'rejected'] as const;
export type SignupStatus = (typeof SIGNUP_STATUSES)[number];
export const SignupStatusSchema = Type.Union(SIGNUP_STATUSES.map((s) => Type.Literal(s)));

/** The device proof of both sign-up calls, signed over `signupSignatureMessage(...)`. */
const deviceProof = { username: UsernameSchema, ...deviceSignedFields };

/**
 * `POST /v1/signups` body. `password` is the one the user chose on the phone; the server keeps
 * only its Argon2id hash. `records` are the user's own unverified records: each is validated on
 * its own (like a push) and kept in quarantine until an admin approves the request.
 */
export const SignupRequestBodySchema = Type.Object(
  {
    ...deviceProof,
    password: PasswordInputSchema,
    records: Type.Optional(Type.Array(Type.Unknown(), { maxItems: PUSH_MAX_RECORDS_CEILING })),
  },
  { additionalProperties: false },
);
export type SignupRequestBody = Static<typeof SignupRequestBodySchema>;

export const SignupRequestResponseSchema = Type.Object(
  {
    status: SignupStatusSchema,
    requestedAt: IsoTimeSchema,
    /** Records in quarantine for this request after this call. */
    quarantined: Type.Integer({ minimum: 0 }),
    /** One result per record sent, in order (as for a push). */
    results: Type.Array(PushResultSchema, { maxItems: PUSH_MAX_RECORDS_CEILING }),
  },
  { additionalProperties: false },
);
export type SignupRequestResponse = Static<typeof SignupRequestResponseSchema>;

/** `POST /v1/signups/status` body: the same device proof, no password. */
export const SignupStatusBodySchema = Type.Object(deviceProof, { additionalProperties: false });
export type SignupStatusBody = Static<typeof SignupStatusBodySchema>;

export const SignupStatusResponseSchema = Type.Object(
  {
    status: SignupStatusSchema,
    requestedAt: IsoTimeSchema,
    decidedAt: Type.Union([IsoTimeSchema, Type.Null()]),
  },
  { additionalProperties: false },
);
export type SignupStatusResponse = Static<typeof SignupStatusResponseSchema>;

/** Domain label of sign-up signatures, distinct from the login's. */
export const SIGNUP_SIGNATURE_LABEL = 'fieldvault/signup/v1';

export interface SignupSignatureInput extends DeviceSignedInput {
  readonly action: SignupAction;
}

/**
 * The exact bytes a device signs for a sign-up call: the label, then each field name and value, in
 * the login's canonical encoding ({@link signedMessageBytes}).
 */
export function signupSignatureMessage(input: SignupSignatureInput): Uint8Array {
  return signedMessageBytes([SIGNUP_SIGNATURE_LABEL, 'action', input.action, 'challenge', input.challenge, 'username', input.username, 'imei', input.imei]);
}
