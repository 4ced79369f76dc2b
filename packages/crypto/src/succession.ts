import { FieldvaultError } from '@fieldvault/protocol';
import { encodeAad } from './aad.js';
import { GCM_NONCE_LENGTH, GCM_TAG_LENGTH, aesGcmOpen, aesGcmSeal } from './aes-gcm.js';
import { KEY_LENGTH, assertKey, randomBytes, wipe } from './bytes.js';
import { KEY_ID_PATTERN, keyId } from './db-key.js';
import { fromBase64, toBase64 } from './encoding.js';
import { deriveSubkey } from './hkdf.js';
import { labels } from './labels.js';

export const SUCCESSION_VERSION = 1;

/**
 * "The key after `fromKeyId` is `toKeyId`": the new key wrapped under a sub-key of the old one.
 * A user who can unwrap only the old key offline follows these entries to the current key.
 * JSON-serialisable; binary fields are standard base64.
 */
export interface SuccessionEntry {
  readonly v: typeof SUCCESSION_VERSION;
  readonly fromKeyId: string;
  readonly toKeyId: string;
  /** 12-byte GCM nonce, base64. */
  readonly nonce: string;
  /** New key || tag (48 bytes), base64. */
  readonly wrapped: string;
}

function aadFor(fromKeyId: string, toKeyId: string): Uint8Array {
  return encodeAad(labels.successionAad, [
    ['v', SUCCESSION_VERSION],
    ['fromKeyId', fromKeyId],
    ['toKeyId', toKeyId],
  ]);
}

function invalid(detail?: string): FieldvaultError {
  return new FieldvaultError('CRYPTO_SUCCESSION_INVALID', detail === undefined ? {} : { detail });
}

/**
 * Wraps `newKey` under `oldKey` (AES-256-GCM under an HKDF sub-key of `oldKey`, AAD = version and
 * both key ids).
 * @throws CRYPTO_KEY_INVALID when a key is not 32 bytes.
 * @throws INPUT_INVALID when both keys are the same (a self-succession would make a chain loop).
 */
export function wrapSuccessor(oldKey: Uint8Array, newKey: Uint8Array): SuccessionEntry {
  assertKey(oldKey, 'previous database key');
  assertKey(newKey, 'next database key');
  const fromKeyId = keyId(oldKey);
  const toKeyId = keyId(newKey);
  if (fromKeyId === toKeyId) throw new FieldvaultError('INPUT_INVALID', { detail: 'a key cannot succeed itself' });
  // A sub-key, not the old DB key itself: that key is also the SQLCipher key of the old database.
  const wrappingKey = deriveSubkey(oldKey, labels.successionKey);
  const nonce = randomBytes(GCM_NONCE_LENGTH);
  try {
    const wrapped = aesGcmSeal(wrappingKey, nonce, newKey, aadFor(fromKeyId, toKeyId));
    return { v: SUCCESSION_VERSION, fromKeyId, toKeyId, nonce: toBase64(nonce), wrapped: toBase64(wrapped) };
  } finally {
    wipe(wrappingKey);
  }
}

/**
 * Opens a succession entry with the previous key and returns the next key.
 * @throws CRYPTO_SUCCESSION_INVALID when the entry is malformed, was not made for `oldKey`, or
 * was altered (any field, a cut tag, a flipped bit).
 * @throws CRYPTO_FORMAT_UNSUPPORTED when the entry's version is newer than this code reads.
 * @throws CRYPTO_KEY_INVALID when `oldKey` is not 32 bytes.
 */
export function unwrapSuccessor(oldKey: Uint8Array, entry: SuccessionEntry): Uint8Array {
  assertKey(oldKey, 'previous database key');
  if (typeof entry !== 'object' || entry === null) throw invalid('entry must be an object');
  const e = entry as unknown as Record<string, unknown>;
  const { v, fromKeyId, toKeyId, nonce, wrapped } = e;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > SUCCESSION_VERSION) {
    throw new FieldvaultError('CRYPTO_FORMAT_UNSUPPORTED', { detail: `succession entry version ${v}` });
  }
  if (
    v !== SUCCESSION_VERSION ||
    typeof fromKeyId !== 'string' ||
    !KEY_ID_PATTERN.test(fromKeyId) ||
    typeof toKeyId !== 'string' ||
    !KEY_ID_PATTERN.test(toKeyId) ||
    fromKeyId === toKeyId ||
    typeof nonce !== 'string' ||
    typeof wrapped !== 'string'
  ) {
    throw invalid('malformed entry');
  }
  // Key ids are public, so saying which key an entry expects helps and leaks nothing.
  if (keyId(oldKey) !== fromKeyId) throw invalid(`entry follows key ${fromKeyId}, not the key given`);
  let n: Uint8Array;
  let w: Uint8Array;
  try {
    n = fromBase64(nonce);
    w = fromBase64(wrapped);
  } catch {
    throw invalid('malformed entry');
  }
  if (n.byteLength !== GCM_NONCE_LENGTH || w.byteLength !== KEY_LENGTH + GCM_TAG_LENGTH) throw invalid('malformed entry');
  const wrappingKey = deriveSubkey(oldKey, labels.successionKey);
  const next = aesGcmOpen(wrappingKey, n, w, aadFor(fromKeyId, toKeyId));
  wipe(wrappingKey);
  if (next === undefined) throw invalid();
  if (keyId(next) !== toKeyId) {
    wipe(next);
    throw invalid();
  }
  return next;
}
