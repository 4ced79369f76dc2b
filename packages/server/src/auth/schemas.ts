import { Type } from '@sinclair/typebox';
import { ImeiSchema, KeyRecordSchema, UsernameSchema } from '@fieldvault/protocol';
import { Base64Key32Schema, Base64Sig64Schema, TokenSchema } from '../http/schemas.js';
import { UserSummarySchema } from '../sessions/plugin.js';
import { PasswordInputSchema } from '../users/schemas.js';

export const ChallengeBodySchema = Type.Object({ imei: ImeiSchema }, { additionalProperties: false });

export const ChallengeResponseSchema = Type.Object(
  {
    /** Single-use nonce (32 random bytes, base64url) to sign into the login message. */
    challenge: TokenSchema,
    expiresAt: Type.String(),
  },
  { additionalProperties: false },
);

export const LoginBodySchema = Type.Object(
  {
    username: UsernameSchema,
    password: PasswordInputSchema,
    imei: ImeiSchema,
    /** The device's Ed25519 public key, raw 32 bytes, base64. */
    devicePublicKey: Base64Key32Schema,
    challenge: TokenSchema,
    /** Ed25519 signature (64 bytes, base64) over `loginSignatureMessage(...)`. */
    signature: Base64Sig64Schema,
    /** Flow 2/4: the DB key the device already holds (base64, 32 bytes) and its record. */
    dbKey: Type.Optional(Base64Key32Schema),
    keyRecord: Type.Optional(KeyRecordSchema),
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

export { UsernameSchema };
