// The HTTPS transport against tiny local servers: TLS trust (CA, certificate pin, both, neither),
// nothing sent to an untrusted server, and every kind of broken or hostile answer mapped to a
// catalogued error. The real fieldvault server is exercised end to end in
// packages/storage-sqlcipher/test/online-login.test.ts.
import { createHash, createPublicKey } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import t, { type Test } from 'tap';
import { createHttpTransport, type HttpTransportOptions } from '../src/index.js';
import { LOCAL, makeCert, type Cert } from './fixtures/tls.js';

const good = await makeCert();
const other = await makeCert();
const elsewhere = await makeCert([{ type: 2, value: 'fieldvault.example.org' }]);

const CHALLENGE = { challenge: 'A'.repeat(43), expiresAt: '2030-01-01T00:00:00.000Z' };
const IMEI = '490154203237518';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Running {
  url: string;
  /** HTTP requests the server received (a refused server must see none). */
  requests: number;
}

async function listen(t: Test, server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

async function httpsServer(t: Test, handler: Handler, cert: Cert = good): Promise<Running> {
  const state = { url: '', requests: 0 };
  const server = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    state.requests += 1;
    req.resume();
    req.on('end', () => handler(req, res));
  });
  state.url = `https://127.0.0.1:${await listen(t, server)}`;
  return state;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
}

function transport(url: string, extra: Partial<HttpTransportOptions> = {}): ReturnType<typeof createHttpTransport> {
  return createHttpTransport({ baseUrl: url, tls: { ca: good.cert }, timeoutMs: 2_000, ...extra });
}

async function codeOf(p: Promise<unknown>): Promise<{ code?: string; details?: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string };
  }
  throw new Error('expected a rejection');
}

t.test('options are checked: https only, plain http only to loopback with the explicit flag, well-formed pins', async (t) => {
  const bad: Array<Partial<HttpTransportOptions>> = [
    { baseUrl: 'http://127.0.0.1:8080' },
    { baseUrl: 'http://10.0.0.5:8080', allowInsecureLoopback: true },
    { baseUrl: 'http://fieldvault.example.org', allowInsecureLoopback: true },
    { baseUrl: 'http://127.0.0.1:8080', allowInsecureLoopback: true, tls: { pinSha256: good.fingerprint } },
    { baseUrl: 'ftp://127.0.0.1' },
    { baseUrl: 'not a url' },
    { baseUrl: 'https://user:secret@127.0.0.1' },
    { baseUrl: 'https://127.0.0.1/?x=1' },
    { baseUrl: 'https://127.0.0.1', tls: { pinSha256: 'abcd' } },
    { baseUrl: 'https://127.0.0.1', tls: { pinSha256: [] } },
    { baseUrl: 'https://127.0.0.1', tls: { ca: 'not pem' } },
    { baseUrl: 'https://127.0.0.1', timeoutMs: 0 },
    { baseUrl: 'https://127.0.0.1', serverId: 'Not An Id' },
  ];
  for (const options of bad) {
    t.equal((await codeOf(Promise.resolve().then(() => createHttpTransport(options as HttpTransportOptions)))).code, 'INPUT_INVALID', JSON.stringify(options));
  }
  t.equal(createHttpTransport({ baseUrl: 'https://Fieldvault.Example.org/fv/' }).serverId, 'fieldvault.example.org-443', 'default server id');
  t.equal(createHttpTransport({ baseUrl: 'https://10.0.0.5:8443/fv/' }).baseUrl, 'https://10.0.0.5:8443/fv');
  t.equal(createHttpTransport({ baseUrl: 'http://127.0.0.1:8080', allowInsecureLoopback: true, serverId: 'dev' }).serverId, 'dev');
});

t.test('a server whose certificate chains to the configured CA is trusted', async (t) => {
  const s = await httpsServer(t, json(200, CHALLENGE));
  t.same(await transport(s.url).challenge({ imei: IMEI }), CHALLENGE);
});

t.test('a pinned certificate is trusted with the fingerprint as apps/server prints it or as plain hex, alone or with the CA', async (t) => {
  const s = await httpsServer(t, json(200, CHALLENGE));
  const plain = good.fingerprint.replaceAll(':', '').toLowerCase();
  t.same(await createHttpTransport({ baseUrl: s.url, tls: { pinSha256: good.fingerprint } }).challenge({ imei: IMEI }), CHALLENGE);
  t.same(await createHttpTransport({ baseUrl: s.url, tls: { pinSha256: [other.fingerprint, plain] } }).challenge({ imei: IMEI }), CHALLENGE);
  t.same(await createHttpTransport({ baseUrl: s.url, tls: { ca: good.cert, pinSha256: plain } }).challenge({ imei: IMEI }), CHALLENGE);
});

t.test("a public-key pin (sha256//…) holds across a renewal with the same key; a certificate pin does not", async (t) => {
  const renewed = await makeCert(LOCAL, good);
  t.not(renewed.fingerprint, good.fingerprint, 'the renewal has a new certificate fingerprint');
  const s = await httpsServer(t, json(200, CHALLENGE), renewed);
  const first = createHttpTransport({ baseUrl: (await httpsServer(t, json(200, CHALLENGE))).url, tls: { pinSha256: good.fingerprint } });
  t.equal(first.peerKeyPin(), undefined, 'no key pin before a verified connection');
  await first.challenge({ imei: IMEI });
  const keyPin = first.peerKeyPin() ?? '';
  t.match(keyPin, /^sha256\/\/[A-Za-z0-9+/]{43}=$/, 'learned from the verified connection');
  t.equal(keyPin, `sha256//${createHash('sha256').update(createPublicKey(good.key).export({ type: 'spki', format: 'der' })).digest('base64')}`, "the SHA-256 of the certificate's SubjectPublicKeyInfo");
  t.equal((await codeOf(createHttpTransport({ baseUrl: s.url, tls: { pinSha256: good.fingerprint } }).challenge({ imei: IMEI }))).code, 'TRANSPORT_TLS_UNTRUSTED', 'the old certificate pin refuses the renewal');
  t.same(await createHttpTransport({ baseUrl: s.url, tls: { pinSha256: [good.fingerprint, keyPin] } }).challenge({ imei: IMEI }), CHALLENGE, 'the key pin accepts it');
  const otherKey = await makeCert();
  const o = await httpsServer(t, json(200, CHALLENGE), otherKey);
  t.equal((await codeOf(createHttpTransport({ baseUrl: o.url, tls: { pinSha256: keyPin } }).challenge({ imei: IMEI }))).code, 'TRANSPORT_TLS_UNTRUSTED', 'another key is refused');
  t.equal(o.requests, 0, 'before anything is sent');
  for (const bad of ['sha256//short=', `sha1//${keyPin.slice(8)}`, keyPin.slice(0, -1), `${keyPin} `]) {
    t.equal((await codeOf(Promise.resolve().then(() => createHttpTransport({ baseUrl: s.url, tls: { pinSha256: bad } })))).code, 'INPUT_INVALID', bad);
  }
});

t.test('a certificate that does not match the pin is refused before the request is sent', async (t) => {
  const s = await httpsServer(t, json(200, CHALLENGE));
  const err = await codeOf(createHttpTransport({ baseUrl: s.url, tls: { pinSha256: other.fingerprint } }).login({} as never));
  t.equal(err.code, 'TRANSPORT_TLS_UNTRUSTED');
  const both = await codeOf(createHttpTransport({ baseUrl: s.url, tls: { ca: good.cert, pinSha256: other.fingerprint } }).challenge({ imei: IMEI }));
  t.equal(both.code, 'TRANSPORT_TLS_UNTRUSTED', 'a valid chain does not excuse a pin mismatch');
  t.equal(s.requests, 0, 'the server never received a request');
});

t.test('a certificate from an unknown CA, or the system store for a self-signed server, is refused', async (t) => {
  const s = await httpsServer(t, json(200, CHALLENGE));
  t.equal((await codeOf(transport(s.url, { tls: { ca: other.cert } }).challenge({ imei: IMEI }))).code, 'TRANSPORT_TLS_UNTRUSTED');
  t.equal((await codeOf(createHttpTransport({ baseUrl: s.url }).challenge({ imei: IMEI }))).code, 'TRANSPORT_TLS_UNTRUSTED');
  t.equal(s.requests, 0);
});

t.test('a trusted certificate for another host name is refused', async (t) => {
  const s = await httpsServer(t, json(200, CHALLENGE), elsewhere);
  t.equal((await codeOf(transport(s.url, { tls: { ca: elsewhere.cert } }).challenge({ imei: IMEI }))).code, 'TRANSPORT_TLS_UNTRUSTED');
  t.equal(s.requests, 0);
});

t.test('malformed, mis-typed, mis-shaped, oversized and truncated-JSON answers are TRANSPORT_BAD_RESPONSE', async (t) => {
  const cases: Array<[string, Handler]> = [
    ['invalid JSON', (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"challenge": ')],
    ['not JSON', (_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>captive portal</html>')],
    ['invalid UTF-8', (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.from([0x22, 0xff, 0xfe, 0x22]))],
    ['an extra property', json(200, { ...CHALLENGE, admin: true })],
    ['a missing property', json(200, { challenge: CHALLENGE.challenge })],
    ['a wrong type', json(200, { ...CHALLENGE, challenge: 42 })],
    ['a prototype key', (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"challenge":"${CHALLENGE.challenge}","expiresAt":"x","__proto__":{"a":1}}`)],
    ['a declared size over the limit', (_q, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(4 << 20) }).end()],
    [
      'a streamed body over the limit',
      (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        for (let i = 0; i < 20; i += 1) res.write(chunk);
        res.end('{}');
      },
    ],
    // A body the connection cuts short (closed or reset before its announced length) is not here:
    // it is TRANSPORT_UNREACHABLE, retried by the sync (http-transport-cut-short.test.ts).
    ['a redirect', (_q, res) => res.writeHead(302, { location: 'https://elsewhere.example.org/' }).end()],
    ['a 200 with an error body', json(200, { statusCode: 401, code: 'AUTH_INVALID_CREDENTIALS', error: 'Unauthorized', message: 'x' })],
  ];
  for (const [name, handler] of cases) {
    const s = await httpsServer(t, handler);
    const err = await codeOf(transport(s.url, { maxResponseBytes: 1024 * 1024 }).challenge({ imei: IMEI }));
    t.equal(err.code, 'TRANSPORT_BAD_RESPONSE', name);
  }
});

t.test('a peer that answers TLS with bytes that are not HTTP is TRANSPORT_BAD_RESPONSE', async (t) => {
  const server = createTlsServer({ cert: good.cert, key: good.key }, (socket) => {
    socket.on('data', () => socket.end('\u0000\u0001garbage that is not HTTP\r\n\r\n'));
    socket.on('error', () => undefined);
  });
  const port = await listen(t, server);
  t.equal((await codeOf(transport(`https://127.0.0.1:${port}`).challenge({ imei: IMEI }))).code, 'TRANSPORT_BAD_RESPONSE');
});

t.test("a server's catalogued error becomes that code, with status and Retry-After", async (t) => {
  const s = await httpsServer(
    t,
    json(429, { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: 'slow down' }, { 'retry-after': '17' }),
  );
  const err = await codeOf(transport(s.url).challenge({ imei: IMEI }));
  t.equal(err.code, 'RATE_LIMITED');
  t.same(err.details, { status: 429, retryAfterSeconds: 17 });
  const blacklisted = await httpsServer(t, json(403, { statusCode: 403, code: 'DEVICE_BLACKLISTED', error: 'Forbidden', message: 'wipe' }));
  t.equal((await codeOf(transport(blacklisted.url).login({} as never))).code, 'DEVICE_BLACKLISTED');
});

t.test('an error body with an unknown code, an SDK-only code, or no JSON at all is TRANSPORT_BAD_RESPONSE', async (t) => {
  for (const handler of [
    json(400, { statusCode: 400, code: 'SOMETHING_NEW', error: 'Bad Request', message: 'x' }),
    json(502, { statusCode: 502, code: 'TRANSPORT_TLS_UNTRUSTED', error: 'Bad Gateway', message: 'x' }),
    json(500, { code: 'INTERNAL_ERROR' }),
    ((_q, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>Bad Gateway</h1>')) as Handler,
  ]) {
    const s = await httpsServer(t, handler);
    const err = await codeOf(transport(s.url).challenge({ imei: IMEI }));
    t.equal(err.code, 'TRANSPORT_BAD_RESPONSE');
    t.type(err.details?.['status'], 'number');
  }
});

t.test('a closed port and a server that never answers are TRANSPORT_UNREACHABLE', async (t) => {
  const closed = createHttpServer();
  const port = await listen(t, closed);
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  t.equal((await codeOf(transport(`https://127.0.0.1:${port}`).challenge({ imei: IMEI }))).code, 'TRANSPORT_UNREACHABLE');

  const silent = await httpsServer(t, () => undefined);
  const started = Date.now();
  t.equal((await codeOf(transport(silent.url, { timeoutMs: 300 }).challenge({ imei: IMEI }))).code, 'TRANSPORT_UNREACHABLE');
  t.ok(Date.now() - started < 2_000, 'the deadline holds');
});

t.test('plain http to a loopback address works only with allowInsecureLoopback', async (t) => {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => json(200, CHALLENGE)(req, res));
  });
  const port = await listen(t, server);
  const http = createHttpTransport({ baseUrl: `http://127.0.0.1:${port}`, allowInsecureLoopback: true });
  t.same(await http.challenge({ imei: IMEI }), CHALLENGE);
});
