import { createHash, type X509Certificate } from 'node:crypto';

/**
 * A public-key pin in curl's `--pinnedpubkey` form: `sha256//` and the base64 SHA-256 of the
 * certificate's DER SubjectPublicKeyInfo. Unlike a certificate fingerprint it survives a renewal
 * with the same key. One definition for the server's banner, the SDK and both CLIs.
 */
export const PUBLIC_KEY_PIN_PATTERN = /^sha256\/\/[A-Za-z0-9+/]{43}=$/;

/** The public-key pin of `cert` (see {@link PUBLIC_KEY_PIN_PATTERN}). */
export function publicKeyPin(cert: X509Certificate): string {
  return `sha256//${createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64')}`;
}
