/**
 * The kind of a device database: the shared verified DB, the unverified DB, or a temporary DB
 * kept for one server whose key differs from the device's verified key.
 */
export type DbKind = 'verified' | 'unverified' | `temporary:${string}`;

/** True for "verified", "unverified" or "temporary:<server>" with a non-empty server name. */
export function isDbKind(value: unknown): value is DbKind {
  return (
    value === 'verified' ||
    value === 'unverified' ||
    (typeof value === 'string' && value.startsWith('temporary:') && value.length > 'temporary:'.length)
  );
}
