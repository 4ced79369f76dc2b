import { FieldvaultError } from '@fieldvault/protocol';
import { encodeAad } from './aad.js';
import { GCM_NONCE_LENGTH, GCM_TAG_LENGTH, aesGcmOpen, aesGcmSeal } from './aes-gcm.js';
import { assertKey, randomBytes, wipe } from './bytes.js';
import { KEY_ID_PATTERN, keyId as keyIdOf } from './db-key.js';
import { fromBase64Url, toBase64Url, toHex, utf8 } from './encoding.js';
import { deriveSubkey, hmacSha256 } from './hkdf.js';
import { labels } from './labels.js';

/** Format tag of a sealed envelope; the first dot-separated part. */
export const ENVELOPE_PREFIX = 'fv1';

/*
 * Envelope format:  fv1.<kekId>.<nonce>.<ciphertext || tag>
 *   kekId  : 32 hex chars, first 16 bytes of HMAC-SHA-256(KEK, "fieldvault/kek-id/v1")
 *   nonce  : 12 random bytes, base64url (no padding)
 *   sealed : AES-256-GCM under HKDF(KEK, info "fieldvault/envelope-key/v1"), base64url
 *   AAD    : length-prefixed ("fieldvault/envelope/v1", "kekId", kekId, "aad", caller's aad)
 * Text with no padding and no "." inside parts, so it fits a CouchDB string field and a log-safe
 * grep; the kekId lets a server with the wrong KEK file say so instead of "decryption failed".
 */

/**
 * The public id of a server key-encryption key (32 hex chars), with its own label so it can never
 * equal the `keyId` of a DB key that happens to share bytes.
 * @throws CRYPTO_KEY_INVALID when `kek` is not 32 bytes.
 */
export function kekId(kek: Uint8Array): string {
  assertKey(kek, 'server key-encryption key');
  return toHex(hmacSha256(kek, labels.kekId).subarray(0, 16));
}

function envelopeAad(id: string, aad: Uint8Array | string): Uint8Array {
  return encodeAad(labels.envelopeAad, [
    ['kekId', id],
    ['aad', typeof aad === 'string' ? utf8(aad) : aad],
  ]);
}

function invalid(detail?: string): FieldvaultError {
  return new FieldvaultError('CRYPTO_ENVELOPE_INVALID', detail === undefined ? {} : { detail });
}

/**
 * Seals `plaintext` under the server KEK, bound to `aad` (which must be given again to open).
 * @throws CRYPTO_KEY_INVALID when `kek` is not 32 bytes.
 */
export function sealWithKek(kek: Uint8Array, plaintext: Uint8Array, aad: Uint8Array | string): string {
  const id = kekId(kek);
  const key = deriveSubkey(kek, labels.envelopeKey);
  const nonce = randomBytes(GCM_NONCE_LENGTH);
  try {
    const sealed = aesGcmSeal(key, nonce, plaintext, envelopeAad(id, aad));
    return `${ENVELOPE_PREFIX}.${id}.${toBase64Url(nonce)}.${toBase64Url(sealed)}`;
  } finally {
    wipe(key);
  }
}

/**
 * Opens an envelope made by `sealWithKek` with the same KEK and AAD.
 * @throws CRYPTO_ENVELOPE_INVALID when the text is malformed, was sealed under another KEK (the
 * detail names both KEK ids), or was altered or moved to another AAD.
 * @throws CRYPTO_FORMAT_UNSUPPORTED when it is an envelope of another version ("fv2." …).
 * @throws CRYPTO_KEY_INVALID when `kek` is not 32 bytes.
 */
export function openWithKek(kek: Uint8Array, sealed: string, aad: Uint8Array | string): Uint8Array {
  const mine = kekId(kek);
  if (typeof sealed !== 'string') throw invalid('sealed value must be a string');
  const parts = sealed.split('.');
  const [prefix, id, nonceText, bodyText] = parts;
  if (prefix !== ENVELOPE_PREFIX) {
    if (prefix !== undefined && /^fv\d+$/.test(prefix)) {
      throw new FieldvaultError('CRYPTO_FORMAT_UNSUPPORTED', { detail: `envelope version "${prefix}"` });
    }
    throw invalid('not a fieldvault envelope');
  }
  if (parts.length !== 4 || id === undefined || nonceText === undefined || bodyText === undefined || !KEY_ID_PATTERN.test(id)) {
    throw invalid('malformed envelope');
  }
  // KEK ids are one-way and public: naming both tells an operator which secret file is missing.
  if (id !== mine) throw invalid(`sealed under KEK ${id}, this server's KEK is ${mine}`);
  let nonce: Uint8Array;
  let body: Uint8Array;
  try {
    nonce = fromBase64Url(nonceText);
    body = fromBase64Url(bodyText);
  } catch {
    throw invalid('malformed envelope');
  }
  if (nonce.byteLength !== GCM_NONCE_LENGTH || body.byteLength < GCM_TAG_LENGTH) throw invalid('malformed envelope');
  const key = deriveSubkey(kek, labels.envelopeKey);
  const plaintext = aesGcmOpen(key, nonce, body, envelopeAad(id, aad));
  wipe(key);
  if (plaintext === undefined) throw invalid('integrity check failed: altered, or opened for a different record');
  return plaintext;
}

function dbKeyAad(imei: string, keyId: string): Uint8Array {
  return encodeAad(labels.serverDbKeyAad, [
    ['imei', imei],
    ['keyId', keyId],
  ]);
}

/**
 * Seals a device's DB key for storage on the server, bound to the device's IMEI and the key's
 * id, so a sealed key copied into another device record does not open.
 * @throws CRYPTO_KEY_INVALID when `kek` or `dbKey` is not 32 bytes.
 * @throws INPUT_INVALID when `imei` is not a non-empty string.
 */
export function sealDbKey(kek: Uint8Array, dbKey: Uint8Array, binding: { readonly imei: string }): string {
  assertKey(dbKey, 'database key');
  if (typeof binding.imei !== 'string' || binding.imei === '') {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'imei must be a non-empty string' });
  }
  return sealWithKek(kek, dbKey, dbKeyAad(binding.imei, keyIdOf(dbKey)));
}

/**
 * Opens a DB key sealed by `sealDbKey` for the given device record.
 * @throws CRYPTO_ENVELOPE_INVALID when the envelope does not open for this KEK, IMEI and key id.
 * @throws CRYPTO_FORMAT_UNSUPPORTED when the envelope is of another version.
 * @throws CRYPTO_KEY_INVALID when `kek` is not 32 bytes.
 */
export function openDbKey(
  kek: Uint8Array,
  sealed: string,
  binding: { readonly imei: string; readonly keyId: string },
): Uint8Array {
  const key = openWithKek(kek, sealed, dbKeyAad(binding.imei, binding.keyId));
  if (key.byteLength !== 32 || keyIdOf(key) !== binding.keyId) {
    wipe(key);
    throw invalid('sealed key does not match its key id');
  }
  return key;
}
