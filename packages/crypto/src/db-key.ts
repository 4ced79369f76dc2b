import { KEY_LENGTH, assertKey, randomBytes } from './bytes.js';
import { toHex } from './encoding.js';
import { hmacSha256 } from './hkdf.js';
import { labels } from './labels.js';

/** A DB key is 32 bytes, used raw as the SQLCipher key. */
export const DB_KEY_LENGTH = KEY_LENGTH;

/** Shape of a key id: 32 lowercase hex characters. */
export const KEY_ID_PATTERN = /^[0-9a-f]{32}$/;

/** A new database key: 32 bytes from the OS CSPRNG. */
export function generateDbKey(): Uint8Array {
  return randomBytes(DB_KEY_LENGTH);
}

/**
 * The public, one-way id of a key: the first 16 bytes of HMAC-SHA-256(key, "fieldvault/key-id/v1")
 * as 32 lowercase hex characters. 128 bits keep accidental collisions out of reach while the id
 * reveals nothing usable about the key.
 * @throws CRYPTO_KEY_INVALID when `key` is not 32 bytes.
 */
export function keyId(key: Uint8Array): string {
  assertKey(key, 'database key');
  return toHex(hmacSha256(key, labels.keyId).subarray(0, 16));
}

/**
 * The database file name for a key: HMAC-SHA-256(key, "fieldvault/db-name/v1") as 64 hex characters,
 * no extension. A different label from `keyId`, so the name on disk cannot be matched to the key
 * id a server knows; full length, because RapidFTR's 32-bit name collided and was guessable.
 * @throws CRYPTO_KEY_INVALID when `key` is not 32 bytes.
 */
export function dbFileName(key: Uint8Array): string {
  assertKey(key, 'database key');
  return toHex(hmacSha256(key, labels.dbName));
}
