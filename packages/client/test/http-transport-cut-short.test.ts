// Answers the network cuts short (issue 5: "retry with backoff on network errors"): a connection
// closed or reset after the response headers, before the announced length or the end of a chunked
// body, is TRANSPORT_UNREACHABLE, which the sync's retry sends again; the login's retry does not.
// Answers that are malformed or over the limit, then cut, stay TRANSPORT_BAD_RESPONSE. Real local
// HTTPS servers (and one plain loopback server, where a TCP reset can be sent).
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server, Socket } from 'node:net';
import t, { type Test } from 'tap';
import { createHttpTransport, type HttpTransportOptions } from '../src/index.js';
import { isLoginRetryable, isRetryable, withRetry } from '../src/retry.js';
import { makeCert } from './fixtures/tls.js';

const good = await makeCert();

const TOKEN = 'T'.repeat(43);
const IMEI = '490154203237518';
const PAGE = { records: [], checkpoint: 'c1', more: false, deviceStatus: 'active', serverTime: 1_700_000_000_000 };
const CHALLENGE = { challenge: 'A'.repeat(43), expiresAt: '2030-01-01T00:00:00.000Z' };

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** A local server counting the requests it received; `handler` sees the request's number (1-based). */
async function serve(t: Test, handler: Handler, secure = true): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    requests += 1;
    const n = requests;
    req.resume();
    req.on('end', () => handler(req, res, n));
  };
  const server: Server = secure ? createHttpsServer({ cert: good.cert, key: good.key }, onRequest) : createHttpServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => ((server as Server & { closeAllConnections(): void }).closeAllConnections(), server.close(() => resolve()))));
  return { url: `${secure ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

function transportTo(url: string, extra: Partial<HttpTransportOptions> = {}): ReturnType<typeof createHttpTransport> {
  const options = url.startsWith('http:') ? { allowInsecureLoopback: true } : { tls: { pinSha256: good.fingerprint } };
  return createHttpTransport({ baseUrl: url, serverId: 'server-a', timeoutMs: 5_000, ...options, ...extra });
}

async function failure(p: Promise<unknown>): Promise<{ code?: string; message?: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string };
  }
  throw new Error('expected a rejection');
}

function full(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Announces the whole body, sends half of it, then drops the connection (no more bytes, no error on the wire). */
function half(res: ServerResponse, body: unknown): void {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': text.byteLength });
  res.write(text.subarray(0, text.byteLength >> 1));
  setTimeout(() => res.socket?.destroy(), 20);
}

const answer = (req: IncomingMessage): unknown => (req.url?.startsWith('/v1/auth/') === true ? CHALLENGE : PAGE);

t.test('a body the network cuts short is TRANSPORT_UNREACHABLE, retryable, and says what to do', async (t) => {
  const cases: Array<[string, Handler, boolean]> = [
    ['half of an announced length, then closed', (req, res) => half(res, answer(req)), true],
    [
      'a chunked body without its last chunk, then closed',
      (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(JSON.stringify(answer(req)).slice(0, 20));
        setTimeout(() => res.socket?.destroy(), 20);
      },
      true,
    ],
    [
      'half of an announced length, then a TCP reset',
      (req, res) => {
        const text = Buffer.from(JSON.stringify(answer(req)));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': text.byteLength });
        res.write(text.subarray(0, text.byteLength >> 1));
        setTimeout(() => (res.socket as Socket | null)?.resetAndDestroy(), 20);
      },
      // A reset can be sent on a plain TCP socket only (a TLS socket's handle refuses it).
      false,
    ],
  ];
  for (const [name, handler, secure] of cases) {
    const s = await serve(t, handler, secure);
    const tr = transportTo(s.url);
    const pulled = await failure(tr.pull(TOKEN, { limit: 1 }));
    t.equal(pulled.code, 'TRANSPORT_UNREACHABLE', `${name}: a pull`);
    t.ok(isRetryable(pulled), `${name}: the sync retries it`);
    t.equal(pulled.details?.['status'], 200, `${name}: the status that came`);
    t.match(pulled.message, /connection to it was lost.*the connection was lost before the end of the answer.*Check the network connection/, `${name}: the message says what happened and what to do`);
    const login = await failure(tr.challenge({ imei: IMEI }));
    t.equal(login.code, 'TRANSPORT_UNREACHABLE', `${name}: a login call`);
    t.notOk(isLoginRetryable(login), `${name}: a login is not sent again on it`);
    t.equal(s.requests(), 2, `${name}: the transport itself sent each call once`);
    tr.close();
  }
});

t.test('an answer over the limit or malformed, then cut, stays TRANSPORT_BAD_RESPONSE', async (t) => {
  const cases: Array<[string, Handler]> = [
    [
      'a streamed body over the limit, then closed',
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < 40; i += 1) res.write(Buffer.alloc(64 * 1024, 0x20));
        setTimeout(() => res.socket?.destroy(), 20);
      },
    ],
    [
      'an announced length over the limit, part of it, then closed',
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(4 << 20) });
        res.write('{"records":');
        setTimeout(() => res.socket?.destroy(), 20);
      },
    ],
    [
      'a malformed chunked body, then closed',
      (_q, res) => {
        res.socket?.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"rec\r\nZZ\r\nords');
        setTimeout(() => res.socket?.destroy(), 50);
      },
    ],
    ['a complete answer holding half a JSON page', (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(PAGE).slice(0, 20))],
  ];
  for (const [name, handler] of cases) {
    const s = await serve(t, handler);
    const tr = transportTo(s.url, { maxSyncResponseBytes: 1024 * 1024 });
    const err = await failure(tr.pull(TOKEN, { limit: 1 }));
    t.equal(err.code, 'TRANSPORT_BAD_RESPONSE', name);
    t.notOk(isRetryable(err), `${name}: not retried`);
    tr.close();
  }
});

t.test("a pull page cut short mid-body is sent again by the sync's retry and then arrives whole", async (t) => {
  const s = await serve(t, (req, res, n) => (n === 1 ? half(res, answer(req)) : full(res, answer(req))));
  const tr = transportTo(s.url);
  t.teardown(() => tr.close());
  const retried: string[] = [];
  const page = await withRetry(() => tr.pull(TOKEN, { limit: 1 }), { attempts: 3, baseDelayMs: 10 }, undefined, ({ code }) => retried.push(code));
  t.equal(page.checkpoint, 'c1', 'the second answer is the page');
  t.same(retried, ['TRANSPORT_UNREACHABLE'], 'one retry, after the cut');
  t.equal(s.requests(), 2);
});

t.test("a login answer cut short is not sent again by the login's retry", async (t) => {
  const s = await serve(t, (req, res) => half(res, answer(req)));
  const tr = transportTo(s.url);
  t.teardown(() => tr.close());
  const err = await failure(withRetry(() => tr.challenge({ imei: IMEI }), { attempts: 5, baseDelayMs: 10 }, undefined, undefined, isLoginRetryable));
  t.equal(err.code, 'TRANSPORT_UNREACHABLE');
  t.equal(s.requests(), 1, 'sent once');
});
