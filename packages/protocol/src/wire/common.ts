/** Wire building blocks shared by every route and by the SDK's response validation. */
import { Type } from '@sinclair/typebox';
import { errorCatalogue } from '../errors.js';

/** Roles, checked by the server on every route; a client never decides what it may do. */
export const ROLES = ['field_worker', 'supervisor', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export const RoleSchema = Type.Union(ROLES.map((r) => Type.Literal(r)));

/** An opaque bearer/reset/challenge token: 32 random bytes, base64url without padding. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
export const TokenSchema = Type.String({ pattern: TOKEN_PATTERN.source });

/** Canonical padded base64 of exactly 32 bytes (keys). */
export const Base64Key32Schema = Type.String({ pattern: '^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$' });
/** Canonical padded base64 of exactly 64 bytes (Ed25519 signatures). */
export const Base64Sig64Schema = Type.String({ pattern: '^[A-Za-z0-9+/]{85}[AQgw]==$' });

export const IsoTimeSchema = Type.String({ description: 'ISO 8601 UTC time' });

/** Passwords travel as typed; the policy (length after NFKC, blocklist) is applied by the receiver. */
export const PasswordInputSchema = Type.String({ minLength: 1, maxLength: 1024 });

/** Wire shape of every error response (`toErrorBody`). */
export const ErrorBodySchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.Union(Object.keys(errorCatalogue).map((c) => Type.Literal(c))),
    error: Type.String(),
    message: Type.String(),
  },
  { additionalProperties: false, $id: 'ErrorBody' },
);
