import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';

/** HTTP status of a nano error, or undefined for a socket-level failure. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const status = (err as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Turns anything thrown while talking to CouchDB into a catalogued error. The nano error is NOT
 * kept as `cause`: it carries CouchDB's reason, the request URL and headers, none of which may
 * reach a client or a log line verbatim. Only the operation name and status survive.
 */
export function storeError(err: unknown, op: string): FieldvaultError {
  if (isFieldvaultError(err)) return err;
  const status = statusOf(err);
  const details = status === undefined ? { op } : { op, status };
  // No status: connection refused/reset. 401/403: the app user lost its rights (an operator
  // problem, not the caller's). 5xx: CouchDB itself is unwell. Everything else is our own bug.
  if (status === undefined || status >= 500 || status === 401 || status === 403) {
    // A store that is restarting (the embedded one is supervised) is back within seconds.
    return new FieldvaultError('STORE_UNAVAILABLE', { details: { ...details, retryAfterSeconds: 2 } });
  }
  return new FieldvaultError('INTERNAL_ERROR', { details });
}
