import { maxHeaderSize, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { FieldvaultError, toErrorBody, type ErrorCode } from '@fieldvault/protocol';

/**
 * How long a connection answered here may stay open for the client to read the answer and close
 * it. Closing at once with bytes still unread (the rest of an oversized header) makes the kernel
 * send a reset, which can discard the answer before the client reads it.
 */
export const CLIENT_ERROR_LINGER_MS = 2_000;

/** Node's parser errors (`HPE_*`) and timeouts, as catalogued codes; anything else gets no answer. */
export function clientErrorCode(errCode: string | undefined): ErrorCode | undefined {
  if (errCode === 'HPE_HEADER_OVERFLOW') return 'INPUT_HEADERS_TOO_LARGE';
  if (errCode === 'ERR_HTTP_REQUEST_TIMEOUT') return 'INPUT_REQUEST_TIMEOUT';
  if (errCode?.startsWith('HPE_') === true) return 'INPUT_MALFORMED_REQUEST';
  return undefined;
}

/** The raw HTTP/1.1 answer for `fv`, with `headers` (those every answer of ours carries). */
export function rawErrorResponse(fv: FieldvaultError, headers: Readonly<Record<string, string>>): string {
  const body = JSON.stringify(toErrorBody(fv));
  return [
    `HTTP/1.1 ${fv.statusCode} ${STATUS_CODES[fv.statusCode] ?? 'Error'}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    // The parser cannot go on after an error: this connection carries no further request.
    'connection: close',
    '',
    body,
  ].join('\r\n');
}

/**
 * The header limit in force for `socket`'s server: its own `maxHeaderSize` when one was set, else
 * Node's (16 KiB unless `--max-http-header-size`, e.g. in NODE_OPTIONS, says otherwise). The
 * refusal names this number, not a default that may not be the one applied.
 */
export function headerLimitOf(socket: Socket): number {
  const own = (socket as { server?: { maxHeaderSize?: unknown } | null }).server?.maxHeaderSize;
  return typeof own === 'number' && own > 0 ? own : maxHeaderSize;
}

/** `16384 bytes (16 KiB)`: the limit as a person reads it, exact in bytes. */
function describeBytes(bytes: number): string {
  return bytes % 1024 === 0 ? `${bytes} bytes (${bytes / 1024} KiB)` : `${bytes} bytes`;
}

/** The refusal for `code`, with the limit that applied when the headers were too large. */
function refusal(code: ErrorCode, socket: Socket): FieldvaultError {
  if (code !== 'INPUT_HEADERS_TOO_LARGE') return new FieldvaultError(code);
  return new FieldvaultError(code, { detail: `at most ${describeBytes(headerLimitOf(socket))} in all` });
}

interface InFlight {
  readonly headersSent?: boolean;
}

/** Connections whose refusal the client error handler logged at `info`. */
const loggedRefusals = new WeakSet<Socket>();

/**
 * True when this connection's request was refused, and logged, by the client error handler: a
 * request that had already reached its route then fails reading its body, and needs no second
 * log record.
 */
export function refusedByParser(socket: Socket | null | undefined): boolean {
  return socket != null && loggedRefusals.has(socket);
}

/**
 * Fastify's `clientErrorHandler`: errors Node raises before (or while) a request reaches Fastify
 * — a garbage request line, a bad header, ambiguous or broken body framing, headers over the
 * limit, the request timeout — get a catalogued body like every other answer (bad-input audit,
 * F2), instead of Fastify's own `{ statusCode, error, message }` without a `code`.
 *
 * Logged at `info` without the error object: it carries the raw bytes of the request, which may
 * hold an `authorization` header.
 */
export function createClientErrorHandler(options: { readonly headers: Readonly<Record<string, string>> }): (this: { log: FastifyBaseLogger }, err: Error & { code?: string }, socket: Socket) => void {
  // The parser may report more errors for bytes that follow the first: one answer per connection.
  const answered = new WeakSet<Socket>();
  return function clientErrorHandler(err, socket) {
    if (answered.has(socket)) return;
    answered.add(socket);
    const code = clientErrorCode(err.code);
    // ECONNRESET and other socket errors: the client is gone, there is no one to answer.
    if (code === undefined || socket.destroyed) {
      this.log.debug({ errCode: err.code }, 'client connection failed');
      socket.destroy();
      return;
    }
    // The client ended the connection in the middle of a request: if the request had reached a
    // route, its own record says so ("client closed the request"); this one is for debugging.
    // Any other refusal is this connection's one record: the route's abort then logs nothing.
    const level = err.code === 'HPE_INVALID_EOF_STATE' ? 'debug' : 'info';
    if (level === 'info') loggedRefusals.add(socket);
    this.log[level]({ code, errCode: err.code, remoteAddress: socket.remoteAddress }, 'request refused');
    // Bytes of an answer already on the wire would be corrupted by a second one (as Node's own handler checks).
    const inFlight = (socket as { _httpMessage?: InFlight | null })._httpMessage;
    if (!socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    socket.end(rawErrorResponse(refusal(code, socket), options.headers));
    const linger = setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
  };
}
