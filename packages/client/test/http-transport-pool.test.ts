// Connection reuse of the HTTPS transport (issue 5: sync speed). Sync calls share one keep-alive
// pool per transport; these tests count the TLS connections a real local HTTPS server accepts and
// check that reuse happens, that only verified sockets are pooled, that a failed, cancelled or
// hostile exchange never leaves its socket in the pool, that another transport (another pin, CA or
// server) never gets a pooled socket, and that a socket the server closed is replaced once.
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t, { type Test } from 'tap';
import { createHttpTransport, type HttpTransportOptions } from '../src/index.js';
import { makeCert } from './fixtures/tls.js';

const good = await makeCert();
const other = await makeCert();

const TOKEN = 'T'.repeat(43);
const IMEI = '490154203237518';
const PAGE = { records: [], checkpoint: 'c1', more: false, deviceStatus: 'active', serverTime: 1_700_000_000_000 };
const CHALLENGE = { challenge: 'A'.repeat(43), expiresAt: '2030-01-01T00:00:00.000Z' };

/** What the server saw: TLS connections accepted, requests, and requests per connection. */
interface Counting {
  url: string;
  connections: number;
  requests: number;
  /** Connections the server saw closed. */
  closed: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, nthOnSocket: number) => void;

function sendJson(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const page: Handler = (req, res) => sendJson(res, req.url?.startsWith('/v1/auth/') === true ? CHALLENGE : PAGE);

async function countingServer(t: Test, handler: Handler = page): Promise<Counting> {
  const state: Counting = { url: '', connections: 0, requests: 0, closed: 0 };
  const perSocket = new WeakMap<Socket, number>();
  const server = createHttpsServer({ cert: good.cert, key: good.key }, (req, res) => {
    state.requests += 1;
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    req.resume();
    req.on('end', () => handler(req, res, n));
  });
  server.keepAliveTimeout = 30_000;
  server.on('secureConnection', (socket) => {
    state.connections += 1;
    socket.on('close', () => (state.closed += 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  state.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

function transportTo(url: string, extra: Partial<HttpTransportOptions> = {}): ReturnType<typeof createHttpTransport> {
  const tr = createHttpTransport({ baseUrl: url, tls: { pinSha256: good.fingerprint }, timeoutMs: 5_000, ...extra });
  return tr;
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

/** Resolves once the server has seen `n` connections closed (no timing: polls the event loop). */
async function closedAtLeast(s: Counting, n: number): Promise<void> {
  while (s.closed < n) await new Promise((resolve) => setImmediate(resolve));
}

t.test('sync calls of one transport reuse one verified connection', async (t) => {
  const s = await countingServer(t);
  const tr = transportTo(s.url);
  t.teardown(() => tr.close());
  for (let i = 0; i < 10; i += 1) t.equal((await tr.pull(TOKEN, { limit: 500 })).checkpoint, 'c1');
  t.equal(s.requests, 10);
  t.equal(s.connections, 1, 'ten pulls, one TLS connection');
});

t.test('login calls get a fresh connection each and do not take a pooled one', async (t) => {
  const s = await countingServer(t);
  const tr = transportTo(s.url);
  t.teardown(() => tr.close());
  await tr.pull(TOKEN, { limit: 1 });
  await tr.challenge({ imei: IMEI });
  await tr.challenge({ imei: IMEI });
  t.equal(s.connections, 3, 'one pooled connection for the pull, one per challenge');
  await tr.pull(TOKEN, { limit: 1 });
  t.equal(s.connections, 3, 'the pull after them reuses the pooled connection');
});

t.test('another transport never gets a pooled socket: a wrong pin is refused though a verified connection is open', async (t) => {
  const s = await countingServer(t);
  const first = transportTo(s.url);
  t.teardown(() => first.close());
  await first.pull(TOKEN, { limit: 1 });
  t.equal(s.connections, 1);

  const wrongPin = transportTo(s.url, { tls: { pinSha256: other.fingerprint } });
  t.equal(await codeOf(wrongPin.pull(TOKEN, { limit: 1 })), 'TRANSPORT_TLS_UNTRUSTED');
  t.equal(await codeOf(wrongPin.pull(TOKEN, { limit: 1 })), 'TRANSPORT_TLS_UNTRUSTED', 'again: nothing was pooled for it');
  const wrongCa = transportTo(s.url, { tls: { ca: other.cert } });
  t.equal(await codeOf(wrongCa.pull(TOKEN, { limit: 1 })), 'TRANSPORT_TLS_UNTRUSTED');
  t.equal(s.requests, 1, 'the refused transports sent nothing');

  const second = transportTo(s.url);
  t.teardown(() => second.close());
  await second.pull(TOKEN, { limit: 1 });
  t.equal(s.connections, 2, 'the same options in another transport: a connection of its own (the refused handshakes never completed)');
  await first.pull(TOKEN, { limit: 1 });
  await second.pull(TOKEN, { limit: 1 });
  t.equal(s.connections, 2, 'each keeps reusing its own');
});

t.test('a cancelled request destroys its socket; the next call opens a new verified connection', async (t) => {
  const s = await countingServer(t, (req, res, n) => {
    // The second request on a connection gets half an answer and then nothing.
    if (n === 2) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"records":');
      return;
    }
    page(req, res, n);
  });
  const tr = transportTo(s.url);
  t.teardown(() => tr.close());
  await tr.pull(TOKEN, { limit: 1 });
  const controller = new AbortController();
  const pending = tr.pull(TOKEN, { limit: 1 }, { signal: controller.signal });
  // Cancel once the half answer has been sent on the reused connection.
  while (s.requests < 2) await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  t.equal(await codeOf(pending), 'SYNC_CANCELLED');
  await closedAtLeast(s, 1);
  t.equal((await tr.pull(TOKEN, { limit: 1 })).checkpoint, 'c1');
  t.equal(s.connections, 2, 'a new connection after the cancelled one');
});

t.test('an idle timeout, an oversized and a malformed answer each destroy their socket', async (t) => {
  const hostile: Array<[string, Handler, string]> = [
    ['a stalled answer', (_q, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' }).write('{'), 'TRANSPORT_UNREACHABLE'],
    ['a declared size over the limit', (_q, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(4 << 20) }).end(), 'TRANSPORT_BAD_RESPONSE'],
    [
      'a streamed body over the limit',
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < 40; i += 1) res.write(Buffer.alloc(64 * 1024, 0x20));
        res.end('{}');
      },
      'TRANSPORT_BAD_RESPONSE',
    ],
    ['bytes after the answer', (_q, res) => res.socket?.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n\r\ngarbage'), 'TRANSPORT_BAD_RESPONSE'],
  ];
  for (const [name, bad, code] of hostile) {
    const s = await countingServer(t, (req, res, n) => (n === 2 ? bad(req, res, n) : page(req, res, n)));
    const tr = transportTo(s.url, { timeoutMs: 300, maxSyncResponseBytes: 1024 * 1024 });
    await tr.pull(TOKEN, { limit: 1 });
    t.equal(await codeOf(tr.pull(TOKEN, { limit: 1 })), code, name);
    await closedAtLeast(s, 1);
    t.equal((await tr.pull(TOKEN, { limit: 1 })).checkpoint, 'c1', `${name}: the next call works`);
    t.equal(s.connections, 2, `${name}: on a new connection`);
    tr.close();
  }
});

t.test('a pooled socket the server closed meanwhile is replaced, and the call is sent once more', async (t) => {
  // The server drops the connection when a second request arrives on it (as a server closing an
  // idle connection at the moment the phone reuses it would).
  const s = await countingServer(t, (req, res, n) => (n === 2 ? req.socket.destroy() : page(req, res, n)));
  const tr = transportTo(s.url);
  t.teardown(() => tr.close());
  await tr.pull(TOKEN, { limit: 1 });
  t.equal((await tr.pull(TOKEN, { limit: 1 })).checkpoint, 'c1', 'the call succeeds on a new connection');
  t.equal(s.requests, 3);
  t.equal(s.connections, 2);
});

t.test('close() closes the pooled connections; a later call opens a new verified one', async (t) => {
  const s = await countingServer(t);
  const tr = transportTo(s.url);
  t.teardown(() => tr.close());
  await tr.pull(TOKEN, { limit: 1 });
  tr.close();
  await closedAtLeast(s, 1);
  t.equal(s.closed, 1, 'the server saw the pooled connection closed');
  await tr.pull(TOKEN, { limit: 1 });
  t.equal(s.connections, 2);
});

t.test('close() fails a request in flight with TRANSPORT_UNREACHABLE and does not send it again', async (t) => {
  const s = await countingServer(t, (req, res, n) => (n === 2 ? undefined : page(req, res, n)));
  const tr = transportTo(s.url);
  t.teardown(() => tr.close());
  await tr.pull(TOKEN, { limit: 1 });
  const pending = tr.pull(TOKEN, { limit: 1 });
  while (s.requests < 2) await new Promise((resolve) => setImmediate(resolve));
  tr.close();
  t.equal(await codeOf(pending), 'TRANSPORT_UNREACHABLE');
  t.equal(s.requests, 2, 'not re-sent on a new connection');
  t.equal(s.connections, 1);
});

t.test('plain http to loopback pools too, per transport', async (t) => {
  const { createServer } = await import('node:http');
  let connections = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => sendJson(res, PAGE));
  });
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const tr = createHttpTransport({ baseUrl: url, allowInsecureLoopback: true });
  t.teardown(() => tr.close());
  for (let i = 0; i < 5; i += 1) await tr.pull(TOKEN, { limit: 1 });
  t.equal(connections, 1);
});
