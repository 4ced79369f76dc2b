import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type ClientRequestArgs, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { X509Certificate, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { PUBLIC_KEY_PIN_PATTERN, publicKeyPin } from '@fieldvault/crypto';
import {
  ChallengeResponseSchema,
  ErrorBodySchema,
  FieldvaultError,
  FormDefinitionSchema,
  LoginResponseSchema,
  MAX_HISTORY_CEILING,
  NODE_ID_PATTERN,
  PHOTO_TYPES,
  PULL_MAX_LIMIT,
  PhotoUploadStatusSchema,
  PullPageSchema,
  PushResponseSchema,
  RecordSearchPageSchema,
  RecordSearchQuerySchema,
  SetPasswordResponseSchema,
  SignupRequestResponseSchema,
  SignupStatusResponseSchema,
  TOKEN_PATTERN,
  UUID_V4_PATTERN,
  checkSchema,
  photoIdOfField,
  isErrorCode,
  isFieldvaultError,
  isSdkOnlyCode,
  parseFormDefinition,
  parseRecord,
  type ChallengeBody,
  type ChallengeResponse,
  type ChildRecord,
  type ErrorCode,
  type FormDefinition,
  type LoginBody,
  type LoginResponse,
  type PhotoUploadStatus,
  type PullResponse,
  type PushRequest,
  type PushResponse,
  type RecordSearchQuery,
  type RecordSearchResponse,
  type SetPasswordBody,
  type SetPasswordResponse,
  type SignupRequestBody,
  type SignupRequestResponse,
  type SignupStatusBody,
  type SignupStatusResponse,
} from '@fieldvault/protocol';
import { sha256Hex } from './digest.js';
import { detectPhotoType } from './image-metadata.js';
import { silentLogger, type Logger } from './logger.js';
import type {
  DownloadedPhoto,
  PhotoDownload,
  PhotoUpload,
  PhotoTransferOptions,
  PhotoUploadOptions,
  PullRequest,
  Transport,
  TransportCallOptions,
} from './transport.js';

/*
 * The HTTPS transport: `POST` JSON to a fieldvault server over TLS that is verified before a single
 * byte of the request (which carries the password and the offered DB key) is written.
 *
 * Trust, per server: a CA (`tls.ca`, e.g. a private CA or the server's self-signed certificate
 * itself), a certificate pin (`tls.pinSha256`, the SHA-256 fingerprint apps/server prints), both,
 * or neither (the system CA store, for a server with a public certificate). Never "accept any
 * certificate". The TLS connection is made here (`createConnection`), checked, and only then
 * handed to node:http; TLS sessions are never resumed, so every connection is checked in full.
 *
 * Connections: logins and sign-up calls get a fresh connection each, closed after the answer (they
 * are rare, and a login must not be re-sent on a stale socket: its challenge is single-use). Sync
 * calls (push, pull, photos, search, form) reuse connections through one keep-alive pool per
 * transport (`VerifiedAgent`): a socket enters the pool only after the checks above passed, and
 * then only after an exchange on it completed cleanly (or unused, when the request it was opened
 * for was cancelled during the handshake); a failed, cancelled or timed-out exchange destroys its socket;
 * idle sockets close after `IDLE_SOCKET_MS`; `close()` destroys them all. A pool is never shared
 * between transports, so another server, CA or pin always gets its own verified connection.
 */

/** How the SDK trusts one server's TLS certificate. */
export interface HttpTransportTls {
  /**
   * PEM certificate(s) trusted as roots for this server, instead of the system store: a private
   * CA, or a self-signed server certificate itself. Chain, validity dates and host name are checked.
   */
  readonly ca?: string;
  /**
   * Pins, of two kinds, mixed freely: SHA-256 fingerprints of the server's **certificate** (of its
   * DER encoding), as apps/server prints it at start (`52:D6:E2:…`; hex, colons optional, any
   * case), and **public-key pins** in curl's `--pinnedpubkey` form (`sha256//` + the base64
   * SHA-256 of the certificate's DER SubjectPublicKeyInfo), which keep holding when the
   * certificate is renewed with the same key (`peerKeyPin()` tells a verified server's). The
   * server must present a certificate matching one of them (several allow a rotation). Without
   * `ca`, the pins alone decide (self-signed deployments: chain, dates and host name are not
   * checked); with `ca`, both must hold.
   */
  readonly pinSha256?: string | readonly string[];
}

export interface HttpTransportOptions {
  /** The server's origin, optionally with a path prefix: `https://fieldvault.example.org`, `https://10.0.0.5:8443/fv`. */
  readonly baseUrl: string;
  /**
   * The server's id: names its temporary database and (later) its sync checkpoints on the phone,
   * so it must stay the same for the same server. Use the id the server prints at start
   * (`fieldvault server <id> listening on …`). Default: derived from the base URL's host and port.
   */
  readonly serverId?: string;
  /** TLS trust for this server; default the system CA store. */
  readonly tls?: HttpTransportTls;
  /**
   * Login requests: deadline from connecting to the last byte of the answer. Sync requests (push,
   * pull, photos, search): the longest time without progress (connecting, a chunk sent or
   * received), so a large photo on a slow link is not cut while it moves. Default 15 000 ms.
   */
  readonly timeoutMs?: number;
  /** Largest login answer accepted; default 1 MiB (the largest auth answer is well under 1 KiB). */
  readonly maxResponseBytes?: number;
  /** Largest push, pull or search answer accepted; default 64 MiB (photos are capped by their ref's size). */
  readonly maxSyncResponseBytes?: number;
  /**
   * Allow an `http:` base URL whose host is a loopback address (`localhost`, 127.0.0.0/8, `::1`).
   * For tests and local development against a server without TLS only; any other `http:` URL is
   * refused whatever this says.
   */
  readonly allowInsecureLoopback?: boolean;
  /** Quiet by default. */
  readonly logger?: Logger;
}

/** A `Transport` over HTTPS (see `createHttpTransport`). */
export interface HttpTransport extends Transport {
  /** `POST /v1/auth/password` (see `Transport.setPassword`). */
  setPassword(request: SetPasswordBody): Promise<SetPasswordResponse>;
  /** The normalised base URL, without a trailing slash. */
  readonly baseUrl: string;
  /**
   * Closes this transport's pooled connections (call it at logout, or when the server is no longer
   * used); requests in flight fail with TRANSPORT_UNREACHABLE. A later call opens a new, verified
   * connection. Idle connections also close by themselves after a few seconds. The SDK calls it
   * when the user logs out.
   */
  close(): void;
  logout(token: string, options?: TransportCallOptions): Promise<void>;
  /**
   * The public-key pin (`sha256//…`, see `HttpTransportTls.pinSha256`) of the certificate the last
   * verified connection of this transport presented; undefined before any. A phone that added a
   * server by its certificate fingerprint can keep this too, so a renewal with the same key does
   * not lock it out.
   */
  peerKeyPin(): string | undefined;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 1_048_576;
export const DEFAULT_MAX_SYNC_RESPONSE_BYTES = 67_108_864;
/**
 * How long a pooled connection may stay idle. Shorter than the server's keep-alive timeout
 * (packages/server `KEEP_ALIVE_TIMEOUT_MS`, 10 s) so that the phone, not the server, closes an idle
 * connection: a request is then never written into a socket the server is closing at that moment.
 */
export const IDLE_SOCKET_MS = 4_000;
/** Connections per transport: the sync engine sends one request at a time; a few cover photos and search. */
const MAX_POOLED_SOCKETS = 4;
/** Size of the pieces a request body is written in (progress for the idle timeout, backpressure). */
const WRITE_CHUNK_BYTES = 65_536;

const LOOPBACK_HOSTS = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;
/** Failures of the network itself (not of TLS) while the handshake is under way. */
const NETWORK_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

function invalid(field: string, why: string): FieldvaultError {
  return new FieldvaultError('INPUT_INVALID', { detail: `${field}: ${why}`, details: { field } });
}

function badResponse(detail: string, details: Record<string, string | number | boolean> = {}, cause?: unknown): FieldvaultError {
  return new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail, details, ...(cause === undefined ? {} : { cause }) });
}

function unreachable(detail: string, cause?: unknown): FieldvaultError {
  return new FieldvaultError('TRANSPORT_UNREACHABLE', { detail, ...(cause === undefined ? {} : { cause }) });
}

/**
 * An answer whose connection closed or was reset before its last byte (the announced length, or
 * the end of a chunked body): the network failed, not the server's answer, so it is
 * TRANSPORT_UNREACHABLE, which a sync retries. Nothing of the partial body is used. Logins are
 * not re-sent on it (see `isLoginRetryable` in retry.ts): their challenge may be spent.
 */
function connectionLost(status: number, cause?: unknown): FieldvaultError {
  return new FieldvaultError('TRANSPORT_UNREACHABLE', {
    detail: 'the connection was lost before the end of the answer',
    details: { status },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A failure while the answer's body was arriving: a lost connection when the network says so
 * (node:http reports a body cut short as ECONNRESET "aborted"), anything else (a TLS alert, …)
 * stays a bad answer. Framing errors (`HPE_…`) never get here: they are bad responses first.
 */
function cutShort(status: number, cause: unknown): FieldvaultError {
  const code = codeOf(cause);
  return code !== undefined && NETWORK_CODES.has(code) ? connectionLost(status, cause) : badResponse('cut short', { status }, cause);
}

function untrusted(detail: string, cause?: unknown): FieldvaultError {
  return new FieldvaultError('TRANSPORT_TLS_UNTRUSTED', { detail, ...(cause === undefined ? {} : { cause }) });
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** `AB:CD:…`, `abcd…` → `abcd…` (64 hex), or undefined when it is not a SHA-256 fingerprint. */
function normalisePin(pin: string): string | undefined {
  const hex = pin.replaceAll(':', '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}


/** The server id used when none is given: the base URL's host and port as a node id. */
function serverIdFromUrl(url: URL): string {
  const port = url.port === '' ? (url.protocol === 'https:' ? '443' : '80') : url.port;
  const host = url.hostname.toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/^[^a-z0-9]+/, '');
  return `${host}-${port}`.slice(0, 64);
}

/**
 * `Transport.identity`: the normalised base URL and the trust this transport puts in the server's
 * certificate (sorted pins, SHA-256 fingerprints of the CA certificates, or the system store).
 * Public values only: no token, no key.
 */
function identityOf(base: string, r: Resolved): string {
  const trust: string[] = [];
  if (r.pins !== undefined) trust.push(`pin:${[...r.pins].sort().join(',')}`);
  if (r.ca !== undefined) trust.push(`ca:${caFingerprints(r.ca).join(',')}`);
  if (trust.length === 0) trust.push(r.url.protocol === 'http:' ? 'insecure-loopback' : 'system-ca');
  return `${base} ${trust.join(' ')}`;
}

/** SHA-256 fingerprints of every certificate in a PEM bundle, sorted (unparsable text: a digest of the text). */
function caFingerprints(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out = blocks.map((b) => {
    try {
      return normalisePin(new X509Certificate(b).fingerprint256) ?? createHash('sha256').update(b).digest('hex');
    } catch {
      return createHash('sha256').update(b.replace(/\s+/g, '')).digest('hex');
    }
  });
  return out.sort();
}

interface Resolved {
  readonly url: URL;
  readonly serverId: string;
  readonly ca: string | undefined;
  /** Certificate fingerprints (lowercase hex) and public-key pins (`sha256//…`). */
  readonly pins: ReadonlySet<string> | undefined;
  /** What the last verified connection showed: its certificate's public-key pin. */
  readonly peer: { keyPin?: string };
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly maxSyncResponseBytes: number;
  readonly logger: Logger;
}

function resolve(options: HttpTransportOptions): Resolved {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object');
  let url: URL;
  try {
    url = new URL(options.baseUrl);
  } catch {
    throw invalid('baseUrl', 'must be an absolute https: URL');
  }
  if (url.username !== '' || url.password !== '') throw invalid('baseUrl', 'must not carry credentials');
  if (url.search !== '' || url.hash !== '') throw invalid('baseUrl', 'must not have a query or a fragment');
  if (url.protocol === 'http:') {
    if (options.allowInsecureLoopback !== true || !LOOPBACK_HOSTS.test(url.hostname)) {
      throw invalid('baseUrl', 'must be https: (plain http: is allowed only to a loopback address, with allowInsecureLoopback)');
    }
    if (options.tls !== undefined) throw invalid('tls', 'has no meaning for an http: URL');
  } else if (url.protocol !== 'https:') {
    throw invalid('baseUrl', 'must be an https: URL');
  }
  const { tls, timeoutMs = DEFAULT_TIMEOUT_MS, maxResponseBytes = DEFAULT_MAX_RESPONSE_BYTES, maxSyncResponseBytes = DEFAULT_MAX_SYNC_RESPONSE_BYTES } = options;
  let ca: string | undefined;
  let pins: Set<string> | undefined;
  if (tls !== undefined) {
    if (typeof tls !== 'object' || tls === null) throw invalid('tls', 'must be an object');
    if (tls.ca !== undefined) {
      if (typeof tls.ca !== 'string' || !tls.ca.includes('-----BEGIN CERTIFICATE-----')) throw invalid('tls.ca', 'must be PEM certificate text');
      ca = tls.ca;
    }
    if (tls.pinSha256 !== undefined) {
      const list: readonly unknown[] = typeof tls.pinSha256 === 'string' ? [tls.pinSha256] : Array.isArray(tls.pinSha256) ? tls.pinSha256 : [];
      pins = new Set();
      for (const p of list) {
        const pin = typeof p !== 'string' ? undefined : PUBLIC_KEY_PIN_PATTERN.test(p) ? p : normalisePin(p);
        if (pin === undefined) throw invalid('tls.pinSha256', 'must be SHA-256 certificate fingerprints (64 hex digits, colons optional) or public-key pins (sha256//BASE64)');
        pins.add(pin);
      }
      if (pins.size === 0) throw invalid('tls.pinSha256', 'must hold at least one fingerprint');
    }
  }
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 600_000) throw invalid('timeoutMs', 'an integer in 100 … 600000');
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 1024 || maxResponseBytes > 67_108_864) {
    throw invalid('maxResponseBytes', 'an integer in 1024 … 67108864');
  }
  if (!Number.isInteger(maxSyncResponseBytes) || maxSyncResponseBytes < 1024 || maxSyncResponseBytes > 1_073_741_824) {
    throw invalid('maxSyncResponseBytes', 'an integer in 1024 … 1073741824');
  }
  const serverId = options.serverId ?? serverIdFromUrl(url);
  if (typeof serverId !== 'string' || !NODE_ID_PATTERN.test(serverId)) throw invalid('serverId', 'lowercase letters, digits, ".", "_" and "-", 1–64 characters');
  const logger = options.logger ?? silentLogger;
  return { url, serverId, ca, pins, peer: {}, timeoutMs, maxResponseBytes, maxSyncResponseBytes, logger };
}

/**
 * Opens the TLS connection to the server and hands it to node:http only once it is trusted, so a
 * refused server never receives the request. Errors are catalogued: TRANSPORT_TLS_UNTRUSTED for a
 * certificate (or handshake) problem, TRANSPORT_UNREACHABLE for the network.
 */
function verifiedConnection(r: Resolved, track?: (socket: TLSSocket) => void): NonNullable<RequestOptions['createConnection']> {
  return (_options, oncreate) => {
    const host = r.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(r.url.port === '' ? 443 : r.url.port);
    const pinOnly = r.pins !== undefined && r.ca === undefined;
    let tcpConnected = false;
    let done = false;
    const socket: TLSSocket = tlsConnect({
      host,
      port,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(r.ca === undefined ? {} : { ca: r.ca }),
      // Chain and host name are verified by OpenSSL unless the pin alone establishes trust; then
      // the pin is checked below before anything is written.
      rejectUnauthorized: !pinOnly,
      minVersion: 'TLSv1.2',
      ALPNProtocols: ['http/1.1'],
    });
    track?.(socket);
    const finish = (err: FieldvaultError | null): void => {
      if (done) return;
      done = true;
      // `onError` stays attached (a no-op from now on): node:http adds its own listener on the next
      // tick, and an error in between must not become an uncaught exception.
      if (err !== null) {
        socket.destroy();
        oncreate(err, socket);
      } else {
        oncreate(null, socket);
      }
    };
    const onError = (err: Error): void => {
      const code = codeOf(err);
      if (!tcpConnected || (code !== undefined && NETWORK_CODES.has(code))) finish(unreachable(`${host}:${port}: ${code ?? 'connection failed'}`, err));
      else finish(untrusted(code ?? 'TLS handshake failed', err));
    };
    socket.once('connect', () => {
      tcpConnected = true;
    });
    socket.on('error', onError);
    socket.once('secureConnect', () => {
      if (!pinOnly && !socket.authorized) {
        finish(untrusted(String(socket.authorizationError ?? 'certificate not verified')));
        return;
      }
      const cert = socket.getPeerX509Certificate();
      const keyPin = cert === undefined ? undefined : publicKeyPin(cert);
      if (r.pins !== undefined) {
        // Either pin kind holds: a certificate renewed with the same key keeps its public-key pin.
        const fingerprint = normalisePin(cert?.fingerprint256 ?? '');
        if (!((fingerprint !== undefined && r.pins.has(fingerprint)) || (keyPin !== undefined && r.pins.has(keyPin)))) {
          finish(untrusted('the certificate does not match the pinned fingerprint'));
          return;
        }
      }
      if (keyPin !== undefined) r.peer.keyPin = keyPin;
      finish(null);
    });
    // Asynchronous: node:http waits for `oncreate`, so no byte is written before the checks above.
    return undefined;
  };
}

/** Keep-alive options shared by both pools: small, short-lived, most recently used socket first. */
const POOL_OPTIONS = {
  keepAlive: true,
  maxSockets: MAX_POOLED_SOCKETS,
  maxFreeSockets: MAX_POOLED_SOCKETS,
  // Idle timeout of a pooled socket: node:http destroys a free socket when it fires.
  timeout: IDLE_SOCKET_MS,
  // LIFO keeps the fewest sockets warm; the others reach the idle timeout and close.
  scheduling: 'lifo',
} as const;

/**
 * The keep-alive pool of one transport. Its only way to make a connection is `verifiedConnection`,
 * so every pooled socket passed the CA and pin checks before node:http could write a byte to it;
 * node:http returns a socket to the pool only after a complete exchange (anything else destroys it).
 * No TLS session cache: a new connection is always verified in full.
 */
class VerifiedAgent extends HttpsAgent {
  readonly #connect: NonNullable<RequestOptions['createConnection']>;

  constructor(r: Resolved) {
    super({ ...POOL_OPTIONS, maxCachedSessions: 0 });
    this.#connect = verifiedConnection(r);
  }

  override createConnection(options: ClientRequestArgs, oncreate?: (err: Error | null, socket: Duplex) => void): Duplex {
    // node:http's Agent accepts `undefined` here and waits for `oncreate` (see verifiedConnection).
    return this.#connect(options, oncreate as (err: Error | null, socket: Duplex) => void) as Duplex;
  }
}

/** Destroys the idle sockets of a pool (after one of them turned out to be dead). */
function dropIdleSockets(agent: HttpAgent): void {
  for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
}

/** A reused pooled socket failed before any answer: the call may be sent again (see `send`). */
class StaleSocket {
  constructor(readonly error: FieldvaultError) {}
}

/** Network failures that mean a reused socket had been closed by the other side meanwhile. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

interface RawResponse {
  readonly status: number;
  readonly contentType: string;
  readonly retryAfter: string | undefined;
  readonly body: Uint8Array;
}

/** One HTTP exchange. */
interface Call {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** Path and query, appended to the base URL. */
  readonly path: string;
  readonly token?: string;
  readonly body?: { readonly contentType: string; readonly bytes: Uint8Array };
  readonly accept: string;
  readonly maxResponseBytes: number;
  /**
   * The cap of an error answer's body (status outside 2xx), when it differs from
   * `maxResponseBytes`: a photo download caps its body at the photo's size, yet the server's JSON
   * error (PHOTO_NOT_FOUND, …) may be longer than a tiny photo and must still come back as its code.
   */
  readonly maxErrorResponseBytes?: number;
  /** `deadline`: all within `timeoutMs` (logins, unchanged); `idle`: `timeoutMs` without progress (sync). */
  readonly timeout: 'deadline' | 'idle';
  readonly signal?: AbortSignal | undefined;
  /** Told how many bytes of the request body have been handed to the connection. */
  readonly onSent?: ((bytes: number) => void) | undefined;
  /** Told how many bytes of the response body have arrived. */
  readonly onReceived?: ((bytes: number) => void) | undefined;
}

/** Calls a caller's progress callback; what it throws must not break the exchange. */
function tell(callback: ((bytes: number) => void) | undefined, bytes: number): void {
  if (callback === undefined) return;
  try {
    callback(bytes);
  } catch {
    // Progress is advisory.
  }
}

function cancelled(): FieldvaultError {
  return new FieldvaultError('SYNC_CANCELLED', { detail: 'the request was aborted' });
}

/** A catalogued code a server may send (not one the SDK raises itself). */
function acceptableServerCode(code: string): code is ErrorCode {
  return isErrorCode(code) && !isSdkOnlyCode(code);
}

function parseJson(raw: RawResponse): unknown {
  if (!/^application\/json(\s*;|$)/i.test(raw.contentType)) throw badResponse('not JSON', { status: raw.status });
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw.body));
  } catch (cause) {
    throw badResponse('malformed JSON', { status: raw.status }, cause);
  }
}

/** The catalogued error a server's error answer stands for, or TRANSPORT_BAD_RESPONSE. */
function serverError(raw: RawResponse): FieldvaultError {
  let body: unknown;
  try {
    body = parseJson(raw);
  } catch (err) {
    return err as FieldvaultError;
  }
  const parsed = body as { code?: unknown };
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.code !== 'string') return badResponse('an error without a code', { status: raw.status });
  try {
    checkSchema(ErrorBodySchema, body, 'TRANSPORT_BAD_RESPONSE');
  } catch {
    return badResponse('an error of unknown shape or code', { status: raw.status });
  }
  if (!acceptableServerCode(parsed.code)) return badResponse('an error code only the SDK may raise', { status: raw.status });
  const details: Record<string, string | number> = { status: raw.status };
  const retry = raw.retryAfter === undefined ? NaN : Number(raw.retryAfter);
  if (Number.isInteger(retry) && retry >= 0) details['retryAfterSeconds'] = retry;
  return new FieldvaultError(parsed.code, { detail: 'reported by the server', details });
}


function checkToken(token: unknown, field = 'token'): string {
  // Also keeps anything that could break the header line out of the request; the value is never echoed.
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) throw invalid(field, field === 'token' ? 'a session token as issued by the server' : '43 characters as issued by the server (letters, digits, "-", "_")');
  return token;
}

function checkUuid(value: unknown, field: string): string {
  if (typeof value !== 'string' || !UUID_V4_PATTERN.test(value)) throw invalid(field, 'a lowercase UUID v4');
  return value;
}

/** Validates each record of a page; one bad record makes the whole answer a bad response. */
function parseRecords(records: readonly unknown[]): ChildRecord[] {
  return records.map((r, i) => {
    try {
      return parseRecord(r, { maxHistory: MAX_HISTORY_CEILING });
    } catch (cause) {
      throw badResponse(`record ${i} is malformed`, { index: i }, cause);
    }
  });
}

/**
 * A number as plain decimal text: the server reads query numbers only in that form (bad-input
 * audit F6), and `String()` writes numbers below 1e-6 in exponent form (`1e-7`). Digits past the
 * 20th decimal place are dropped (an age range needs none of them).
 */
function decimalText(n: number): string {
  const text = String(n);
  if (!Number.isFinite(n) || !/e/i.test(text) || Math.abs(n) >= 1) return text;
  return n.toFixed(20).replace(/\.?0+$/, '').replace(/^-0$/, '0');
}

/** `?a=1&b=x` from defined values (booleans and numbers as text). */
function queryString(values: Readonly<Record<string, string | number | boolean | undefined>>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined) qs.set(k, typeof v === 'number' ? decimalText(v) : String(v));
  const text = qs.toString();
  return text === '' ? '' : `?${text}`;
}

/**
 * An HTTPS `Transport` to one fieldvault server. Every answer is checked against the protocol's
 * schemas before it is returned (pulled and found records also through `parseRecord`, photos
 * against their ref); an error answer becomes a `FieldvaultError` with the server's catalogued
 * `code` (`details.status`, and `details.retryAfterSeconds` when the server sent Retry-After). The
 * transport keeps no cookies, tokens or TLS sessions between calls; its only state is the pool of
 * verified connections of its sync calls (see the top of the file, and `close()`).
 *
 * Its methods throw:
 * - TRANSPORT_UNREACHABLE when the server cannot be reached, does not answer in time (`timeoutMs`),
 *   or the connection is lost (closed or reset) before the end of an answer within the size limit;
 * - TRANSPORT_TLS_UNTRUSTED when the certificate is not trusted (nothing was sent);
 * - TRANSPORT_BAD_RESPONSE when the answer is malformed (its HTTP framing, or a complete body
 *   holding truncated JSON), too large or of the wrong shape;
 * - SYNC_CANCELLED when the call's `signal` fired;
 * - the server's code (AUTH_INVALID_CREDENTIALS, DEVICE_BLACKLISTED, RATE_LIMITED, …) for its errors.
 * @throws INPUT_INVALID when an option is malformed (an `http:` URL without `allowInsecureLoopback`
 * or to a host that is not loopback, a pin that is not 64 hex digits, …).
 */
export function createHttpTransport(options: HttpTransportOptions): HttpTransport {
  const r = resolve(options);
  const base = r.url.href.replace(/\/+$/, '');
  const secure = r.url.protocol === 'https:';
  // This transport's own pool, for sync calls only (see the top of the file).
  const pool: HttpAgent = secure ? new VerifiedAgent(r) : new HttpAgent(POOL_OPTIONS);
  /** Bumped by `close()`: a request it cut is not sent again. */
  let closings = 0;

  /**
   * Sends a call. Sync calls go over the pool; when a reused socket turns out to have been closed
   * by the server before any answer came, the call is sent once more on a new connection (sync
   * calls are idempotent: a push batch may be re-sent, the others read or resume at an offset).
   */
  async function send(call: Call): Promise<RawResponse> {
    const pooled = call.timeout === 'idle';
    const closingsBefore = closings;
    try {
      return await sendOnce(call, pooled);
    } catch (err) {
      if (!(err instanceof StaleSocket)) throw err;
      if (closings !== closingsBefore) throw err.error;
      dropIdleSockets(pool);
      if (call.signal?.aborted === true) throw cancelled();
      return sendOnce(call, pooled).catch((again: unknown) => {
        throw again instanceof StaleSocket ? again.error : again;
      });
    }
  }

  function sendOnce(call: Call, pooled: boolean): Promise<RawResponse> {
    const target = new URL(`${base}${call.path}`);
    const body = call.body?.bytes;
    return new Promise<RawResponse>((resolvePromise, reject) => {
      if (call.signal?.aborted === true) {
        reject(cancelled());
        return;
      }
      let socket: Duplex | undefined;
      let settled = false;
      let responding = false;
      /** The answer's status once its headers arrived (for the details of a body cut short). */
      let status = 0;
      let lastProgress = Date.now();
      const progress = (): void => {
        lastProgress = Date.now();
      };
      const onAbort = (): void => settle(cancelled());
      const settle = (err: FieldvaultError | StaleSocket | null, value?: RawResponse): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearInterval(idle);
        call.signal?.removeEventListener('abort', onAbort);
        if (err !== null) {
          // The exchange is in an unknown state: its socket must never carry another request.
          req.destroy();
          socket?.destroy();
          reject(err);
        } else resolvePromise(value as RawResponse);
      };
      const onResponse = (res: IncomingMessage): void => {
        responding = true;
        status = res.statusCode ?? 0;
        progress();
        const limit = status >= 200 && status <= 299 ? call.maxResponseBytes : (call.maxErrorResponseBytes ?? call.maxResponseBytes);
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > limit) {
          settle(badResponse('too large', { status, limit }));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          progress();
          size += chunk.byteLength;
          if (size > limit) settle(badResponse('too large', { status, limit }));
          else {
            chunks.push(chunk);
            tell(call.onReceived, size);
          }
        });
        // Over the limit or malformed, the exchange has already settled: only a body the network
        // cut short while it was within bounds gets here.
        res.on('error', (cause) => settle(cutShort(status, cause)));
        res.on('end', () => {
          if (!res.complete) {
            settle(connectionLost(status));
            return;
          }
          const retryAfter = res.headers['retry-after'];
          settle(null, {
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
            body: new Uint8Array(Buffer.concat(chunks)),
          });
        });
      };
      const headers: Record<string, string> = { accept: call.accept };
      if (call.token !== undefined) headers['authorization'] = `Bearer ${call.token}`;
      if (call.body !== undefined) {
        headers['content-type'] = call.body.contentType;
        headers['content-length'] = String(call.body.bytes.byteLength);
      }
      const requestOptions: RequestOptions = {
        method: call.method,
        headers,
        ...(pooled
          ? { agent: pool }
          : // Logins: a fresh, verified connection, closed after the answer.
            secure
            ? { createConnection: verifiedConnection(r, (s) => (socket = s)) }
            : { agent: false }),
      };
      const req: ClientRequest = (secure ? httpsRequest : httpRequest)(target, requestOptions, onResponse);
      req.on('socket', (s) => (socket = s));
      const deadline =
        call.timeout === 'deadline' ? setTimeout(() => settle(unreachable(`no answer within ${r.timeoutMs} ms`)), r.timeoutMs) : undefined;
      const idle =
        call.timeout === 'idle'
          ? setInterval(() => {
              if (Date.now() - lastProgress > r.timeoutMs) settle(unreachable(`no progress for ${r.timeoutMs} ms`));
            }, Math.max(25, Math.min(1_000, r.timeoutMs >> 2)))
          : undefined;
      call.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err: Error) => {
        const code = codeOf(err);
        if (isFieldvaultError(err)) settle(err);
        // llhttp's codes: the peer answered with something that is not HTTP/1.1.
        else if (code?.startsWith('HPE_') === true) settle(badResponse('not an HTTP response', {}, err));
        else if (responding) settle(cutShort(status, err));
        else if (req.reusedSocket && code !== undefined && STALE_SOCKET_CODES.has(code)) settle(new StaleSocket(unreachable(code, err)));
        else settle(unreachable(code ?? 'connection failed', err));
      });
      req.on('socket', progress);
      if (body === undefined) {
        req.end();
        return;
      }
      // The body goes in pieces with backpressure, so the idle timeout sees it moving.
      let offset = 0;
      const writeMore = (): void => {
        while (!settled && offset < body.byteLength) {
          const piece = body.subarray(offset, Math.min(body.byteLength, offset + WRITE_CHUNK_BYTES));
          offset += piece.byteLength;
          const accepted = req.write(piece);
          tell(call.onSent, offset);
          if (!accepted) {
            req.once('drain', () => {
              progress();
              writeMore();
            });
            return;
          }
        }
        if (!settled) req.end();
      };
      writeMore();
    });
  }

  async function exchange(call: Call): Promise<RawResponse> {
    const started = Date.now();
    const path = call.path.split('?')[0] ?? '';
    const raw = await send(call).catch((err: unknown) => {
      r.logger.warn({ serverId: r.serverId, method: call.method, path, code: codeOf(err) }, 'request failed');
      throw err;
    });
    r.logger.debug({ serverId: r.serverId, method: call.method, path, status: raw.status, bytes: raw.body.byteLength, ms: Date.now() - started }, 'response');
    if (raw.status < 200 || raw.status > 299) throw serverError(raw);
    return raw;
  }

  /** A JSON exchange whose answer is checked by `check`. */
  async function json<T>(call: Omit<Call, 'accept'>, check: (value: unknown) => T): Promise<T> {
    return check(parseJson(await exchange({ ...call, accept: 'application/json' })));
  }

  function jsonBody(payload: unknown): { contentType: string; bytes: Uint8Array } {
    return { contentType: 'application/json', bytes: Buffer.from(JSON.stringify(payload), 'utf8') };
  }

  function post<T>(path: string, payload: unknown, check: (value: unknown) => T): Promise<T> {
    return json({ method: 'POST', path, body: jsonBody(payload), maxResponseBytes: r.maxResponseBytes, timeout: 'deadline' }, check);
  }

  const sync = (o: TransportCallOptions | undefined): { maxResponseBytes: number; timeout: 'idle'; signal: AbortSignal | undefined } => ({
    maxResponseBytes: r.maxSyncResponseBytes,
    timeout: 'idle',
    signal: o?.signal,
  });

  async function push(token: string, request: PushRequest, o?: TransportCallOptions): Promise<PushResponse> {
    const { records, unacknowledged } = request;
    const body = unacknowledged === undefined ? { records } : { records, unacknowledged };
    const res = await json(
      { method: 'POST', path: '/v1/sync/push', token: checkToken(token), body: jsonBody(body), ...sync(o) },
      (v) => checkSchema(PushResponseSchema, v, 'TRANSPORT_BAD_RESPONSE'),
    );
    // One result per record, in order: a server cannot acknowledge records it was not sent.
    if (res.results.length !== records.length) throw badResponse('the results do not match the records sent', { sent: records.length, results: res.results.length });
    res.results.forEach((result, i) => {
      if (result.id !== records[i]?.id) throw badResponse('a result names another record', { index: i });
      if ((result.status === 'error') !== (result.code !== undefined)) throw badResponse('a result without its code', { index: i });
      // A result names a photo of the record sent (`photos.<photoId>`), never one the phone knows nothing of.
      const photoId = photoIdOfField(result.field);
      if (photoId !== undefined && (result.status !== 'error' || !Object.hasOwn(records[i]?.photos ?? {}, photoId))) {
        throw badResponse('a result names a photo the record does not carry', { index: i });
      }
    });
    return res;
  }

  async function pull(token: string, request: PullRequest, o?: TransportCallOptions): Promise<PullResponse> {
    const { since, limit } = request;
    if (!Number.isInteger(limit) || limit < 1 || limit > PULL_MAX_LIMIT) throw invalid('limit', `an integer in 1 … ${PULL_MAX_LIMIT}`);
    if (since !== undefined && (typeof since !== 'string' || since.length === 0)) throw invalid('since', 'a checkpoint as the server returned it');
    // The page's shape here, each record once in `parseRecords` (not also in the page schema).
    const page = await json({ method: 'GET', path: `/v1/sync/pull${queryString({ since, limit })}`, token: checkToken(token), ...sync(o) }, (v) =>
      checkSchema(PullPageSchema, v, 'TRANSPORT_BAD_RESPONSE'),
    );
    if (page.records.length > limit) throw badResponse('more records than asked for', { limit, records: page.records.length });
    return { ...page, records: parseRecords(page.records) };
  }

  /** Checks an upload status is about this photo as the phone describes it. */
  function checkStatus(value: unknown, photo: PhotoUpload): PhotoUploadStatus {
    const status = checkSchema(PhotoUploadStatusSchema, value, 'TRANSPORT_BAD_RESPONSE');
    if (status.photoId !== photo.photoId || status.recordId !== photo.recordId) throw badResponse('the upload status is for another photo');
    if (status.size !== photo.bytes.byteLength || status.sha256 !== photo.sha256) {
      // The server's record describes this photo id differently: nothing to upload that would fit.
      throw new FieldvaultError('PHOTO_DIGEST_MISMATCH', { detail: "the server's record describes another photo under this id" });
    }
    if (status.received > status.size || (status.complete && status.received !== status.size)) throw badResponse('an impossible upload offset');
    return status;
  }

  async function uploadPhoto(token: string, photo: PhotoUpload, o?: PhotoUploadOptions): Promise<PhotoUploadStatus> {
    checkToken(token);
    const photoId = checkUuid(photo.photoId, 'photoId');
    const recordId = checkUuid(photo.recordId, 'recordId');
    if (!(photo.bytes instanceof Uint8Array) || photo.bytes.byteLength === 0) throw invalid('bytes', 'the photo bytes');
    if (!(PHOTO_TYPES as readonly string[]).includes(photo.type)) throw invalid('type', PHOTO_TYPES.join(', '));
    const statusPath = `/v1/photos/${photoId}/upload${queryString({ record: recordId })}`;
    // A few rounds at most: each PUT either completes or reports where the server's copy ends.
    for (let round = 0; round < 4; round++) {
      const status = await json({ method: 'GET', path: statusPath, token, ...sync(o) }, (v) => checkStatus(v, photo));
      if (status.complete) return status;
      o?.onResume?.(status.received);
      try {
        const after = await json(
          {
            method: 'PUT',
            path: `/v1/photos/${photoId}${queryString({ record: recordId, offset: status.received })}`,
            token,
            body: { contentType: photo.type, bytes: photo.bytes.subarray(status.received) },
            ...sync(o),
            onSent: o?.onBytes === undefined ? undefined : (sent) => o.onBytes?.(status.received + sent),
          },
          (v) => checkStatus(v, photo),
        );
        if (after.complete) return after;
      } catch (err) {
        // Another upload of the same photo moved on meanwhile: ask again where it stands.
        if (!isFieldvaultError(err) || err.code !== 'PHOTO_OFFSET_MISMATCH') throw err;
      }
    }
    throw badResponse('the server does not complete the upload');
  }

  async function downloadPhoto(token: string, expected: PhotoDownload, o?: PhotoTransferOptions): Promise<DownloadedPhoto> {
    checkToken(token);
    const photoId = checkUuid(expected.photoId, 'photoId');
    if (!Number.isInteger(expected.size) || expected.size < 1) throw invalid('size', 'a positive integer');
    const raw = await exchange({
      method: 'GET',
      path: `/v1/photos/${photoId}`,
      token,
      accept: PHOTO_TYPES.join(', '),
      maxResponseBytes: expected.size,
      maxErrorResponseBytes: r.maxResponseBytes,
      timeout: 'idle',
      signal: o?.signal,
      onReceived: o?.onBytes,
    });
    const type = raw.contentType.split(';')[0]?.trim().toLowerCase();
    if (type !== expected.type) throw badResponse('the photo has another content type than its record says');
    if (raw.body.byteLength !== expected.size || sha256Hex(raw.body) !== expected.sha256) throw badResponse('the photo does not match the size and SHA-256 on its record');
    if (detectPhotoType(raw.body) !== expected.type) throw badResponse('the bytes are not the image type the record says');
    return { bytes: raw.body, type: expected.type };
  }

  async function search(token: string, query: RecordSearchQuery, o?: TransportCallOptions): Promise<RecordSearchResponse> {
    const q = checkSchema(RecordSearchQuerySchema, query, 'INPUT_INVALID');
    const page = await json({ method: 'GET', path: `/v1/records/search${queryString(q)}`, token: checkToken(token), ...sync(o) }, (v) =>
      checkSchema(RecordSearchPageSchema, v, 'TRANSPORT_BAD_RESPONSE'),
    );
    return { ...page, records: parseRecords(page.records) };
  }

  async function form(token: string, o?: TransportCallOptions): Promise<FormDefinition> {
    return json({ method: 'GET', path: '/v1/forms/child', token: checkToken(token), ...sync(o) }, (v) => {
      try {
        return parseFormDefinition(checkSchema(FormDefinitionSchema, v, 'TRANSPORT_BAD_RESPONSE'));
      } catch (cause) {
        throw badResponse('a malformed form definition', {}, cause);
      }
    });
  }

  async function logout(token: string, o?: TransportCallOptions): Promise<void> {
    // 204 and no body: nothing to parse, `exchange` has already turned an error answer into its code.
    await exchange({
      method: 'POST',
      path: '/v1/auth/logout',
      token: checkToken(token),
      body: jsonBody({}),
      accept: 'application/json',
      maxResponseBytes: r.maxResponseBytes,
      timeout: 'deadline',
      signal: o?.signal,
    });
  }

  return Object.freeze({
    serverId: r.serverId,
    identity: identityOf(base, r),
    logout,
    baseUrl: base,
    peerKeyPin: (): string | undefined => r.peer.keyPin,
    close: (): void => {
      closings += 1;
      pool.destroy();
    },
    challenge: (request: ChallengeBody): Promise<ChallengeResponse> =>
      post('/v1/auth/challenge', request, (v) => checkSchema(ChallengeResponseSchema, v, 'TRANSPORT_BAD_RESPONSE')),
    login: (request: LoginBody): Promise<LoginResponse> => post('/v1/auth/login', request, (v) => checkSchema(LoginResponseSchema, v, 'TRANSPORT_BAD_RESPONSE')),
    requestAccount: (request: SignupRequestBody): Promise<SignupRequestResponse> =>
      post('/v1/signups', request, (v) => checkSchema(SignupRequestResponseSchema, v, 'TRANSPORT_BAD_RESPONSE')),
    // The token travels in the body only (never the URL); an invalid one is refused without echoing it.
    setPassword: async (request: SetPasswordBody): Promise<SetPasswordResponse> => {
      checkToken(request.resetToken, 'resetToken');
      if (typeof request.password !== 'string') throw invalid('password', 'must be a string');
      return post('/v1/auth/password', { resetToken: request.resetToken, password: request.password }, (v) =>
        checkSchema(SetPasswordResponseSchema, v, 'TRANSPORT_BAD_RESPONSE'),
      );
    },
    signupStatus: (request: SignupStatusBody): Promise<SignupStatusResponse> =>
      post('/v1/signups/status', request, (v) => checkSchema(SignupStatusResponseSchema, v, 'TRANSPORT_BAD_RESPONSE')),
    push,
    pull,
    uploadPhoto,
    downloadPhoto,
    search,
    form,
  });
}
