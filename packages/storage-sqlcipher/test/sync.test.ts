// Sync end to end (issue 5, items 7 and 9): real server processes (apps/server on the embedded
// store, self-signed TLS pinned by fingerprint) and real SDK devices on SQLCipher files. Servers
// are shared by the tests of this file; every test uses its own phones (IMEIs) and records and
// asserts on those only.
import { createServer as createTcpServer, connect as tcpConnect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ensureSchema, PENDING_PAGE_SQL, SCHEMA_VERSION, type Device, type Logger, type Session, type SyncProgress, type Transport } from '@fieldvault/client';
import { dbFileName } from '@fieldvault/crypto';
import { defaultChildForm, isDeleted, needsReview, openConflicts, conflictId, FieldvaultError, type ChildRecord, type FormDefinition } from '@fieldvault/protocol';
import { SqlCipherStorage } from '../src/index.js';
import { IMEI, NO_RATE_LIMITS, PASSWORD_A, PASSWORD_B, PASSWORD_C, filesUnder, jpegWithGps, newDevice, rejection, serverKey, startServers } from './helpers.js';
import type { ServerProcess } from '@fieldvault/test-support';

const [A, B] = (await startServers(
  t,
  'sync',
  ['server-a', 'server-b'],
  [['amina', PASSWORD_A], ['bilal', PASSWORD_B], ['sam', PASSWORD_C, 'supervisor']],
  NO_RATE_LIMITS,
)) as [ServerProcess, ServerProcess];
const FAST_RETRY = { attempts: 3, baseDelayMs: 20 };

const testDirs = new WeakMap<Test, string>();

/** A phone on its own directory under the test's fixture directory (`t.testdir()` recreates it: call it once). */
async function phone(t: Test, name: string, imei: string, extra: Parameters<typeof newDevice>[1] = {}): Promise<{ dir: string; device: Device; storage: SqlCipherStorage }> {
  let dir = testDirs.get(t);
  if (dir === undefined) {
    dir = t.testdir();
    testDirs.set(t, dir);
  }
  return newDevice(t, { imei, ...extra }, join(dir, name));
}

const byId = (records: readonly ChildRecord[], id: string): ChildRecord | undefined => records.find((r) => r.id === id);
const ids = (records: readonly ChildRecord[]): string[] => records.map((r) => r.id).sort();
const valuesOf = (record: ChildRecord, field: string): unknown[] => record.history.filter((v) => v.field === field).map((v) => v.value);

t.test('the same record edited on two phones offline converges through one server, then two: every server and phone ends with the same record, its full history, the conflict flagged', async (t) => {
  const p1 = await phone(t, 'p1', '356938035644001');
  const p2 = await phone(t, 'p2', '356938035644002');
  let amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const created = await amina.createRecord({ name: 'Shared child', age: 5 });
  const first = await amina.sync({ transport: A.transport() });
  t.match(first, { serverId: 'server-a', pushed: 1, failed: [], conflicts: 0, deviceStatus: 'active', wiped: false });
  const bilal = await p2.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  await bilal.sync({ transport: A.transport() });
  t.same(await bilal.getRecord(created.id), created, 'the second phone received the record');

  // Both phones offline: the same field edited on each, concurrently.
  await amina.updateRecord(created.id, { location: 'Camp 1', age: 6 });
  await bilal.updateRecord(created.id, { location: 'Camp 2', caregiver: 'Aunt' });

  // Through one server.
  await amina.sync({ transport: A.transport() });
  const flagged = await bilal.sync({ transport: A.transport() });
  t.equal(flagged.conflicts, 1, 'the sync that met the concurrent edit reports the conflict');
  await amina.sync({ transport: A.transport() });
  const onA = byId(await A.records(), created.id);
  const r1 = await amina.getRecord(created.id);
  t.same(await bilal.getRecord(created.id), r1, 'both phones hold the same record');
  t.same(onA, r1, 'and so does the server');
  t.ok(needsReview(r1), 'flagged for review');
  t.same(valuesOf(r1, 'location').sort(), ['Camp 1', 'Camp 2'], 'the losing value stays in the history');
  t.same([r1.fields['age']?.value, r1.fields['caregiver']?.value], [6, 'Aunt'], 'edits of different fields both kept');

  // Then through two servers: amina also logs in to B; more concurrent edits, relayed both ways.
  amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  t.same(amina.serverLogins.map((l) => l.serverId), ['server-a', 'server-b']);
  await amina.sync({ transport: B.transport() });
  await amina.updateRecord(created.id, { name: 'Shared child (p1)' });
  await bilal.updateRecord(created.id, { name: 'Shared child (p2)', sex: 'female' });
  await amina.sync({ transport: B.transport() }); // p1's edit reaches B only
  await bilal.sync({ transport: A.transport() }); // p2's edit reaches A only
  await amina.sync({ transport: A.transport() }); // p1 brings A's state (p2's edit) ...
  await amina.sync({ transport: B.transport() }); // ... to B
  await bilal.sync({ transport: A.transport() }); // p2 gets p1's edit relayed through A
  await amina.sync({ transport: A.transport() });

  const final = await amina.getRecord(created.id);
  t.same(await bilal.getRecord(created.id), final, 'phone 2 = phone 1');
  t.same(byId(await A.records(), created.id), final, 'server A = phone 1');
  t.same(byId(await B.records(), created.id), final, 'server B = phone 1');
  t.same(valuesOf(final, 'name').sort(), ['Shared child', 'Shared child (p1)', 'Shared child (p2)'], 'every name ever written');
  t.same(valuesOf(final, 'location').sort(), ['Camp 1', 'Camp 2']);
  t.same(valuesOf(final, 'age'), [5, 6]);
  t.same(
    openConflicts(final).map((c) => c.field).sort(),
    ['location', 'name'],
    'both concurrent edits are flagged',
  );
  t.equal(final.fields['sex']?.value, 'female');
  for (const s of [amina, bilal]) {
    for (const server of ['server-a', 'server-b']) {
      if (s === bilal && server === 'server-b') continue;
      t.same(await s.pendingCounts(server), { records: 0, photos: 0 }, `${s.username}: nothing pending for ${server}`);
    }
  }
});

t.test('checkpoints and acknowledgements are per server: A then B independently, and B receives through the phone what it got from A (relayed records of other users too)', async (t) => {
  const p3 = await phone(t, 'p3', '356938035644003');
  const p4 = await phone(t, 'p4', '356938035644004');
  // bilal registers two children on his own phone and syncs with A only.
  const bilal = await p4.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  const bilals = [await bilal.createRecord({ name: 'Bilal one' }), await bilal.createRecord({ name: 'Bilal two' })];
  await bilal.sync({ transport: A.transport() });

  await p3.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const amina = await p3.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  const mine = [await amina.createRecord({ name: 'Amina one' }), await amina.createRecord({ name: 'Amina two' }), await amina.createRecord({ name: 'Amina three' })];
  t.same(await amina.pendingCounts('server-a'), { records: 3, photos: 0 });
  t.same(await amina.pendingCounts('server-b'), { records: 3, photos: 0 });

  const toA = await amina.sync({ transport: A.transport() });
  t.equal(toA.pushed, 3);
  t.ok(toA.pulled >= 5, 'pulled everything A holds, from the start');
  const local = await amina.listRecords({ limit: 1000 });
  t.ok(bilals.every((r) => byId(local, r.id) !== undefined), "bilal's records reached the phone");
  t.same(await amina.pendingCounts('server-a'), { records: 0, photos: 0 }, 'A acknowledged everything');
  t.same(await amina.pendingCounts('server-b'), { records: local.length, photos: 0 }, 'B acknowledged nothing yet');
  t.same((await amina.sync({ transport: A.transport() })).pushed, 0, 'nothing to push to A again');

  const toB = await amina.sync({ transport: B.transport() });
  t.equal(toB.pushed, local.length, 'every record goes to B');
  t.same(toB.failed, [], "records created by other users are accepted from a field worker's phone");
  const onB = await B.records();
  for (const r of [...bilals, ...mine]) t.same(byId(onB, r.id), byId(local, r.id), `B holds ${r.id}`);
  t.same(await amina.pendingCounts('server-b'), { records: 0, photos: 0 });

  // A new record: pending for both; syncing A leaves it pending for B, and A's checkpoint alone moves.
  const later = await amina.createRecord({ name: 'Amina four' });
  await amina.sync({ transport: A.transport() });
  t.same([await amina.pendingCounts('server-a'), await amina.pendingCounts('server-b')], [{ records: 0, photos: 0 }, { records: 1, photos: 0 }]);
  const again = await amina.sync({ transport: A.transport() });
  t.same([again.pushed, again.pulled], [0, 0], "A's checkpoint is past everything: an immediate re-sync moves nothing");
  const b2 = await amina.sync({ transport: B.transport() });
  t.same([b2.pushed, b2.pulled], [1, 1], "B's own checkpoint: only the new record goes and comes back");
  t.same(byId(await B.records(), later.id), later);

  const servers = await amina.knownServers();
  t.match(servers, [
    { serverId: 'server-a', loggedIn: true, role: 'field_worker', pending: { records: 0, photos: 0 } },
    { serverId: 'server-b', loggedIn: true, role: 'field_worker', pending: { records: 0, photos: 0 } },
  ]);
  t.ok(servers.every((s) => typeof s.lastSyncAt === 'string'));
});

t.test('a batch with one invalid record saves the others; the refused one is reported, stays pending and is tried once per sync', async (t) => {
  // This phone's form has a field the server's form does not know: the server refuses that record alone.
  const form: FormDefinition = { ...defaultChildForm, fields: [...defaultChildForm.fields, { name: 'nickname', type: 'string' }] };
  const p = await phone(t, 'p5', '356938035644005', { form });
  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const good = [];
  for (let i = 0; i < 4; i++) good.push(await amina.createRecord({ name: `Good ${i}` }));
  const bad = await amina.createRecord({ name: 'Bad', nickname: 'not on the server form' });
  good.push(await amina.createRecord({ name: 'Good after the bad one' }));
  const pushes: number[] = [];
  const base = A.transport();
  const counting: Transport = { ...base, push: (token, request, o) => (pushes.push(request.records.length), base.push(token, request, o)) };

  const first = await amina.sync({ transport: counting });
  t.equal(first.pushed, 5);
  t.same(first.failed, [{ id: bad.id, code: 'RECORD_INVALID' }]);
  const onA = await A.records();
  t.ok(good.every((r) => byId(onA, r.id) !== undefined), 'the others are on the server');
  t.equal(byId(onA, bad.id), undefined, 'the refused one is not');
  t.same(await amina.pendingCounts('server-a'), { records: 1, photos: 0 });
  t.same(pushes, [6]);

  const second = await amina.sync({ transport: counting });
  t.same(second.failed, [{ id: bad.id, code: 'RECORD_INVALID' }], 'tried again at the next sync');
  t.same(pushes, [6, 1], 'once, alone: it neither blocks nor loops');
  t.same(await amina.pendingCounts('server-a'), { records: 1, photos: 0 });
});

t.test('the unacknowledged hint names the records a server never acknowledged; a server that refuses it gets the batch again without it', async (t) => {
  const p = await phone(t, 'p42', '356938035644042');
  await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  const made = [await amina.createRecord({ name: 'Hint one' }), await amina.createRecord({ name: 'Hint two' }), await amina.createRecord({ name: 'Hint three' })];
  const sent: Array<{ ids: string[]; hinted: string[] }> = [];
  const watching = (base: Transport, refuseHints = false): Transport => ({
    ...base,
    push: (token, request, o) => {
      sent.push({ ids: request.records.map((r) => r.id), hinted: (request.unacknowledged ?? []).map((i) => request.records[i]?.id ?? `#${i}`) });
      // An older server refuses the field (INPUT_INVALID). This server refuses an index past the
      // records the same way: the hinted request really is refused by the server.
      const unacknowledged = refuseHints && request.unacknowledged !== undefined ? [...request.unacknowledged, request.records.length] : request.unacknowledged;
      return base.push(token, unacknowledged === undefined ? { records: request.records } : { records: request.records, unacknowledged }, o);
    },
  });

  const first = await amina.sync({ transport: watching(A.transport()) });
  t.equal(first.pushed, 3);
  t.same(sent, [{ ids: made.map((r) => r.id), hinted: made.map((r) => r.id) }], 'all three are new to A');

  sent.length = 0;
  await amina.updateRecord(made[0]!.id, { age: 5 });
  const fourth = await amina.createRecord({ name: 'Hint four' });
  await amina.sync({ transport: watching(A.transport()) });
  t.same(sent, [{ ids: [made[0]!.id, fourth.id], hinted: [fourth.id] }], 'an edit of an acknowledged record is not named, a new record is');

  // B predates the hint: the first hinted batch is refused, sent again without it, and the rest go without it.
  sent.length = 0;
  const toB = await amina.sync({ transport: watching(B.transport(), true), batch: { pushRecords: 2 } });
  const local = await amina.listRecords({ limit: 1000 });
  t.same([toB.pushed, toB.failed], [local.length, []], 'everything on the phone, relayed records too');
  t.ok(sent.length >= 3, `${sent.length} requests`);
  t.ok(sent[0]!.hinted.length > 0, 'the first batch carries the hint');
  t.same(sent.slice(-2).map((s) => s.hinted), [[], []], 'the last two go without it');
  const onB = await B.records();
  for (const r of [...made, fourth]) t.ok(byId(onB, r.id) !== undefined, `B holds ${r.id}`);
  t.same(await amina.pendingCounts('server-b'), { records: 0, photos: 0 });
});

/**
 * A TCP proxy to `server` that cuts the first connection carrying more than `cutAfter` bytes to
 * the server: exactly `cutAfter` bytes go through, then both sides are closed at once, wherever
 * that falls (mid TLS record, mid request, before or while the server reads the body).
 */
async function cuttingProxy(t: Test, server: ServerProcess, cutAfter: number): Promise<{ url: string; cuts: () => number }> {
  let armed = true;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const proxy = createTcpServer((client) => {
    const upstream = tcpConnect(server.port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let sent = 0;
    let cut = false;
    client.on('data', (chunk: Buffer) => {
      if (cut) return;
      if (armed && sent + chunk.byteLength > cutAfter) {
        armed = false;
        cut = true;
        cuts += 1;
        // end() flushes the bytes before the cut, then closes; the phone's side goes at once.
        upstream.end(chunk.subarray(0, cutAfter - sent));
        client.destroy();
        return;
      }
      sent += chunk.byteLength;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => {
      if (!cut) upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => proxy.close(() => resolve()));
  });
  return { url: `https://127.0.0.1:${(proxy.address() as AddressInfo).port}`, cuts: () => cuts };
}

/** A logger that keeps what it is told (ids, counts, offsets only: the SDK logs no content). */
function capturingLogger(): Logger & { lines: Array<{ level: string; context: Readonly<Record<string, unknown>>; message: string }> } {
  const lines: Array<{ level: string; context: Readonly<Record<string, unknown>>; message: string }> = [];
  const at = (level: string) => (context: Readonly<Record<string, unknown>>, message: string) => void lines.push({ level, context, message });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

t.test('photos travel between two phones through a server, and an upload cut mid-way resumes from the server offset', async (t) => {
  const logger = capturingLogger();
  const p1 = await phone(t, 'p6', '356938035644006', { logger });
  const p2 = await phone(t, 'p7', '356938035644007');
  const amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const record = await amina.createRecord({ name: 'With photos' });
  const big = await amina.addPhoto(record.id, jpegWithGps('photo-one', 400_000));
  const small = await amina.addPhoto(record.id, jpegWithGps('photo-two', 2_000));
  const removed = await amina.addPhoto(record.id, jpegWithGps('photo-gone', 2_000));
  await amina.removePhoto(record.id, removed.photoId);
  t.same(await amina.pendingCounts('server-a'), { records: 1, photos: 2 }, 'the removed photo is not pending');

  // Issue 5: a plain cut at a random point of the big upload (it is 400 000 bytes; the other
  // requests of the sync are far smaller), no stall first.
  const cutAfter = 60_000 + Math.floor(Math.random() * 320_000);
  t.comment(`cutting the upload connection after ${cutAfter} bytes`);
  const proxy = await cuttingProxy(t, A, cutAfter);
  const viaProxy = createTransportVia(proxy.url, A);
  const up = await amina.sync({ transport: viaProxy, retry: { attempts: 4, baseDelayMs: 300 } });
  t.equal(proxy.cuts(), 1, 'the connection was cut once, during the big upload');
  t.match(up.photos, { uploaded: 2, downloaded: 0, failed: [] });
  const resumed = logger.lines.filter((l) => l.message === 'photo upload resumed');
  t.equal(resumed.length, 1, 'the upload resumed');
  t.ok(Number(resumed[0]?.context['offset']) > 0 && Number(resumed[0]?.context['offset']) < big.size, `from the offset the server had (${String(resumed[0]?.context['offset'])} of ${big.size})`);
  t.same(await amina.pendingCounts('server-a'), { records: 0, photos: 0 });

  const bilal = await p2.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  const down = await bilal.sync({ transport: A.transport() });
  t.match(down.photos, { uploaded: 0, downloaded: 2, failed: [] });
  for (const p of [big, small]) {
    const got = await bilal.readPhoto(record.id, p.photoId);
    const sent = await amina.readPhoto(record.id, p.photoId);
    t.same(Buffer.from(got.bytes), Buffer.from(sent.bytes), `photo ${p.photoId} arrived intact`);
    t.equal(got.sha256, p.sha256);
  }
  t.equal((await rejection(bilal.readPhoto(record.id, removed.photoId))).code, 'PHOTO_NOT_FOUND', 'the removed photo never travels');
  t.same(await bilal.pendingCounts('server-a'), { records: 0, photos: 0 }, 'downloaded photos are known to be on the server');
  const again = await bilal.sync({ transport: A.transport() });
  t.match(again.photos, { uploaded: 0, downloaded: 0, failed: [] });

  // A photo removed on one phone leaves the other at its next sync.
  await bilal.removePhoto(record.id, small.photoId);
  await bilal.sync({ transport: A.transport() });
  await amina.sync({ transport: A.transport() });
  t.equal((await rejection(amina.readPhoto(record.id, small.photoId))).code, 'PHOTO_NOT_FOUND');
  t.ok((await amina.readPhoto(record.id, big.photoId)).bytes.byteLength > 0);
});

/**
 * A transport to `server` through the relay at `url`. The relay forwards the TLS stream untouched
 * (the pin still checks the server's own certificate), so the test declares it the server's
 * transport identity: the session's login to the server (made directly) may be used through it.
 */
function createTransportVia(url: string, server: ServerProcess): Transport {
  return { ...server.transport({ baseUrl: url }), identity: server.transport().identity ?? '' };
}

t.test('progress events are monotonic per phase and their totals are right', async (t) => {
  const p = await phone(t, 'p8', '356938035644008');
  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  const before = await amina.sync({ transport: B.transport() });
  t.same(before.failed, []);
  const made: ChildRecord[] = [];
  for (let i = 0; i < 23; i++) made.push(await amina.createRecord({ name: `Progress ${i}`, notes: 'x'.repeat(i * 10) }));
  // The first photo is large enough to be reported while it moves (steps of 64 KiB).
  const photos = [await amina.addPhoto(made[0]!.id, jpegWithGps('progress-1', 300_000)), await amina.addPhoto(made[1]!.id, jpegWithGps('progress-2', 7_000))];
  const events: SyncProgress[] = [];
  const summary = await amina.sync({ transport: B.transport(), onProgress: (e) => events.push(e), batch: { pushRecords: 5, pullRecords: 4 } });
  t.equal(summary.pushed, 23);

  const phases = ['push', 'pull', 'photos-up', 'photos-down'] as const;
  t.same([...new Set(events.map((e) => e.phase))], phases, 'phases in order');
  for (const phase of phases) {
    const list = events.filter((e) => e.phase === phase);
    for (let i = 1; i < list.length; i++) {
      const [a, b] = [list[i - 1] as SyncProgress, list[i] as SyncProgress];
      t.ok(b.recordsDone >= a.recordsDone && b.bytesDone >= a.bytesDone, `${phase}: done is monotonic`);
      // Pull's totals are the server's estimate, which may go down (SyncProgress).
      if (phase !== 'pull') t.ok(b.recordsTotal >= a.recordsTotal && b.bytesTotal >= a.bytesTotal, `${phase}: totals are monotonic`);
    }
    for (const e of list) t.ok(e.recordsDone <= e.recordsTotal && e.bytesDone <= e.bytesTotal, `${phase}: done within total`);
    const last = list[list.length - 1] as SyncProgress;
    t.same([last.recordsDone, last.bytesDone], [last.recordsTotal, last.bytesTotal], `${phase}: ends complete`);
  }
  const push = events.filter((e) => e.phase === 'push');
  t.equal(push[0]?.recordsTotal, 23, 'push total known at the start');
  t.equal(push.length, 1 + 5, 'one event at the start and one per batch of 5');
  const docBytes = (await Promise.all(made.map((r) => amina.getRecord(r.id)))).reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)), 0);
  t.equal(push[0]?.bytesTotal, docBytes, 'push bytes = the records sent');
  const pull = events.filter((e) => e.phase === 'pull');
  t.equal(pull[pull.length - 1]?.recordsTotal, summary.pulled, 'pull total = records pulled');
  t.ok(pull.length >= 1 + Math.ceil(23 / 4), 'one event per page');
  // The 23 records came back (this phone's own, from the feed); each changed once, so the
  // store's estimate is exact: after the first page of 4 the total is already known.
  t.equal(summary.pulled, 23);
  t.same([pull[1]?.recordsDone, pull[1]?.recordsTotal], [4, 23], 'the pull total is known after the first page');
  t.ok((pull[1]?.bytesTotal ?? 0) > (pull[1]?.bytesDone ?? 0), 'and a bytes estimate with it');
  const up = events.filter((e) => e.phase === 'photos-up');
  t.same([up[0]?.recordsTotal, up[0]?.bytesTotal], [2, photos[0]!.size + photos[1]!.size], 'photo totals known at the start');
  const moving = up.filter((e) => e.recordsDone === 0 && e.bytesDone > 0 && e.bytesDone < photos[0]!.size);
  t.ok(moving.length >= 2, `the large photo's bytes are reported while it uploads (${moving.length} events)`);

  // Another phone of the same user downloads it: its bytes are reported as they arrive.
  const other = await phone(t, 'p8b', '356938035644020');
  const again = await other.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  const down: SyncProgress[] = [];
  const received = await again.sync({ transport: B.transport(), onProgress: (e) => e.phase === 'photos-down' && down.push(e) });
  t.ok(received.photos.downloaded >= 2, `the photos came down (${received.photos.downloaded})`);
  // Events within a photo: no photo finished since the previous event, but bytes moved.
  const within = down.filter((e, i) => i > 0 && e.recordsDone === down[i - 1]?.recordsDone && e.bytesDone > (down[i - 1]?.bytesDone ?? 0));
  t.ok(within.length >= 2, `the large photo's bytes are reported while it downloads (${within.length} events)`);
  for (let i = 1; i < down.length; i++) t.ok((down[i]?.bytesDone ?? 0) >= (down[i - 1]?.bytesDone ?? 0), 'download bytes never go down');
  t.same([down.at(-1)?.bytesDone, down.at(-1)?.recordsDone], [down.at(-1)?.bytesTotal, down.at(-1)?.recordsTotal], 'photos-down ends complete');
});

t.test('a cancelled sync keeps what it committed and the next sync finishes without duplicates', async (t) => {
  const p1 = await phone(t, 'p9', '356938035644009');
  const p2 = await phone(t, 'p10', '356938035644010');
  const bilal = await p2.device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  for (let i = 0; i < 12; i++) await bilal.createRecord({ name: `Cancel ${i}` });
  await bilal.sync({ transport: B.transport() });
  const amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });

  const controller = new AbortController();
  let pages = 0;
  let committed = 0;
  const err = await rejection(
    amina.sync({
      transport: B.transport(),
      signal: controller.signal,
      batch: { pullRecords: 3 },
      onProgress: (e) => {
        if (e.phase !== 'pull' || e.recordsDone === 0) return;
        pages += 1;
        committed = e.recordsDone;
        if (pages === 2) controller.abort();
      },
    }),
  );
  t.equal(err.code, 'SYNC_CANCELLED');
  const kept = (await amina.listRecords({ limit: 1000, includeDeleted: true })).length;
  t.ok(committed > 0 && committed <= 6, `two pages of at most three were committed (${committed})`);
  t.equal(kept, committed, 'exactly the committed pages are kept');
  const rest = await amina.sync({ transport: B.transport(), batch: { pullRecords: 3 } });
  const all = await amina.listRecords({ limit: 1000, includeDeleted: true });
  t.equal(rest.pulled + kept, all.length, 'the next sync continued from the last committed page');
  t.same(ids(all), ids(await B.records()), 'the phone has exactly what the server has');
  t.equal((await rejection(amina.sync({ transport: B.transport(), signal: AbortSignal.abort() }))).code, 'SYNC_CANCELLED', 'an aborted signal stops it at once');
});

t.test('only a session logged in online to the server can sync (SYNC_LOGIN_REQUIRED); flow 1: an unverified user logs in online, then pushes their records', async (t) => {
  const p = await phone(t, 'p11', '356938035644011');
  await p.device.signUpOffline('amina', PASSWORD_A);
  let s: Session = await p.device.loginOffline('amina', PASSWORD_A);
  const offline = await s.createRecord({ name: 'Registered offline' });
  for (let i = 0; i < 6; i++) await s.createRecord({ name: `Also offline ${i}` });
  t.equal((await rejection(s.sync({ transport: A.transport() }))).code, 'SYNC_LOGIN_REQUIRED', 'unverified');
  t.equal((await rejection(s.searchServer(A.transport(), { name: 'x' }))).code, 'SYNC_LOGIN_REQUIRED');
  await s.logout();

  s = await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  t.equal(s.kind, 'verified');
  t.equal((await rejection(s.sync({ transport: B.transport() }))).code, 'SYNC_LOGIN_REQUIRED', 'no online login to B in this session');
  t.same(await s.pendingCounts('server-a'), { records: 7, photos: 0 }, 'the moved records wait for A');
  // The move copies them in bulk under one local write counter value: small batches still take them all.
  const summary = await s.sync({ transport: A.transport(), batch: { pushRecords: 3 } });
  t.equal(summary.pushed, 7);
  t.same(byId(await A.records(), offline.id), offline, 'the record made while unverified is on the server, as hers');
  await s.logout();

  s = await p.device.loginOffline('amina', PASSWORD_A);
  t.equal((await rejection(s.sync({ transport: A.transport() }))).code, 'SYNC_LOGIN_REQUIRED', 'verified, but logged in offline');
  t.equal((await rejection(s.sync({ transport: 'nope' } as never))).code, 'INPUT_INVALID');
  t.equal((await rejection(s.sync({ transport: A.transport(), retry: { attempts: 0, baseDelayMs: 1 } }))).code, 'INPUT_INVALID');
  await s.logout();
  t.equal((await rejection(s.sync({ transport: A.transport() }))).code, 'VAULT_LOCKED');
});

t.test("the server's edit rights apply on the phone: a field worker neither deletes others' records nor resolves conflicts; a supervisor does, and it syncs", async (t) => {
  const p1 = await phone(t, 'p12', '356938035644012');
  const p2 = await phone(t, 'p13', '356938035644013');
  let amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const bilal = await p2.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  const hers = await amina.createRecord({ name: 'Created by Amina', age: 3 });
  await amina.sync({ transport: A.transport() });
  await bilal.sync({ transport: A.transport() });
  await amina.updateRecord(hers.id, { age: 4 });
  await bilal.updateRecord(hers.id, { age: 5 });
  await amina.sync({ transport: A.transport() });
  await bilal.sync({ transport: A.transport() });
  const conflicted = await bilal.getRecord(hers.id);
  const id = conflictId(openConflicts(conflicted)[0]!);

  t.equal((await rejection(bilal.deleteRecord(hers.id))).code, 'RECORD_FORBIDDEN', "a field worker does not delete another user's record");
  t.equal((await rejection(bilal.resolveConflict(hers.id, id))).code, 'RECORD_FORBIDDEN', 'nor resolves a conflict');
  t.same(await bilal.getRecord(hers.id), conflicted, 'nothing changed');
  const own = await bilal.createRecord({ name: "Bilal's own" });
  t.ok(isDeleted(await bilal.deleteRecord(own.id)), 'their own records they delete');
  await bilal.logout();

  // Offline, the role remembered from the last online login still applies.
  const off = await p2.device.loginOffline('bilal', PASSWORD_B);
  t.equal((await rejection(off.deleteRecord(hers.id))).code, 'RECORD_FORBIDDEN');
  await off.logout();

  // A supervisor on the same phone resolves and deletes; the sync carries it to the server.
  await amina.logout();
  const sam = await p2.device.loginOnline('sam', PASSWORD_C, { transport: A.transport() });
  await sam.resolveConflict(hers.id, id);
  t.notOk(needsReview(await sam.getRecord(hers.id)));
  await sam.deleteRecord(hers.id);
  const s = await sam.sync({ transport: A.transport() });
  t.same(s.failed, []);
  const onA = byId(await A.records(), hers.id);
  t.ok(onA !== undefined && isDeleted(onA) && !needsReview(onA), 'resolved and deleted on the server');
  amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  await amina.sync({ transport: A.transport() });
  t.equal((await rejection(amina.getRecord(hers.id))).code, 'VAULT_RECORD_NOT_FOUND', 'the deletion reached the other phone');
});

t.test("issue 5: a field worker's phone relays to server B a record of another user that a supervisor deleted on server A", async (t) => {
  const pb = await phone(t, 'p31', '356938035644031');
  const ps = await phone(t, 'p32', '356938035644032');
  const pa = await phone(t, 'p33', '356938035644033');
  // bilal's record reaches both servers.
  const bilal = await pb.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  const record = await bilal.createRecord({ name: 'Deleted on A by a supervisor' });
  await bilal.sync({ transport: A.transport() });
  const bilalOnB = await pb.device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  await bilalOnB.sync({ transport: B.transport() });
  // sam, a supervisor, deletes it through A only.
  const sam = await ps.device.loginOnline('sam', PASSWORD_C, { transport: A.transport() });
  await sam.sync({ transport: A.transport() });
  await sam.deleteRecord(record.id);
  t.same((await sam.sync({ transport: A.transport() })).failed, []);
  // amina's phone pulls the tombstone from A and carries it to B.
  const amina = await pa.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  await amina.sync({ transport: A.transport() });
  const aminaOnB = await pa.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  const toB = await aminaOnB.sync({ transport: B.transport() });
  // (A holds records of earlier tests too, so only this record is asserted on; relayed
  // resolutions have their own test, relayed-resolutions.test.ts.)
  t.same(toB.failed.filter((f) => f.id === record.id), [], 'accepted as a relay (was RECORD_FORBIDDEN)');
  const onB = byId(await B.records(), record.id);
  t.ok(onB !== undefined && isDeleted(onB), 'B holds the deletion');
  t.same(onB, byId(await A.records(), record.id), 'both servers hold the same record');
});

t.test('issue 5: a phone whose clock runs 10 minutes behind still pulls, is told its clock is off, and its later edits win', async (t) => {
  const right = await phone(t, 'p34', '356938035644034');
  const slow = await phone(t, 'p35', '356938035644035', { now: () => Date.now() - 600_000 });
  const amina = await right.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const record = await amina.createRecord({ name: 'Registered on time' });
  await amina.sync({ transport: A.transport() });

  const bilal = await slow.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  const first = await bilal.sync({ transport: A.transport() });
  t.same(first.failed, [], 'the pull did not fail (it was HLC_TOO_FAR_AHEAD on every page)');
  t.same(await bilal.getRecord(record.id), record, 'the record dated ahead of the phone clock arrived');
  t.ok((first.clockOffsetMs ?? 0) >= 590_000, `the summary says the clock is behind (${String(first.clockOffsetMs)} ms)`);

  // Edits on the slow phone are ordered after what it received: they win, no conflict.
  const edited = await bilal.updateRecord(record.id, { name: 'Renamed on the slow phone' });
  t.ok((edited.fields['name']?.ts ?? '') > (record.fields['name']?.ts ?? ''), 'the edit is newer than the pulled version');
  const second = await bilal.sync({ transport: A.transport() });
  t.same([second.pushed, second.failed, second.conflicts], [1, [], 0]);
  t.equal(byId(await A.records(), record.id)?.fields['name']?.value, 'Renamed on the slow phone', 'the server took the edit');
  await amina.sync({ transport: A.transport() });
  t.equal((await amina.getRecord(record.id)).fields['name']?.value, 'Renamed on the slow phone');
  t.equal((await amina.sync({ transport: A.transport() })).clockOffsetMs, undefined, 'a phone on time is told nothing');
});

t.test('requests are retried with backoff on network, store and rate-limit failures, waiting at least Retry-After', async (t) => {
  const p = await phone(t, 'p14', '356938035644014');
  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  await amina.createRecord({ name: 'Retried' });
  const base = A.transport();
  const failures = [
    new FieldvaultError('TRANSPORT_UNREACHABLE'),
    new FieldvaultError('RATE_LIMITED', { details: { status: 429, retryAfterSeconds: 1 } }),
    new FieldvaultError('STORE_UNAVAILABLE', { details: { status: 503 } }),
  ];
  const calls: number[] = [];
  const flaky: Transport = {
    ...base,
    push: async (token, request, o) => {
      calls.push(Date.now());
      const f = failures.shift();
      if (f !== undefined) throw f;
      return base.push(token, request, o);
    },
  };
  const summary = await amina.sync({ transport: flaky, retry: { attempts: 4, baseDelayMs: 10 } });
  t.equal(summary.pushed, 1);
  t.equal(calls.length, 4, 'three failures, then success');
  // Retry-After is 1 s where the backoff alone would wait 10–20 ms. Date.now() reads whole
  // milliseconds while timers run on a monotonic clock, so a full 1000 ms wait can read as 999
  // (it did once, in session 16's CI): a few ms of slack, far above any backoff.
  t.ok((calls[2] as number) - (calls[1] as number) >= 990, 'the rate-limited retry waited for Retry-After');

  const down: Transport = { ...base, pull: async () => Promise.reject(new FieldvaultError('TRANSPORT_UNREACHABLE')) };
  const started = Date.now();
  t.equal((await rejection(amina.sync({ transport: down, retry: { attempts: 3, baseDelayMs: 50 } }))).code, 'TRANSPORT_UNREACHABLE', 'given up after the tries');
  t.ok(Date.now() - started >= 50 / 2 + 100 / 2, 'with growing waits between them');
  const refused: Transport = { ...base, pull: async () => Promise.reject(new FieldvaultError('TRANSPORT_BAD_RESPONSE')) };
  let tries = 0;
  const counted: Transport = { ...refused, pull: (...args) => (tries++, refused.pull(...args)) };
  t.equal((await rejection(amina.sync({ transport: counted, retry: FAST_RETRY }))).code, 'TRANSPORT_BAD_RESPONSE');
  t.equal(tries, 1, 'other errors are not retried');
  // A refused checkpoint is not a network failure either: the sync runs once more from the start
  // (sync-store-replaced.test.ts), and a server that refuses that too ends it.
  const noCheckpoint: Transport = { ...base, pull: async () => Promise.reject(new FieldvaultError('SYNC_CHECKPOINT_INVALID')) };
  let refusals = 0;
  const countedRefusals: Transport = { ...noCheckpoint, pull: (...args) => (refusals++, noCheckpoint.pull(...args)) };
  t.equal((await rejection(amina.sync({ transport: countedRefusals, retry: FAST_RETRY }))).code, 'SYNC_CHECKPOINT_INVALID');
  t.equal(refusals, 2, 'one pull with the checkpoint, one from the start, no backoff retries');
});

t.test('a retired device: the final sync pushes everything, then the SDK wipes the device; with a record refused it keeps its data', async (t) => {
  const form: FormDefinition = { ...defaultChildForm, fields: [...defaultChildForm.fields, { name: 'nickname', type: 'string' }] };
  const stuckPhone = await phone(t, 'p15', '356938035644015', { form });
  const a = await stuckPhone.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  const stuck = await a.createRecord({ name: 'Stuck', nickname: 'refused by the server form' });
  t.equal((await B.admin('POST', `/v1/devices/${stuckPhone.device.imei}/retire`, { reason: 'replaced' })).status, 200);
  const blocked = await a.sync({ transport: B.transport() });
  t.match(blocked, { deviceStatus: 'retired', wiped: false, failed: [{ id: stuck.id, code: 'RECORD_INVALID' }] });
  t.ok(a.active, 'still logged in');
  t.ok(filesUnder(stuckPhone.dir).length > 2, 'not wiped while a record is refused: nothing is lost');

  const p = await phone(t, 'p16', '356938035644016');
  const bilal = await p.device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  const last = await bilal.createRecord({ name: 'Last record on a retired phone' });
  const photo = await bilal.addPhoto(last.id, jpegWithGps('retired-photo', 3_000));
  t.equal((await B.admin('POST', `/v1/devices/${p.device.imei}/retire`, { reason: 'replaced' })).status, 200);
  const final = await bilal.sync({ transport: B.transport() });
  t.match(final, { deviceStatus: 'retired', wiped: true, pushed: 1, failed: [], photos: { uploaded: 1, failed: [] } });
  t.notOk(bilal.active, 'the session is closed');
  t.same(filesUnder(p.dir), [], 'databases, photos, keyring and device key are gone');
  t.equal((await rejection(p.device.loginOffline('bilal', PASSWORD_B))).code, 'VAULT_WRONG_PASSWORD');
  const onB = byId(await B.records(), last.id);
  t.ok(onB !== undefined && Object.hasOwn(onB.photos, photo.photoId), 'the final sync delivered the record and its photo');
});

/**
 * A phone whose real adapter is observed: `atCheck(fn)` runs `fn` once, when the retirement check
 * that nothing is left reaches its last step (the list of databases on the phone, after the
 * pending counts) — as an app might save while a sync runs in the background.
 */
async function observedPhone(t: Test, name: string, imei: string, extra: Parameters<typeof newDevice>[1] = {}) {
  let onCheck: (() => void) | undefined;
  let root = testDirs.get(t);
  if (root === undefined) {
    root = t.testdir();
    testDirs.set(t, root);
  }
  const real = new SqlCipherStorage({ directory: join(root, name, 'databases') });
  const storage = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'list') {
        return async () => {
          const names = await target.list();
          const fire = onCheck;
          onCheck = undefined;
          fire?.();
          return names;
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const p = await phone(t, name, imei, { ...extra, storage });
  return { ...p, atCheck: (fn: () => void) => void (onCheck = fn) };
}

t.test('a retired device: a record or photo saved while it checks that nothing is left is refused after the wipe (never saved and wiped unsent)', async (t) => {
  const p = await observedPhone(t, 'p17', '356938035644017');
  const bilal = await p.device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  const first = await bilal.createRecord({ name: 'Synced before the retirement' });
  t.equal((await B.admin('POST', `/v1/devices/${p.device.imei}/retire`, { reason: 'replaced' })).status, 200);
  let late: Promise<unknown>[] = [];
  p.atCheck(() => {
    late = [bilal.createRecord({ name: 'Saved during the final check' }), bilal.addPhoto(first.id, jpegWithGps('during-check', 3_000))];
    for (const l of late) l.catch(() => undefined);
  });
  const final = await bilal.sync({ transport: B.transport() });
  t.equal(late.length, 2, 'the saves were made during the check');
  t.match(final, { deviceStatus: 'retired', wiped: true, pushed: 1, failed: [] }, 'nothing was pending when the check began');
  // Without the hold, the record committed after the check and was wiped with the device, unsent.
  for (const l of late) t.equal((await rejection(l)).code, 'VAULT_WIPED', 'refused, not saved and wiped unsent: the app knows it did not happen, and why');
  t.equal((await rejection(bilal.createRecord({ name: 'After the wipe' }))).code, 'VAULT_WIPED', 'and so is any later call of the session');
  t.same(filesUnder(p.dir), [], 'wiped: no photo file either');
  t.ok(byId(await B.records(), first.id) !== undefined, 'what was saved before reached the server');
});

t.test('a retired device that keeps its data: a record saved during the check is saved as usual', async (t) => {
  const form: FormDefinition = { ...defaultChildForm, fields: [...defaultChildForm.fields, { name: 'nickname', type: 'string' }] };
  const p = await observedPhone(t, 'p18', '356938035644018', { form });
  const bilal = await p.device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  await bilal.createRecord({ name: 'Stuck', nickname: 'refused by the server form' });
  t.equal((await B.admin('POST', `/v1/devices/${p.device.imei}/retire`, { reason: 'replaced' })).status, 200);
  let late: Promise<ChildRecord> | undefined;
  p.atCheck(() => {
    late = bilal.createRecord({ name: 'Saved during the check' });
  });
  const held = await bilal.sync({ transport: B.transport() });
  t.match(held, { deviceStatus: 'retired', wiped: false });
  t.ok(late !== undefined, 'the save was made during the check');
  const saved = await (late as Promise<ChildRecord>);
  t.same((await bilal.getRecord(saved.id)).id, saved.id, 'saved once the check was over');
  t.same(await bilal.pendingCounts('server-b'), { records: 2, photos: 0 }, 'and pending for the next sync');
});

t.test('a retired device is not wiped while it holds what a server lacks: records pending for another server, another user\'s unverified database', async (t) => {
  const p = await phone(t, 'p30', '356938035644030');
  // bilal signs up offline and registers a child: his unverified database, which amina cannot open.
  await p.device.signUpOffline('bilal', PASSWORD_B);
  let bilal = await p.device.loginOffline('bilal', PASSWORD_B);
  const bilals = await bilal.createRecord({ name: 'Registered by bilal before his account was verified' });
  await bilal.logout();

  await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  let amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  await amina.createRecord({ name: 'On A and B' });
  await amina.sync({ transport: A.transport() });
  await amina.sync({ transport: B.transport() });
  const onlyOnA = await amina.createRecord({ name: 'Synced with A only' });
  await amina.sync({ transport: A.transport() });
  t.equal((await A.admin('POST', `/v1/devices/${p.device.imei}/retire`, { reason: 'replaced' })).status, 200);

  const held = await amina.sync({ transport: A.transport() });
  t.match(held, { deviceStatus: 'retired', wiped: false, failed: [] });
  t.same(held.retirementHold, { servers: [{ serverId: 'server-b', records: 1, photos: 0 }], otherDatabases: 1 }, 'B lacks a record; bilal\'s database may hold records no server has');
  t.ok(amina.active, 'still logged in');
  const names = await p.storage.list();
  t.equal(names.length, 2, 'both databases are still there');

  t.equal((await amina.sync({ transport: B.transport() })).pushed, 1, 'the record reaches B');
  t.same((await amina.sync({ transport: A.transport() })).retirementHold, { servers: [], otherDatabases: 1 }, 'still held by bilal\'s database');
  await amina.logout();

  // bilal is verified through B (this phone is not retired there): his records move into the
  // shared database and reach B; then amina's next sync with A brings them to A and wipes the phone.
  bilal = await p.device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  t.equal((await bilal.sync({ transport: B.transport() })).pushed, 1);
  await bilal.logout();
  amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const final = await amina.sync({ transport: A.transport() });
  t.match(final, { deviceStatus: 'retired', wiped: true, pushed: 1, failed: [] });
  t.equal(final.retirementHold, undefined);
  t.same(filesUnder(p.dir), [], 'wiped');
  for (const server of [A, B]) {
    const records = await server.records();
    t.ok(byId(records, bilals.id) !== undefined && byId(records, onlyOnA.id) !== undefined, `${server.serverId} holds every record of the retired phone`);
  }
});

t.test("the retirement hold waits only for the servers the app still syncs with (`servers`): a forgotten server's pending records do not hold the wipe", async (t) => {
  const p = await phone(t, 'p36', '356938035644036');
  await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  await amina.createRecord({ name: 'On A and B' });
  await amina.sync({ transport: A.transport() });
  await amina.sync({ transport: B.transport() });
  // The app then drops B (removed from its settings, or decommissioned): this record never gets there.
  const last = await amina.createRecord({ name: 'Synced with A after B was dropped' });
  t.equal((await A.admin('POST', `/v1/devices/${p.device.imei}/retire`, { reason: 'replaced' })).status, 200);

  for (const servers of [['Server A'], 'server-a', [42]]) {
    const err = await rejection(amina.sync({ transport: A.transport(), servers: servers as readonly string[] }));
    t.match(err, { code: 'INPUT_INVALID', details: { field: 'servers' } }, `servers: ${JSON.stringify(servers)} is refused`);
  }
  const held = await amina.sync({ transport: A.transport() });
  t.same(held.retirementHold, { servers: [{ serverId: 'server-b', records: 1, photos: 0 }], otherDatabases: 0 }, 'by default every server this database synced with counts');
  t.equal(held.wiped, false);

  // A server listed that this database never synced with adds nothing; the retiring one always counts.
  const final = await amina.sync({ transport: A.transport(), servers: ['server-z'] });
  t.match(final, { deviceStatus: 'retired', wiped: true, failed: [] });
  t.equal(final.retirementHold, undefined);
  t.same(filesUnder(p.dir), [], 'wiped, though B never got the last record');
  t.ok(byId(await A.records(), last.id) !== undefined, 'the retiring server holds it');
});

t.test('a device blacklisted while a session is open is wiped at its next sync', async (t) => {
  const p = await phone(t, 'p17', '356938035644017');
  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  await amina.createRecord({ name: 'On a stolen phone' });
  t.equal((await A.admin('POST', `/v1/devices/${p.device.imei}/blacklist`, { reason: 'stolen' })).status, 200);
  const err = await rejection(amina.sync({ transport: A.transport() }));
  t.equal(err.code, 'DEVICE_BLACKLISTED');
  t.match((err as { details?: unknown }).details, { wiped: true, serverId: 'server-a' });
  t.same(filesUnder(p.dir), ['blocked.json'], 'all gone but the mark of the blacklisting (blocked-mark.test.ts)');
  t.notOk(amina.active);
});

t.test('a version-1 database is migrated to the current schema in place when opened, and its records are pending for every server', async (t) => {
  const p = await phone(t, 'p18', IMEI); // serverKey() makes keys for helpers' IMEI
  const k = serverKey(Date.now() - 1_000, 'server-a');
  const s = await p.device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: k.record, key: k.key });
  const records = [await s.createRecord({ name: 'From v1 one' }), await s.createRecord({ name: 'From v1 two' })];
  await s.logout();
  // Turn the database back into what SDK 0.1 wrote: schema version 1, no sync tables.
  const raw = await p.storage.open(dbFileName(k.key), k.key, { create: false });
  await raw.transaction(async (tx) => {
    for (const table of ['server_acks', 'photo_acks', 'checkpoints', 'server_roles', 'photo_files_pending']) await tx.execute(`DROP TABLE ${table}`);
    await tx.execute('DROP INDEX records_by_seq_id');
    await tx.execute('CREATE INDEX records_by_seq ON records (local_seq)');
    await tx.execute('PRAGMA user_version = 1');
  });
  await raw.close();

  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  t.equal(amina.keyId, k.record.keyId, 'A adopted the key the phone offered');
  t.same(ids(await amina.listRecords()), ids(records), 'the records survived the upgrade');
  t.same(await amina.pendingCounts('server-a'), { records: 2, photos: 0 });
  t.equal((await amina.sync({ transport: A.transport() })).pushed, 2);
  await amina.logout();
  const check = await p.storage.open(dbFileName(k.key), k.key, { create: false });
  t.same(await check.query('PRAGMA user_version'), [{ user_version: SCHEMA_VERSION }]);
  await ensureSchema(check);
  await check.close();
});

t.test('schema v3: a version-2 database gets the (local_seq, id) index, and a push page reads it in order without a sort', async (t) => {
  const storage = new SqlCipherStorage({ directory: t.testdir() });
  const key = Buffer.alloc(32, 7);
  const db = await storage.open('f'.repeat(64), key, { create: true });
  t.teardown(() => db.close());
  await ensureSchema(db);
  // What SDK 0.2 left: schema v2 with the single-column index (and no v4 table).
  await db.transaction(async (tx) => {
    await tx.execute('DROP TABLE photo_files_pending');
    await tx.execute('DROP INDEX records_by_seq_id');
    await tx.execute('CREATE INDEX records_by_seq ON records (local_seq)');
    await tx.execute('PRAGMA user_version = 2');
  });
  const indexes = async (): Promise<string[]> =>
    (await db.query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records' AND name LIKE 'records_by_seq%' ORDER BY name")).map((r) => r.name);
  t.same(await indexes(), ['records_by_seq']);
  await ensureSchema(db);
  t.same(await db.query('PRAGMA user_version'), [{ user_version: SCHEMA_VERSION }]);
  t.same(await indexes(), ['records_by_seq_id'], 'the new index replaces the old one');
  const plan = (await db.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${PENDING_PAGE_SQL}`, ['server-a', 0, '', 100, 500])).map((r) => r.detail);
  t.ok(plan.some((d) => d.includes('records_by_seq_id')), `the page walks the index: ${plan.join(' | ')}`);
  t.notOk(plan.some((d) => /TEMP B-TREE/.test(d)), 'no sort of everything after the page start');
  // Keyset paging across rows that share a local_seq (as after a migration): every row once, in order.
  await db.transaction(async (tx) => {
    for (let i = 0; i < 7; i += 1) {
      await tx.execute(
        `INSERT INTO records (id, created_by, created_at, updated_at, deleted, needs_review, flagged, reunited, investigated, duplicate, verified, local_seq, doc)
         VALUES (?, 'amina', 'c', 'u', 0, 0, 0, 0, 0, 0, 0, ?, '{}')`,
        [`r${6 - i}`, i < 5 ? 3 : 4],
      );
    }
  });
  const seen: string[] = [];
  for (let after = { seq: 0, id: '' }; ; ) {
    const rows = await db.query<{ id: string; local_seq: number }>(PENDING_PAGE_SQL, ['server-a', after.seq, after.id, 4, 2]);
    const last = rows.at(-1);
    if (last === undefined) break;
    seen.push(...rows.map((r) => `${r.local_seq}:${r.id}`));
    after = { seq: last.local_seq, id: last.id };
  }
  t.same(seen, ['3:r2', '3:r3', '3:r4', '3:r5', '3:r6', '4:r0', '4:r1']);
});

t.test('verified users search the server and read its form', async (t) => {
  const p = await phone(t, 'p19', '356938035644019');
  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const r = await amina.createRecord({ name: 'Zainab Searchable', age: 9, location: 'Camp Nine' });
  await amina.sync({ transport: A.transport() });
  const found = await amina.searchServer(A.transport(), { name: 'zain sear', ageMin: 8, ageMax: 10 });
  t.same(found.records.map((x) => x.id), [r.id]);
  t.equal(found.nextCursor, null);
  t.equal((await rejection(amina.searchServer(A.transport(), { ageMin: -1 }))).code, 'INPUT_INVALID');
  // Numbers JavaScript writes in exponent form are sent as plain decimals, which the server reads.
  t.same((await amina.searchServer(A.transport(), { name: 'zain sear', ageMin: 1e-7, ageMax: 10 })).records.map((x) => x.id), [r.id]);
  t.same(await amina.serverForm(A.transport()), defaultChildForm);
});

t.test("direction 'send' pushes and uploads what the phone has and receives nothing; the next full sync pulls from where the last pull stopped", async (t) => {
  const other = await phone(t, 'p40', '356938035644040');
  const bilal = await other.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  const theirs = await bilal.createRecord({ name: 'Sent only: from the other phone', age: 6 });
  await bilal.addPhoto(theirs.id, jpegWithGps('other-phone'));
  t.same((await bilal.sync({ transport: A.transport() })).failed, []);

  const p = await phone(t, 'p41', '356938035644041');
  const amina = await p.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const mine = await amina.createRecord({ name: 'Sent only: mine', age: 4 });
  await amina.addPhoto(mine.id, jpegWithGps('send-only'));
  const phases = new Set<string>();
  const sent = await amina.sync({ transport: A.transport(), direction: 'send', onProgress: (x) => phases.add(x.phase) });
  t.match(sent, { pushed: 1, pulled: 0, failed: [], photos: { uploaded: 1, downloaded: 0, failed: [] } });
  t.same([...phases].sort(), ['photos-up', 'push'], 'no pull phase ran');
  t.same(await amina.pendingCounts('server-a'), { records: 0, photos: 0 }, 'nothing of the phone is pending');
  t.notOk((await amina.listRecords({ limit: 1000 })).some((r) => r.id === theirs.id), 'nothing was received');
  t.ok((await A.records()).some((r) => r.id === mine.id), 'the server has the record');

  const full = await amina.sync({ transport: A.transport() });
  t.ok(full.pulled >= 2, 'the full sync pulls');
  t.equal(full.photos.downloaded >= 1, true, "and downloads the other phone's photo");
  t.equal((await amina.readPhoto(theirs.id, Object.keys((await amina.getRecord(theirs.id)).photos)[0] ?? '')).type, 'image/jpeg');
  t.equal((await rejection(amina.sync({ transport: A.transport(), direction: 'up' as 'send' }))).code, 'INPUT_INVALID');
});
