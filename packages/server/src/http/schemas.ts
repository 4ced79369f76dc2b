import { Type, type TSchema } from '@sinclair/typebox';
import { ErrorBodySchema } from '@fieldvault/protocol';

// Shared wire pieces come from protocol; re-exported so routes import one module.
export {
  Base64Key32Schema,
  Base64Sig64Schema,
  ErrorBodySchema,
  IsoTimeSchema,
  TOKEN_PATTERN,
  TokenSchema,
} from '@fieldvault/protocol';

/** Error responses every route declares, so even an error body is serialised through a schema. */
export const errorResponses = {
  '4xx': ErrorBodySchema,
  '5xx': ErrorBodySchema,
} as const;

/** Response map for a route: its success schemas plus the error body. */
export function responses<T extends Record<number, TSchema>>(ok: T): T & typeof errorResponses {
  return { ...ok, ...errorResponses };
}

export const EmptyObjectSchema = Type.Object({}, { additionalProperties: false });

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}
