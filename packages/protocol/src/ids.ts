import { Type } from '@sinclair/typebox';

/** A device IMEI: exactly 15 decimal digits. Public (printed on the box): an identifier, not a secret. */
export const IMEI_PATTERN = /^[0-9]{15}$/;

/**
 * A username as it appears in records (`createdBy`, `by`): lowercase, 1–64 characters, starting
 * with a letter or digit, then letters, digits, `.`, `_`, `-`.
 */
export const USERNAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A lowercase RFC 4122 version-4 UUID (record and photo ids are generated on the client). */
export const UUID_V4_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A lowercase SHA-256 digest in hex. */
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;

export const ImeiSchema = Type.String({ pattern: IMEI_PATTERN.source, description: 'Device IMEI, 15 digits' });
export const UsernameSchema = Type.String({ pattern: USERNAME_PATTERN.source, maxLength: 64 });
export const UuidSchema = Type.String({ pattern: UUID_V4_PATTERN.source });
export const Sha256HexSchema = Type.String({ pattern: SHA256_HEX_PATTERN.source });
