import { FieldvaultError, normalizePasswordText } from '@fieldvault/protocol';

/**
 * NFKC-normalises a password (NIST SP 800-63B) with the protocol's one normalisation, so the same
 * password typed on two keyboards derives the same key on every phone and verifies the same on
 * every server.
 * @throws INPUT_INVALID when `password` is not a string.
 */
export function normalizePassword(password: string): string {
  if (typeof password !== 'string') throw new FieldvaultError('INPUT_INVALID', { detail: 'password must be a string' });
  return normalizePasswordText(password);
}
