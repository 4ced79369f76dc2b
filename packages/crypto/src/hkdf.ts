import { createHmac, hkdfSync } from 'node:crypto';
import { FieldvaultError } from '@fieldvault/protocol';
import { KEY_LENGTH, copyBytes, isBytes, viewBytes } from './bytes.js';
import { utf8 } from './encoding.js';

/** HKDF-SHA-256 can produce at most 255 blocks of 32 bytes (RFC 5869 §2.3). */
export const HKDF_MAX_LENGTH = 255 * 32;

const EMPTY = new Uint8Array(0);

/**
 * HKDF-SHA-256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes.
 * @throws INPUT_INVALID when an argument is not bytes or `length` is outside 1..8160.
 */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array | string, length: number): Uint8Array {
  if (!isBytes(ikm) || !isBytes(salt)) throw new FieldvaultError('INPUT_INVALID', { detail: 'hkdf ikm and salt must be Uint8Array' });
  if (!Number.isInteger(length) || length < 1 || length > HKDF_MAX_LENGTH) {
    throw new FieldvaultError('INPUT_INVALID', { detail: `hkdf length must be 1..${HKDF_MAX_LENGTH}` });
  }
  const infoBytes = typeof info === 'string' ? utf8(info) : info;
  return new Uint8Array(hkdfSync('sha256', ikm, salt, infoBytes, length));
}

/** HMAC-SHA-256. */
export function hmacSha256(key: Uint8Array, data: Uint8Array | string): Uint8Array {
  return copyBytes(viewBytes(createHmac('sha256', key).update(data).digest()));
}

/**
 * A 32-byte sub-key for one purpose, named by a fixed label from `labels`. Deriving instead of
 * reusing the raw key keeps a break of one use (or a nonce collision there) out of every other.
 */
export function deriveSubkey(key: Uint8Array, label: string, salt: Uint8Array = EMPTY): Uint8Array {
  return hkdf(key, salt, label, KEY_LENGTH);
}
