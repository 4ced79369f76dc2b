// Malformed, truncated and hostile sync answers (issue 5, item 8): a local HTTPS server presenting
// the real server's own certificate (so the pin holds and the session token is the real one)
// answers push and pull with garbage, fuzzed pages, cut-off bodies and lies. Each must fail the
// sync with a catalogued code and leave the phone's files byte-identical.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import t, { type Test } from 'tap';
import type { Session } from '@fieldvault/client';
import { applyEdit, createClock, createRecord, type ChildRecord, type PullResponse } from '@fieldvault/protocol';
import { PASSWORD_A, filesUnder, newDevice, rejection, snapshot } from './helpers.js';
import { NO_RETRY, json, serverA, send, standIn, transportAs, type Answer } from './stand-in.js';

const { A } = await serverA(t, 'sync-hostile');

/** A stand-in for A whose `answer` decides each reply (it sees method, path and request body). */
const hostile = (t: Test, answer: (method: string, path: string, body: string) => Answer): Promise<string> =>
  standIn(t, A, (req, body, res) => send(res, answer(req.method ?? '', req.url ?? '', body.toString())));
const transportTo = (url: string, extra: { maxSyncResponseBytes?: number; timeoutMs?: number } = {}) => transportAs(A, url, extra);

/** A logged-in phone; with `pending`, one record waits for A, else everything is synced. */
async function phoneAt(t: Test, imei: string, pending: boolean): Promise<{ dir: string; session: Session }> {
  const { dir, device } = await newDevice(t, { imei });
  const session = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  await session.createRecord({ name: 'Already synced' });
  await session.sync({ transport: A.transport() });
  if (pending) await session.createRecord({ name: 'Waiting for the server' });
  return { dir, session };
}

/** The phone's files, without SQLite's shared-memory index (readers update its read marks; it holds no data). */
function files(dir: string): Record<string, string> {
  return Object.fromEntries(Object.entries(snapshot(dir)).filter(([f]) => !f.endsWith('-shm')));
}

function record(name: string, at = Date.now()): ChildRecord {
  const clock = createClock({ node: '356938035646999', now: () => at });
  return createRecord({ id: globalThis.crypto.randomUUID(), createdBy: 'bilal', device: '356938035646999', clockTs: clock.now(), fields: { name } });
}

function page(records: readonly unknown[], extra: Record<string, unknown> = {}): PullResponse & Record<string, unknown> {
  return { records: records as ChildRecord[], checkpoint: 'abc.def', more: false, deviceStatus: 'active', serverTime: Date.now(), ...extra };
}


t.test('malformed, truncated or lying push answers fail the sync with TRANSPORT_BAD_RESPONSE (a connection cut: TRANSPORT_UNREACHABLE) and nothing is written', async (t) => {
  const { dir, session } = await phoneAt(t, '356938035646001', true);
  const pendingBefore = await session.pendingCounts('server-a');
  const before = files(dir);
  const ok = (id: string | null) => ({ id, status: 'ok', changed: true, conflicts: 0 });
  const cases: Array<[string, (body: { records: ChildRecord[] }) => Answer, string?]> = [
    ['an HTML page', () => ({ type: 'text/html', body: '<html>captive portal</html>' })],
    ['malformed JSON', () => ({ body: '{"results": [' })],
    // The network, not the answer, failed: retryable (the retry is tested below; none here).
    ['cut short by the connection', (b) => ({ body: JSON.stringify({ results: b.records.map((r) => ok(r.id)), deviceStatus: 'active' }), cutAt: 10 }), 'TRANSPORT_UNREACHABLE'],
    ['no results', () => json({ results: [], deviceStatus: 'active' })],
    ['more results than records', (b) => json({ results: [...b.records, ...b.records].map((r) => ok(r.id)), deviceStatus: 'active' })],
    ['a result for another record', () => json({ results: [ok(globalThis.crypto.randomUUID())], deviceStatus: 'active' })],
    ['an error result without a code', (b) => json({ results: [{ id: b.records[0]?.id, status: 'error' }], deviceStatus: 'active' })],
    ['an unknown error code', (b) => json({ results: [{ id: b.records[0]?.id, status: 'error', code: 'NOT_A_CODE' }], deviceStatus: 'active' })],
    ['a result naming a photo the record does not carry', (b) => json({ results: [{ id: b.records[0]?.id, status: 'error', code: 'PHOTO_ID_TAKEN', field: `photos.${globalThis.crypto.randomUUID()}` }], deviceStatus: 'active' })],
    ['an ok result naming a photo', (b) => json({ results: b.records.map((r) => ({ ...ok(r.id), field: `photos.${globalThis.crypto.randomUUID()}` })), deviceStatus: 'active' })],
    ['a result with a photoId property (never sent: SDKs up to session 17 refuse unknown properties)', (b) => json({ results: [{ id: b.records[0]?.id, status: 'error', code: 'PHOTO_ID_TAKEN', photoId: globalThis.crypto.randomUUID() }], deviceStatus: 'active' })],
    ['an extra property', (b) => json({ results: b.records.map((r) => ok(r.id)), deviceStatus: 'active', wipe: true })],
    ['an unknown device status', (b) => json({ results: b.records.map((r) => ok(r.id)), deviceStatus: 'blacklisted' })],
    ['an error carrying a code only the SDK raises', () => ({ status: 503, body: JSON.stringify({ statusCode: 503, code: 'TRANSPORT_UNREACHABLE', error: 'x', message: 'x' }) })],
    ['an error carrying SYNC_CANCELLED', () => ({ status: 400, body: JSON.stringify({ statusCode: 400, code: 'SYNC_CANCELLED', error: 'x', message: 'x' }) })],
    ['an error without a code', () => ({ status: 500, body: '{"error":"boom"}' })],
  ];
  let current: (body: { records: ChildRecord[] }) => Answer = () => ({ body: '' });
  let lastBody: { records: ChildRecord[] } = { records: [] };
  const url = await hostile(t, (method, _path, body) => {
    if (method === 'POST') lastBody = JSON.parse(body) as { records: ChildRecord[] };
    return current(lastBody);
  });
  for (const [name, answer, code] of cases) {
    current = answer;
    const err = await rejection(session.sync({ transport: transportTo(url), retry: NO_RETRY }));
    t.equal(err.code, code ?? 'TRANSPORT_BAD_RESPONSE', name);
    t.same(files(dir), before, `${name}: every file byte-identical`);
  }
  t.same(await session.pendingCounts('server-a'), pendingBefore, 'the record is still pending');
  t.equal((await session.sync({ transport: A.transport() })).pushed, 1, 'the real server takes it afterwards');
});

t.test('malformed, truncated, oversized or lying pull pages fail the sync and leave the phone byte-identical', async (t) => {
  const { dir, session } = await phoneAt(t, '356938035646002', false);
  const before = files(dir);
  const recordsBefore = (await session.listRecords({ limit: 1000 })).map((r) => r.id).sort();
  const good = record('Valid child');
  const second = record('Second child');
  const bigName = 'n'.repeat(9_000);
  const cases: Array<[string, Answer, string?]> = [
    ['an HTML page', { type: 'text/html', body: '<html>hello</html>' }],
    ['JSON of another shape', json({ records: 'none', checkpoint: 'a', more: false, deviceStatus: 'active' })],
    ['an extra top-level property', json(page([good], { admin: true }))],
    ['a second record malformed (the first is valid)', json(page([good, { ...second, createdAt: 'yesterday' }]))],
    ['a record with an extra property', json(page([{ ...good, pushedBy: 'admin' }]))],
    ['a field stored under another name', json(page([{ ...good, fields: { age: good.fields['name'] } }]))],
    ['a version whose base is not older', json(page([{ ...good, history: [{ ...good.fields['name'], base: good.fields['name']?.ts }] }]))],
    ['a photo of size 0', json(page([{ ...good, photos: { [globalThis.crypto.randomUUID()]: { sha256: 'a'.repeat(64), size: 0, type: 'image/jpeg', addedAt: good.createdAt, by: 'bilal' } } }]))],
    ['a checkpoint that is not a token', json(page([good], { checkpoint: 'has spaces in it' }))],
    ['"more" that is not a boolean', json(page([good], { more: 'yes' }))],
    ['a __proto__ key', { body: `{"__proto__":{"polluted":true},${JSON.stringify(page([good])).slice(1)}` }],
    ['cut short by the connection', { body: JSON.stringify(page([good, second])), cutAt: 40 }, 'TRANSPORT_UNREACHABLE'],
    ['a body shorter than its JSON (complete HTTP, truncated JSON)', { body: JSON.stringify(page([good])).slice(0, 30) }],
    ['not UTF-8', { body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }],
    ['a page over the size limit', json(page([record(bigName), record(bigName), record(bigName)]))],
    ['more records than asked for', json(page(Array.from({ length: 4 }, (_, i) => record(`Extra ${i}`))))],
    ['an error with an unknown code', { status: 500, body: JSON.stringify({ statusCode: 500, code: 'WIPE_NOW', error: 'x', message: 'x' }) }],
    ['a version dated far in the future', json(page([record('From the future', Date.now() + 3_600_000)])), 'HLC_TOO_FAR_AHEAD'],
    ['a server time that is not a wall time', json(page([good], { serverTime: -1 }))],
    ['no server time', json({ records: [good], checkpoint: 'abc.def', more: false, deviceStatus: 'active' })],
  ];
  let current: Answer = { body: '' };
  const url = await hostile(t, () => current);
  for (const [name, answer, code] of cases) {
    current = answer;
    const err = await rejection(session.sync({ transport: transportTo(url, { maxSyncResponseBytes: 16_384 }), retry: NO_RETRY, batch: { pullRecords: 3 } }));
    t.equal(err.code, code ?? 'TRANSPORT_BAD_RESPONSE', name);
    t.same(files(dir), before, `${name}: every file byte-identical`);
  }
  t.same((await session.listRecords({ limit: 1000 })).map((r) => r.id).sort(), recordsBefore, 'nothing of any answer reached the records');
});

t.test('a server that announces more pages but repeats its checkpoint is refused instead of pulled forever', async (t) => {
  const { session } = await phoneAt(t, '356938035646006', false);
  const first = record('Page one');
  const url = await hostile(t, () => json(page([first], { more: true, checkpoint: 'same.checkpoint' })));
  t.equal((await rejection(session.sync({ transport: transportTo(url), retry: NO_RETRY }))).code, 'TRANSPORT_BAD_RESPONSE');
  t.equal((await session.getRecord(first.id)).id, first.id, 'the first (valid) page was committed, with its checkpoint');
});

t.test('a page that names one record twice (two versions) is merged into one row holding both versions', async (t) => {
  // Not something our server sends (the changes feed lists a document once); a buggy or hostile
  // one must not make the phone drop the first copy's versions.
  const { session } = await phoneAt(t, '356938035646007', false);
  const base = record('Twice');
  const clock = createClock({ node: '356938035646999' });
  const edit = (field: string, value: string) => applyEdit(base, { field, value, ts: clock.now(), by: 'bilal', device: '356938035646999' });
  const withLocation = edit('location', 'Camp Two');
  const withCaregiver = edit('caregiver', 'Aunt Grace');
  const url = await hostile(t, () => json(page([withLocation, withCaregiver])));
  await session.sync({ transport: transportTo(url), retry: NO_RETRY });
  const stored = await session.getRecord(base.id);
  t.equal(stored.fields['location']?.value, 'Camp Two', "the first copy's edit is kept");
  t.equal(stored.fields['caregiver']?.value, 'Aunt Grace', "the second copy's edit is kept");
  t.equal(stored.history.length, 3, 'name, location and caregiver versions, once each');
  t.equal((await session.listRecords({ limit: 1000 })).filter((r) => r.id === base.id).length, 1, 'one row');
});

/** A small seeded PRNG (mulberry32), so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

t.test('fuzzed pull pages (seeded structural mutations and random truncations) are all refused and leave the phone byte-identical', async (t) => {
  const { dir, session } = await phoneAt(t, '356938035646003', false);
  const before = files(dir);
  const seed = 20_240_605;
  const random = prng(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  // Every mutation below makes the page invalid (a value that happens to be valid would be stored, rightly).
  const wrongTop: Record<string, unknown[]> = {
    records: [null, 42, 'records', {}, [null]],
    checkpoint: [null, 42, '', 'has spaces', 'a..b', 'c'.repeat(5_000)],
    more: [null, 'yes', 0, []],
    deviceStatus: [null, 'blacklisted', 1, ''],
    serverTime: [null, 'now', -1, 1.5],
  };
  const anything: unknown[] = [null, 42, -1, 'x', '', true, [], {}, [1, 2], { a: 1 }];
  type Page = Record<string, unknown> & { records: Array<Record<string, unknown>> };
  const poisons: Array<[string, (p: Page) => void]> = [
    ['drop a top-level key', (p) => void delete p[pick(['records', 'checkpoint', 'more', 'deviceStatus', 'serverTime'])]],
    ['wrong top-level value', (p) => {
      const key = pick(Object.keys(wrongTop));
      p[key] = pick(wrongTop[key] as unknown[]);
    }],
    ['drop a record key', (p) => void delete pick(p.records)[pick(['id', 'type', 'createdBy', 'createdAt', 'device', 'fields', 'history', 'photos', 'conflicts', 'resolved'])]],
    ['wrong record value', (p) => (pick(p.records)[pick(['id', 'type', 'createdBy', 'createdAt', 'device', 'fields', 'history', 'photos'])] = pick([null, 42, 'Not Valid', true, [1]]))],
    ['unknown record key', (p) => (pick(p.records)[pick(['_id', '_rev', 'seq', 'receivedAt', 'extra'])] = pick(anything))],
    ['bad field version', (p) => {
      const r = pick(p.records) as { fields: Record<string, Record<string, unknown>> };
      const v = r.fields['name'] as Record<string, unknown>;
      v[pick(['ts', 'by', 'device', 'field'])] = pick([null, 7, 'Not Valid', '']);
    }],
    ['a record that is not an object', (p) => (p.records[Math.floor(random() * p.records.length)] = pick([null, 1, 'record', []]) as unknown as Record<string, unknown>)],
  ];
  const valid = (): Page => JSON.parse(JSON.stringify(page([record('Fuzz one'), record('Fuzz two'), record('Fuzz three')]))) as Page;
  let current: Answer = { body: '' };
  const url = await hostile(t, () => current);
  const transport = transportTo(url, { maxSyncResponseBytes: 65_536 });
  for (let i = 0; i < 40; i++) {
    let label: string;
    if (i % 4 === 3) {
      const text = JSON.stringify(valid());
      const at = 1 + Math.floor(random() * (text.length - 2));
      const declared = random() < 0.5;
      current = declared ? { body: text, cutAt: at } : { body: text.slice(0, at) };
      label = `truncated at ${at} (${declared ? 'connection reset' : 'short body'})`;
    } else {
      const p = valid();
      const [name, poison] = pick(poisons);
      poison(p);
      current = json(p);
      label = name;
    }
    const err = await rejection(session.sync({ transport, retry: NO_RETRY, batch: { pullRecords: 3 } }));
    // A body the connection cut short is a network failure (retryable), not a bad answer.
    t.equal(err.code, label.endsWith('(connection reset)') ? 'TRANSPORT_UNREACHABLE' : 'TRANSPORT_BAD_RESPONSE', `seed ${seed} #${i}: ${label}`);
    t.same(files(dir), before, `seed ${seed} #${i}: byte-identical`);
  }
});

t.test('a server that does not speak HTTP, or stops answering, fails the sync without writing anything', async (t) => {
  const { dir, session } = await phoneAt(t, '356938035646004', false);
  const before = files(dir);
  const garbage = createTlsServer({ cert: A.certPem, key: readFileSync(A.keyFile, 'utf8') }, (socket) => {
    socket.on('data', () => socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\nnot http at all'));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => garbage.close(() => resolve())));
  const notHttp = await rejection(session.sync({ transport: transportTo(`https://127.0.0.1:${(garbage.address() as AddressInfo).port}`), retry: NO_RETRY }));
  t.equal(notHttp.code, 'TRANSPORT_BAD_RESPONSE');

  // Reads (so it sees the client hang up) but never answers.
  const silent = createTlsServer({ cert: A.certPem, key: readFileSync(A.keyFile, 'utf8') }, (socket) => {
    socket.on('error', () => undefined);
    socket.resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const started = Date.now();
  const mute = await rejection(session.sync({ transport: transportTo(`https://127.0.0.1:${(silent.address() as AddressInfo).port}`, { timeoutMs: 400 }), retry: NO_RETRY }));
  t.equal(mute.code, 'TRANSPORT_UNREACHABLE', 'no progress within the timeout');
  t.ok(Date.now() - started < 3_000);
  t.same(files(dir), before);
});

t.test('a photo answered wrongly fails alone: nothing of it is written and the records are kept', async (t) => {
  const { dir, session } = await phoneAt(t, '356938035646005', false);
  const withPhoto = record('Has a photo');
  const photoId = globalThis.crypto.randomUUID();
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9]);
  withPhoto.photos[photoId] = { sha256: createHash('sha256').update(jpeg).digest('hex'), size: jpeg.byteLength, type: 'image/jpeg', addedAt: withPhoto.createdAt, by: 'bilal' };
  const photosBefore = filesUnder(dir).filter((f) => f.startsWith('.photos/'));
  const wrong = Buffer.from(jpeg);
  wrong[8] = 0x00; // one byte of the image changed in transit (0x49 in the valid one)
  const url = await hostile(t, (_method, path) =>
    path.startsWith('/v1/sync/pull') ? json(page([withPhoto])) : { type: 'image/jpeg', body: wrong },
  );
  const summary = await session.sync({ transport: transportTo(url), retry: NO_RETRY });
  t.match(summary, { pulled: 1, photos: { downloaded: 0, failed: [{ photoId, code: 'TRANSPORT_BAD_RESPONSE' }] } });
  t.same(filesUnder(dir).filter((f) => f.startsWith('.photos/')), photosBefore, 'no photo file was written');
  t.equal((await rejection(session.readPhoto(withPhoto.id, photoId))).code, 'PHOTO_NOT_FOUND');
  t.equal((await session.getRecord(withPhoto.id)).id, withPhoto.id, 'the valid page was kept');
});

t.test('a pull page and a photo the connection cuts short mid-body are fetched again with backoff, and the sync succeeds', async (t) => {
  // Issue 5: "retry with backoff on network errors". A connection lost while a page or a photo
  // arrives is the network's failure, not the server's: the sync sends the (idempotent) request
  // again instead of ending, and nothing of the partial answer is used.
  const { session } = await phoneAt(t, '356938035646008', false);
  const withPhoto = record('Cut, then whole');
  const other = record('Also on the page');
  const photoId = globalThis.crypto.randomUUID();
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9]);
  withPhoto.photos[photoId] = { sha256: createHash('sha256').update(jpeg).digest('hex'), size: jpeg.byteLength, type: 'image/jpeg', addedAt: withPhoto.createdAt, by: 'bilal' };
  const text = JSON.stringify(page([withPhoto, other]));
  const seen = { pulls: 0, photos: 0, other: 0 };
  const url = await hostile(t, (_method, path) => {
    if (path.startsWith('/v1/sync/pull')) {
      seen.pulls += 1;
      return seen.pulls === 1 ? { body: text, cutAt: text.length >> 1 } : { body: text };
    }
    if (path === `/v1/photos/${photoId}`) {
      seen.photos += 1;
      return seen.photos === 1 ? { type: 'image/jpeg', body: jpeg, cutAt: 10 } : { type: 'image/jpeg', body: jpeg };
    }
    seen.other += 1;
    return { status: 500, body: '{"error":"not expected in this test"}' };
  });
  const summary = await session.sync({ transport: transportTo(url), retry: { attempts: 3, baseDelayMs: 10 } });
  t.match(summary, { pulled: 2, photos: { downloaded: 1, failed: [] } });
  t.same(seen, { pulls: 2, photos: 2, other: 0 }, 'the page and the photo were each asked for twice');
  t.same((await session.readPhoto(withPhoto.id, photoId)).bytes, new Uint8Array(jpeg), 'the whole photo, from the second answer');
  t.equal((await session.getRecord(other.id)).id, other.id);
});
