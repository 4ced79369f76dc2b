/**
 * Start-up check of an external CouchDB (`COUCHDB_URL` or its file) before the app is built, so
 * that the operator learns where the server tried to connect and why it failed (operations audit,
 * item 6): the store's errors at request time carry neither, on purpose (they reach clients).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FieldvaultError } from '@fieldvault/protocol';

/** Node's codes for a certificate that is not trusted: waiting does not fix these. */
const TLS_UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What went wrong in words an operator can act on. */
const CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused: nothing listens there',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed for now',
  ETIMEDOUT: 'no answer (timed out)',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset: is it an http URL for an https store, or the other way round?',
  EPROTO: 'TLS handshake failed: is it an https URL for a plain-http store?',
};

/** Pause between attempts: short first, then every 2 s. */
const RETRY_DELAYS_MS = [250, 500, 1_000, 2_000] as const;
const ATTEMPT_TIMEOUT_MS = 5_000;

/** `scheme://host:port` of a store URL: never its user name or password. */
export function storeAddress(url: string): string {
  const u = new URL(url);
  const port = u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80';
  return `${u.protocol}//${u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname}:${port}`;
}

type Attempt = { ok: true } | { ok: false; code: string; message: string };

/**
 * One GET of the store's root: an HTTP answer means something listens and TLS (if any) is
 * trusted. A 5xx answer is not CouchDB's yet (a proxy in front of a CouchDB that is down, a
 * CouchDB still starting): it is waited for here, so the app's own store check does not wait again.
 */
function attempt(url: string): Promise<Attempt> {
  const u = new URL(url);
  const target = `${u.protocol}//${u.host}/`; // no credentials: the root needs none
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(target, { method: 'GET', agent: false, timeout: ATTEMPT_TIMEOUT_MS }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      if (status >= 500) resolve({ ok: false, code: `HTTP ${status}`, message: 'answered with an error: a proxy whose CouchDB is down, or a CouchDB still starting' });
      else resolve({ ok: true });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: Error & { code?: unknown }) => {
      resolve({ ok: false, code: typeof err.code === 'string' ? err.code : 'UNKNOWN', message: err.message.split('\n')[0] ?? '' });
    });
    req.end();
  });
}

/**
 * Waits up to `waitMs` for the store to answer; the last attempt is made at the deadline, so the
 * wait is the configured one (it used to give up early, before the next pause would pass it).
 * @throws STORE_TLS_UNTRUSTED at once for an untrusted certificate; STORE_CONNECT_FAILED with
 * host:port and the cause when the store did not answer within `waitMs`.
 */
export async function waitForStore(url: string, waitMs: number, warn: (line: string) => void): Promise<void> {
  const address = storeAddress(url);
  const started = Date.now();
  const deadline = started + waitMs;
  for (let n = 0; ; n++) {
    const result = await attempt(url);
    if (result.ok) return;
    if (TLS_UNTRUSTED.has(result.code)) {
      throw new FieldvaultError('STORE_TLS_UNTRUSTED', { detail: `store at ${address}: ${result.message} (${result.code})` });
    }
    const cause = `${CAUSES[result.code] ?? result.message} (${result.code})`;
    const left = deadline - Date.now();
    if (left <= 0) {
      const waited = ((Date.now() - started) / 1000).toFixed(1);
      throw new FieldvaultError('STORE_CONNECT_FAILED', { detail: `store at ${address}: ${cause}; ${n + 1} attempts over ${waited} s (FIELDVAULT_STORE_WAIT_SECONDS=${waitMs / 1000})` });
    }
    warn(`warning: store at ${address} is not answering yet: ${cause}; waiting up to ${Math.ceil(left / 1000)} s more`);
    await new Promise((r) => setTimeout(r, Math.min(RETRY_DELAYS_MS[Math.min(n, RETRY_DELAYS_MS.length - 1)] ?? 2_000, left)));
  }
}

/**
 * STORE_CONNECT_FAILED for a store that answered the probe but then failed while the app opened
 * it (STORE_UNAVAILABLE: it went away again, or its databases do not answer yet) until the rest of
 * the one start-up wait ran out: with the address and the cause, as the probe reports.
 */
export function storeFailedAfterProbe(url: string, err: FieldvaultError, startedAt: number, waitMs: number): FieldvaultError {
  const op = String(err.details?.['op'] ?? 'store');
  const status = err.details?.['status'];
  const cause = typeof status === 'number' ? `HTTP ${status}` : 'no connection';
  const waited = ((Date.now() - startedAt) / 1000).toFixed(1);
  return new FieldvaultError('STORE_CONNECT_FAILED', {
    detail: `store at ${storeAddress(url)}: answered, then failed while the server opened it (${op}: ${cause}); waited ${waited} s in all (FIELDVAULT_STORE_WAIT_SECONDS=${waitMs / 1000})`,
    details: { op, ...(typeof status === 'number' ? { status } : {}) },
  });
}
