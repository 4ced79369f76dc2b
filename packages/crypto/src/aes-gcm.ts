import { createCipheriv, createDecipheriv } from 'node:crypto';
import { viewBytes } from './bytes.js';

export const GCM_NONCE_LENGTH = 12;
export const GCM_TAG_LENGTH = 16;

/** AES-256-GCM: returns ciphertext || 16-byte tag. Callers guarantee a 32-byte key and a 12-byte nonce. */
export function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_LENGTH });
  cipher.setAAD(aad);
  return viewBytes(Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]));
}

/**
 * Opens ciphertext || tag. Returns `undefined` when authentication fails, so each format can
 * raise its own catalogued error. No plaintext is returned unless the tag verified.
 */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Uint8Array | undefined {
  if (sealed.byteLength < GCM_TAG_LENGTH) return undefined;
  const body = sealed.subarray(0, sealed.byteLength - GCM_TAG_LENGTH);
  const tag = sealed.subarray(sealed.byteLength - GCM_TAG_LENGTH);
  // authTagLength pins the tag size: Node would otherwise accept a truncated (shorter) tag.
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG_LENGTH });
  decipher.setAuthTag(tag);
  decipher.setAAD(aad);
  const head = decipher.update(body);
  try {
    const tail = decipher.final();
    return viewBytes(Buffer.concat([head, tail]));
  } catch {
    // The unauthenticated output is discarded, not returned.
    head.fill(0);
    return undefined;
  }
}
