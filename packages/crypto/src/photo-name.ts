import { FieldvaultError } from '@fieldvault/protocol';
import { assertKey, wipe } from './bytes.js';
import { toHex } from './encoding.js';
import { deriveSubkey, hmacSha256 } from './hkdf.js';
import { labels } from './labels.js';

/**
 * The on-disk file name of a photo: HMAC-SHA-256 under a sub-key of the DB key
 * ("fieldvault/photo-name/v1") over the photo id, as 64 hex characters. Names reveal neither the
 * record nor the photo id, and cannot be linked across devices with different keys.
 * @throws CRYPTO_KEY_INVALID when `dbKey` is not 32 bytes.
 * @throws INPUT_INVALID when `photoId` is not a non-empty string.
 */
export function photoFileName(dbKey: Uint8Array, photoId: string): string {
  assertKey(dbKey, 'database key');
  if (typeof photoId !== 'string' || photoId === '') {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'photoId must be a non-empty string' });
  }
  const nameKey = deriveSubkey(dbKey, labels.photoNameKey);
  try {
    return toHex(hmacSha256(nameKey, photoId));
  } finally {
    wipe(nameKey);
  }
}
