import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';

/** HTTP status of a nano error, or undefined for a socket-level failure. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const status = (err as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * The errno-style code of a failed connection (ECONNREFUSED, ECONNRESET, ETIMEDOUT, …), when it has
 * one. nano rejects with a bare Error whose message quotes the socket error ("error happened in
 * your connection. Reason: Error: connect ECONNREFUSED host:port"); only the code is taken from
 * it, never the rest of the text.
 */
function socketErrorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]{2,30}$/.test(code)) return code;
    const message = (e as { message?: unknown }).message;
    const quoted = typeof message === 'string' ? /\b(E[A-Z]{3,20})\b/.exec(message)?.[1] : undefined;
    if (quoted !== undefined) return quoted;
  }
  return undefined;
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
    // A store that is restarting (the embedded one is supervised) is back within seconds. The
    // socket error's code (ECONNREFUSED, ECONNRESET, …) tells the operator why; it names no host.
    const cause = status === undefined ? socketErrorCode(err) : undefined;
    return new FieldvaultError('STORE_UNAVAILABLE', { details: { ...details, ...(cause === undefined ? {} : { cause }), retryAfterSeconds: 2 } });
  }
  return new FieldvaultError('INTERNAL_ERROR', { details });
}
