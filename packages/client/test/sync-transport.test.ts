// The sync methods of the HTTP transport against a tiny local server (plain HTTP on loopback: TLS
// is covered in http-transport.test.ts and end to end in storage-sqlcipher's sync tests):
// resumable upload, photo checks, the bearer token, cancellation and the idle timeout.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { createHttpTransport } from '../src/index.js';

const TOKEN = 'T'.repeat(43);
const PHOTO_ID = '0f8c6d0d-925c-4ccc-8f8c-6d0d925ccccf';
const RECORD_ID = '1e3c4b5a-6d7e-4f80-9a1b-2c3d4e5f6a7b';
const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(5_000, 7), Buffer.from([0xff, 0xd9])]);
const SHA = createHash('sha256').update(JPEG).digest('hex');

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  body: Buffer;
}

async function server(t: Test, handler: (req: Seen, res: ServerResponse) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const s = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body: Buffer.concat(chunks) };
      seen.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => (s.closeAllConnections(), s.close(() => resolve()))));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, seen };
}

/** The code a promise rejects with (undefined when it resolves). */
async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const status = (received: number, complete = false) => ({ photoId: PHOTO_ID, recordId: RECORD_ID, size: JPEG.byteLength, sha256: SHA, received, complete });
const transportTo = (url: string, timeoutMs = 5_000) => createHttpTransport({ baseUrl: url, serverId: 'server-a', allowInsecureLoopback: true, timeoutMs });
const upload = { photoId: PHOTO_ID, recordId: RECORD_ID, bytes: new Uint8Array(JPEG), sha256: SHA, type: 'image/jpeg' as const };

t.test('an upload asks where the server stands and sends only the rest, with the bearer token', async (t) => {
  let stored = 1_000;
  const { url, seen } = await server(t, (req, res) => {
    if (req.method === 'GET') return send(res, 200, status(stored));
    stored += req.body.byteLength;
    send(res, 200, status(stored, stored === JPEG.byteLength));
  });
  const offsets: number[] = [];
  const done = await transportTo(url).uploadPhoto(TOKEN, upload, { onResume: (o) => offsets.push(o) });
  t.equal(done.complete, true);
  t.same(offsets, [1_000]);
  t.same(seen.map((s) => [s.method, s.url]), [
    ['GET', `/v1/photos/${PHOTO_ID}/upload?record=${RECORD_ID}`],
    ['PUT', `/v1/photos/${PHOTO_ID}?record=${RECORD_ID}&offset=1000`],
  ]);
  t.ok(seen[1]?.body.equals(JPEG.subarray(1_000)), 'the bytes from the offset on');
  t.ok(seen.every((s) => s.authorization === `Bearer ${TOKEN}`));
});

t.test('a photo the server already holds costs one request; another upload moving on is followed', async (t) => {
  const complete = await server(t, (_req, res) => send(res, 200, status(JPEG.byteLength, true)));
  await transportTo(complete.url).uploadPhoto(TOKEN, upload);
  t.equal(complete.seen.length, 1);

  let first = true;
  const racing = await server(t, (req, res) => {
    if (req.method === 'GET') return send(res, 200, status(first ? 0 : 4_000));
    if (first) {
      first = false;
      return send(res, 409, { statusCode: 409, code: 'PHOTO_OFFSET_MISMATCH', error: 'Conflict', message: 'moved on' });
    }
    send(res, 200, status(JPEG.byteLength, true));
  });
  t.equal((await transportTo(racing.url).uploadPhoto(TOKEN, upload)).complete, true);
  t.same(racing.seen.map((s) => s.method), ['GET', 'PUT', 'GET', 'PUT']);
  t.equal(racing.seen[3]?.url.endsWith('offset=4000'), true);
});

t.test('an upload status for another photo, or an impossible offset, is a bad response; a different ref is PHOTO_DIGEST_MISMATCH', async (t) => {
  for (const [name, body, code] of [
    ['another photo', { ...status(0), photoId: RECORD_ID }, 'TRANSPORT_BAD_RESPONSE'],
    ['beyond the size', status(JPEG.byteLength + 1), 'TRANSPORT_BAD_RESPONSE'],
    ['complete but short', { ...status(10), complete: true }, 'TRANSPORT_BAD_RESPONSE'],
    ['another digest', { ...status(0), sha256: 'a'.repeat(64) }, 'PHOTO_DIGEST_MISMATCH'],
  ] as const) {
    const { url } = await server(t, (_req, res) => send(res, 200, body));
    t.equal(await codeOf(transportTo(url).uploadPhoto(TOKEN, upload)), code, name);
  }
});

t.test('a download is checked against its ref: type, size, digest, magic bytes', async (t) => {
  const expected = { photoId: PHOTO_ID, size: JPEG.byteLength, sha256: SHA, type: 'image/jpeg' as const };
  const serve = (type: string, body: Buffer) => (_req: Seen, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': type, 'content-length': body.byteLength });
    res.end(body);
  };
  const ok = await server(t, serve('image/jpeg', JPEG));
  t.ok(Buffer.from((await transportTo(ok.url).downloadPhoto(TOKEN, expected)).bytes).equals(JPEG));
  const flipped = Buffer.from(JPEG);
  flipped[100] = 0;
  for (const [name, type, body] of [
    ['another type', 'image/png', JPEG],
    ['changed bytes', 'image/jpeg', flipped],
    ['longer', 'image/jpeg', Buffer.concat([JPEG, Buffer.from([0])])],
    ['shorter', 'image/jpeg', JPEG.subarray(1)],
  ] as const) {
    const { url } = await server(t, serve(type, body));
    t.equal(await codeOf(transportTo(url).downloadPhoto(TOKEN, expected)), 'TRANSPORT_BAD_RESPONSE', name);
  }
});

t.test('a malformed token or id never reaches the wire', async (t) => {
  const { url, seen } = await server(t, (_req, res) => send(res, 200, {}));
  const transport = transportTo(url);
  for (const token of ['short', `${'a'.repeat(43)}\r\nx-evil: 1`, 42 as unknown as string]) {
    t.equal(await codeOf(transport.pull(token, { limit: 1 })), 'INPUT_INVALID');
  }
  t.equal(await codeOf(transport.uploadPhoto(TOKEN, { ...upload, photoId: '../../etc' })), 'INPUT_INVALID');
  t.equal(await codeOf(transport.pull(TOKEN, { limit: 0 })), 'INPUT_INVALID');
  t.equal(seen.length, 0);
});

t.test('a signal cancels a request in flight (SYNC_CANCELLED); a stalled answer hits the idle timeout', async (t) => {
  const { url } = await server(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"records":');
  });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  t.equal(await codeOf(transportTo(url).pull(TOKEN, { limit: 1 }, { signal: controller.signal })), 'SYNC_CANCELLED');
  const started = Date.now();
  t.equal(await codeOf(transportTo(url, 300).pull(TOKEN, { limit: 1 })), 'TRANSPORT_UNREACHABLE');
  t.ok(Date.now() - started < 2_000);
});

t.test('a slow but moving upload is not cut by the idle timeout', async (t) => {
  const { url } = await server(t, (req, res) => {
    if (req.method === 'GET') return send(res, 200, status(0));
    // Answers only after a while longer than the timeout; the body kept the connection busy.
    setTimeout(() => send(res, 200, status(JPEG.byteLength, true)), 150);
  });
  t.equal((await transportTo(url, 1_000).uploadPhoto(TOKEN, upload)).complete, true);
});
