import type { IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { PUBLIC_KEY_PIN_PATTERN, publicKeyPin } from '@fieldvault/crypto';
import { FieldvaultError, errorCatalogue, isErrorCode, isSdkOnlyCode, type ErrorCode } from '@fieldvault/protocol';
import type { ServerTrust } from './home.js';

/*
 * HTTPS to the fieldvault admin API. Trust, per server: a CA file (for a self-signed server, its
 * own certificate), a SHA-256 certificate pin (the fingerprint the server prints at start), both,
 * or neither (the system CA store). Never "accept any certificate". The TLS connection is opened
 * and checked here before node:http writes a byte of the request (which may carry a password), as
 * the SDK's transport does. Errors: the server's catalogued code, or TRANSPORT_UNREACHABLE /
 * TRANSPORT_TLS_UNTRUSTED / TRANSPORT_BAD_RESPONSE.
 */

const TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface ApiCall {
  readonly method: 'GET' | 'POST' | 'PATCH';
  /** Path with query, e.g. `/v1/users?limit=100`. */
  readonly path: string;
  readonly body?: unknown;
  /** Bearer token of the admin session. */
  readonly token?: string;
}

export interface ApiClient {
  readonly url: string;
  call<T = Record<string, unknown>>(call: ApiCall): Promise<T>;
  /**
   * A POST whose 2xx answer is a byte stream, piped into `sink` as it arrives (no timeout while
   * bytes flow). Resolves with the response headers once the stream ended complete; rejects when
   * it was cut short (TRANSPORT_BAD_RESPONSE) or with the server's catalogued error.
   */
  download(call: ApiCall, sink: NodeJS.WritableStream, onBytes?: (n: number) => void): Promise<Record<string, string | string[] | undefined>>;
  /** A POST streaming `source` as the body (chunked) with these headers; resolves with the JSON answer. */
  upload<T = Record<string, unknown>>(call: { readonly path: string; readonly headers: Record<string, string> }, source: NodeJS.ReadableStream): Promise<T>;
}

/** A certificate fingerprint as lowercase hex, or a public-key pin `sha256//…` as it is; undefined when neither. */
export function normalisePin(pin: string): string | undefined {
  if (PUBLIC_KEY_PIN_PATTERN.test(pin)) return pin;
  const hex = pin.replaceAll(':', '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

/** The pin of `cert` of the same kind as `pin` (a public-key pin survives a renewal with the same key). */
function pinOf(cert: X509Certificate | undefined, pin: string): string | undefined {
  if (cert === undefined) return undefined;
  if (!pin.startsWith('sha256//')) return normalisePin(cert.fingerprint256);
  return publicKeyPin(cert);
}

/** What is wrong with a server's URL or pin, if anything (checked for options and for the stored config). */
export function trustProblem(trust: Pick<ServerTrust, 'url' | 'pinSha256'>): { field: 'server' | 'pin'; detail: string } | undefined {
  let url: URL;
  try {
    url = new URL(trust.url);
  } catch {
    return { field: 'server', detail: 'not a URL (https://host:port)' };
  }
  if (url.protocol !== 'https:') return { field: 'server', detail: 'must be an https: URL' };
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    return { field: 'server', detail: 'no credentials, query or fragment in the URL' };
  }
  if (trust.pinSha256 !== undefined && normalisePin(trust.pinSha256) === undefined) {
    return { field: 'pin', detail: 'a SHA-256 certificate fingerprint (64 hex digits, colons optional) or a public-key pin (sha256//…)' };
  }
  return undefined;
}

/** @throws INPUT_INVALID for a URL that is not https: or carries credentials, or a malformed pin. */
export function createApiClient(trust: ServerTrust): ApiClient {
  const problem = trustProblem(trust);
  if (problem !== undefined) throw new FieldvaultError('INPUT_INVALID', { detail: `${problem.field}: ${problem.detail}`, details: { field: problem.field } });
  const url = new URL(trust.url);
  const pin = trust.pinSha256 === undefined ? undefined : normalisePin(trust.pinSha256);
  const base = url.href.replace(/\/+$/, '');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port === '' ? 443 : url.port);
  const pinOnly = pin !== undefined && trust.ca === undefined;

  const connect: NonNullable<RequestOptions['createConnection']> = (_options, oncreate) => {
    let done = false;
    let tcp = false;
    const socket: TLSSocket = tlsConnect({
      host,
      port,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(trust.ca === undefined ? {} : { ca: trust.ca }),
      // With a pin alone (a self-signed server) the exact certificate is checked below instead.
      rejectUnauthorized: !pinOnly,
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
    });
    const finish = (err: FieldvaultError | null): void => {
      if (done) return;
      done = true;
      if (err !== null) socket.destroy();
      oncreate(err, socket);
    };
    socket.once('connect', () => {
      tcp = true;
    });
    socket.on('error', (err: Error & { code?: string }) => {
      if (!tcp) finish(new FieldvaultError('TRANSPORT_UNREACHABLE', { detail: `${host}:${port}: ${err.code ?? 'connection failed'}` }));
      else finish(new FieldvaultError('TRANSPORT_TLS_UNTRUSTED', { detail: err.code ?? 'TLS handshake failed' }));
    });
    socket.once('secureConnect', () => {
      if (!pinOnly && !socket.authorized) {
        finish(new FieldvaultError('TRANSPORT_TLS_UNTRUSTED', { detail: String(socket.authorizationError ?? 'certificate not verified') }));
        return;
      }
      if (pin !== undefined && pinOf(socket.getPeerX509Certificate(), pin) !== pin) {
        finish(new FieldvaultError('TRANSPORT_TLS_UNTRUSTED', { detail: 'the certificate does not match the pinned fingerprint' }));
        return;
      }
      finish(null);
    });
    return undefined;
  };

  return {
    url: base,
    call<T>(c: ApiCall): Promise<T> {
      const payload = c.body === undefined ? undefined : Buffer.from(JSON.stringify(c.body), 'utf8');
      return new Promise<T>((resolve, reject) => {
        const req = httpsRequest(
          `${base}${c.path}`,
          {
            method: c.method,
            createConnection: connect,
            timeout: TIMEOUT_MS,
            headers: {
              accept: 'application/json',
              ...(c.token === undefined ? {} : { authorization: `Bearer ${c.token}` }),
              ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(payload.length) }),
            },
          },
          (res) => readJson<T>(req, res, resolve, reject),
        );
        req.on('timeout', () => req.destroy(new FieldvaultError('TRANSPORT_UNREACHABLE', { detail: 'no answer in time' })));
        req.on('error', (err) => reject(err instanceof FieldvaultError ? err : new FieldvaultError('TRANSPORT_UNREACHABLE', { detail: (err as { code?: string }).code ?? 'request failed' })));
        req.end(payload);
      });
    },
    download(c, sink, onBytes) {
      const payload = Buffer.from(JSON.stringify(c.body ?? {}), 'utf8');
      return new Promise((resolve, reject) => {
        const req = httpsRequest(
          `${base}${c.path}`,
          {
            method: 'POST',
            createConnection: connect,
            timeout: TIMEOUT_MS,
            headers: {
              accept: 'application/octet-stream, application/json',
              'content-type': 'application/json',
              'content-length': String(payload.length),
              ...(c.token === undefined ? {} : { authorization: `Bearer ${c.token}` }),
            },
          },
          (res) => {
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) {
              readJson(req, res, () => reject(new FieldvaultError('TRANSPORT_BAD_RESPONSE', { details: { status } })), reject);
              return;
            }
            let failed = false;
            const cut = (): void => {
              if (failed) return;
              failed = true;
              reject(new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail: 'the stream was cut short by the server or the network' }));
            };
            res.on('data', (d: Buffer) => onBytes?.(d.length));
            res.on('aborted', cut);
            res.on('error', cut);
            res.on('end', () => {
              // A chunked answer that the server ended by destroying the socket is not complete.
              if (!res.complete) cut();
            });
            res.pipe(sink);
            sink.on('finish', () => {
              if (!failed && res.complete) resolve(res.headers);
              else cut();
            });
            sink.on('error', (err: unknown) => {
              failed = true;
              req.destroy();
              reject(err);
            });
          },
        );
        req.on('timeout', () => req.destroy(new FieldvaultError('TRANSPORT_UNREACHABLE', { detail: 'no answer in time' })));
        req.on('error', (err) => reject(err instanceof FieldvaultError ? err : new FieldvaultError('TRANSPORT_UNREACHABLE', { detail: (err as { code?: string }).code ?? 'request failed' })));
        req.end(payload);
      });
    },
    upload<T>(c: { readonly path: string; readonly headers: Record<string, string> }, source: NodeJS.ReadableStream): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        let answered = false;
        const req = httpsRequest(
          `${base}${c.path}`,
          { method: 'POST', createConnection: connect, headers: { accept: 'application/json', ...c.headers } },
          (res) => {
            answered = true;
            readJson<T>(req, res, resolve, reject);
          },
        );
        // The server may answer (refuse) before the whole body is sent: its answer is what counts.
        req.on('error', (err) => {
          if (answered) return;
          reject(err instanceof FieldvaultError ? err : new FieldvaultError('TRANSPORT_UNREACHABLE', { detail: (err as { code?: string }).code ?? 'request failed' }));
        });
        source.on('error', (err) => {
          // A local failure (e.g. the backup fails authentication mid-way): abort the upload so the
          // server sees a cut stream and undoes what it wrote.
          req.destroy();
          reject(err);
        });
        source.pipe(req);
      });
    },
  };
}

/** Reads a JSON answer: resolves 2xx bodies, rejects with the catalogued error of others. */
function readJson<T>(
  req: { destroy(err?: Error): void },
  res: IncomingMessage,
  resolve: (value: T) => void,
  reject: (err: unknown) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (d: Buffer) => {
    size += d.length;
    if (size > MAX_RESPONSE_BYTES) req.destroy(new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail: 'answer too large' }));
    else chunks.push(d);
  });
  res.on('error', reject);
  res.on('end', () => {
    const status = res.statusCode ?? 0;
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        reject(new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail: 'not JSON', details: { status } }));
        return;
      }
    }
    if (status >= 200 && status < 300) {
      resolve((body ?? {}) as T);
      return;
    }
    const code = (body as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string' && isErrorCode(code) && !isSdkOnlyCode(code)) {
      const detail = (body as { message?: unknown }).message;
      // The server's message is catalogued text plus the detail it added (never a secret).
      const added = typeof detail === 'string' ? serverDetail(code, detail) : undefined;
      reject(new FieldvaultError(code, { details: { status }, ...(added === undefined ? {} : { detail: added }) }));
    } else {
      reject(new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail: 'an error without a catalogued code', details: { status } }));
    }
  });
}

/** What the server added between its catalogued message and hint (`msg (detail) hint`), if anything. */
function serverDetail(code: ErrorCode, message: string): string | undefined {
  const spec = errorCatalogue[code];
  if (message.startsWith(spec.message) && message.endsWith(spec.hint)) {
    const middle = message.slice(spec.message.length, message.length - spec.hint.length).trim();
    const m = /^\((.*)\)$/.exec(middle);
    if (m?.[1] !== undefined && m[1] !== '') return m[1];
  }
  return undefined;
}
