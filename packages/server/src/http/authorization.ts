/**
 * The credentials an `authorization` header gives for `scheme`, or undefined (no header, another
 * scheme). The scheme is matched case-insensitively and may be followed by several spaces (RFC
 * 9110 §11.4: `bearer x` is `Bearer x`); the credentials are returned as sent, for the caller's
 * own strict pattern.
 */
export function credentialsFor(header: unknown, scheme: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  const space = header.indexOf(' ');
  if (space <= 0 || header.slice(0, space).toLowerCase() !== scheme.toLowerCase()) return undefined;
  return header.slice(space + 1).replace(/^ +/, '');
}
