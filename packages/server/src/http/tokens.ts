import { createHash, randomBytes } from 'node:crypto';

/** A new opaque 256-bit token, base64url without padding (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** SHA-256 (hex) of a token or nonce: what the store keeps instead of the secret itself. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
