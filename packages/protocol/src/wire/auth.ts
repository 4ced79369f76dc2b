/**
 * The authentication API on the wire: `POST /v1/auth/challenge` and `POST /v1/auth/login`, and the
 * exact bytes a device signs. Shared by the server (route schemas) and the SDK (request building
 * and response validation). See docs/protocol.md.
 */
import { Type, type Static } from '@sinclair/typebox';
import { NodeIdSchema } from '../hlc.js';
import { ImeiSchema, UsernameSchema } from '../ids.js';
import { KeyRecordSchema } from '../key-record.js';
import { Base64Key32Schema, PasswordInputSchema, RoleSchema, TokenSchema } from './common.js';
import { deviceSignedFields, signedMessageBytes, type DeviceSignedInput } from './device-signed.js';

export const UserSummarySchema = Type.Object({ username: Type.String(), role: RoleSchema }, { additionalProperties: false });

export const ChallengeBodySchema = Type.Object({ imei: ImeiSchema }, { additionalProperties: false });

export const ChallengeResponseSchema = Type.Object(
  {
    /** Single-use nonce (32 random bytes, base64url) to sign into the login message. */
    challenge: TokenSchema,
    expiresAt: Type.String(),
    /**
     * The answering server's id (the one it prints at start). Optional so that servers that do not
     * send it yet still answer validly; when present, the SDK refuses to log in (or sign up) if it
     * is not the id the phone configured for this server (TRANSPORT_SERVER_ID_MISMATCH), before the
     * password or a key is sent, and `Device.identifyServer` reads it for an app's "add server".
     */
    serverId: Type.Optional(NodeIdSchema),
  },
  { additionalProperties: false },
);

export const LoginBodySchema = Type.Object(
  {
    username: UsernameSchema,
    password: PasswordInputSchema,
    // The device proof, signed over `loginSignatureMessage(...)`.
    ...deviceSignedFields,
    /** Flow 2/4: the DB key the device already holds (base64, 32 bytes) and its record. */
    dbKey: Type.Optional(Base64Key32Schema),
    keyRecord: Type.Optional(KeyRecordSchema),
    /**
     * Admin accounts only: the current 6-digit TOTP code or an unused recovery code
     * (`xxxx-xxxx-xxxx-xxxx`). Field workers and supervisors never send it.
     */
    totp: Type.Optional(Type.String({ minLength: 6, maxLength: 19, pattern: '^([0-9]{6}|[A-Za-z2-7]{4}(-?[A-Za-z2-7]{4}){3})$' })),
  },
  { additionalProperties: false },
);

export const LoginResponseSchema = Type.Object(
  {
    /** Bearer token (shown once; the server keeps only its SHA-256). */
    token: TokenSchema,
    expiresAt: Type.String(),
    user: UserSummarySchema,
    key: Type.Object(
      {
        record: KeyRecordSchema,
        /** The winning DB key, base64 of 32 bytes. */
        dbKey: Base64Key32Schema,
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/**
 * `POST /v1/auth/password`: an invited user (or one whose password an admin reset) chooses their
 * password with the single-use token the admin was given. No session; rate-limited like logins.
 */
export const SetPasswordBodySchema = Type.Object({ resetToken: TokenSchema, password: PasswordInputSchema }, { additionalProperties: false });
export const SetPasswordResponseSchema = Type.Object({ user: UserSummarySchema }, { additionalProperties: false });

export type ChallengeBody = Static<typeof ChallengeBodySchema>;
export type SetPasswordBody = Static<typeof SetPasswordBodySchema>;
export type SetPasswordResponse = Static<typeof SetPasswordResponseSchema>;
export type ChallengeResponse = Static<typeof ChallengeResponseSchema>;
export type LoginBody = Static<typeof LoginBodySchema>;
export type LoginResponse = Static<typeof LoginResponseSchema>;

/** Domain label of the login signature, so a device signature can't be replayed as anything else. */
export const LOGIN_SIGNATURE_LABEL = 'fieldvault/login/v1';

export interface LoginSignatureInput extends DeviceSignedInput {
  /** Key id of the DB key offered with this login, or '' when none is offered. */
  readonly keyId: string;
}

/**
 * The exact bytes a device signs to log in: the label, then each field name and value, in the
 * canonical length-prefixed encoding of {@link signedMessageBytes} (both sides build them identically).
 */
export function loginSignatureMessage(input: LoginSignatureInput): Uint8Array {
  return signedMessageBytes([
    LOGIN_SIGNATURE_LABEL,
    'challenge',
    input.challenge,
    'username',
    input.username,
    'imei',
    input.imei,
    'keyId',
    input.keyId,
  ]);
}
