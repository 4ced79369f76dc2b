import { Type, type TSchema } from '@sinclair/typebox';
import { errorCatalogue } from '@fieldvault/protocol';

/** Wire shape of every error response (protocol's `toErrorBody`). */
export const ErrorBodySchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.Union(Object.keys(errorCatalogue).map((c) => Type.Literal(c))),
    error: Type.String(),
    message: Type.String(),
  },
  { additionalProperties: false, $id: 'ErrorBody' },
);

/** Error responses every route declares, so even an error body is serialised through a schema. */
export const errorResponses = {
  '4xx': ErrorBodySchema,
  '5xx': ErrorBodySchema,
} as const;

/** Response map for a route: its success schemas plus the error body. */
export function responses<T extends Record<number, TSchema>>(ok: T): T & typeof errorResponses {
  return { ...ok, ...errorResponses };
}

/** An opaque bearer/reset token: 32 random bytes, base64url without padding. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
export const TokenSchema = Type.String({ pattern: TOKEN_PATTERN.source });

/** Canonical padded base64 of exactly 32 bytes (keys). */
export const Base64Key32Schema = Type.String({ pattern: '^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$' });
/** Canonical padded base64 of exactly 64 bytes (Ed25519 signatures). */
export const Base64Sig64Schema = Type.String({ pattern: '^[A-Za-z0-9+/]{85}[AQgw]==$' });

export const IsoTimeSchema = Type.String({ description: 'ISO 8601 UTC time' });

export const EmptyObjectSchema = Type.Object({}, { additionalProperties: false });

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}
