import type { Transport } from '@fieldvault/client';

/** How the report names the endpoints a phone calls, by the transport method that calls them. */
export const ENDPOINTS: Readonly<Record<string, string>> = {
  challenge: 'POST /v1/auth/challenge',
  login: 'POST /v1/auth/login',
  push: 'POST /v1/sync/push',
  pull: 'GET /v1/sync/pull',
  uploadPhoto: 'photo upload (GET status + PUT)',
  downloadPhoto: 'GET /v1/photos/:id',
  search: 'GET /v1/records/search',
  form: 'GET /v1/forms/child',
};

/** The report's name of a transport method (its own name for one not listed). */
export function endpointName(method: string): string {
  return ENDPOINTS[method] ?? method;
}

/** Latencies (ms) and error codes per endpoint, as the phone sees them. */
export interface CallLog {
  readonly ms: Record<string, number[]>;
  readonly errors: Record<string, number>;
}

export function newCallLog(): CallLog {
  return { ms: {}, errors: {} };
}

/**
 * The same transport with every call timed into `log`. It wraps the real HTTP transport (every
 * request still goes over TLS to the real server); only the clock reading is added, so the
 * figures are the latency a phone sees, its own queueing included.
 */
export function timedTransport(inner: Transport, log: CallLog): Transport {
  const timed: Record<string, unknown> = { serverId: inner.serverId };
  // Every method, including ones added to the Transport interface later.
  for (const name of Object.keys(inner)) {
    const fn = (inner as unknown as Record<string, unknown>)[name];
    if (typeof fn !== 'function') continue;
    timed[name] = async (...args: unknown[]): Promise<unknown> => {
      const started = performance.now();
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>).apply(inner, args);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        const key = `${name} ${typeof code === 'string' ? code : 'EXCEPTION'}`;
        log.errors[key] = (log.errors[key] ?? 0) + 1;
        throw err;
      } finally {
        (log.ms[name] ??= []).push(performance.now() - started);
      }
    };
  }
  return Object.freeze(timed) as unknown as Transport;
}

/** Merges `from` into `into`. */
export function mergeCallLogs(into: CallLog, from: CallLog): void {
  for (const [k, v] of Object.entries(from.ms)) (into.ms[k] ??= []).push(...v);
  for (const [k, v] of Object.entries(from.errors)) into.errors[k] = (into.errors[k] ?? 0) + v;
}
