import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { addPhoto, removePhoto, type ChildRecord, type PhotoType, type PhotoUploadStatus } from '@fieldvault/protocol';
import { createUser, login, makeApp, setupAdmin, startStore } from './helpers.js';
import { newRecord, phoneFor, push, type Phone } from './sync-helpers.js';
import { download, MAGIC, png, sha256, upload, uploadStatus, type App } from './photo-helpers.js';

// Security audit s9: H2 (photo-id squatting), M2 (uploads held in memory), L2 (download headers),
// L7 (another user discarding a partial upload).
const couch = await startStore(t);

function withPhoto(record: ChildRecord, phone: Phone, photoId: string, bytes: Buffer, type: PhotoType = 'image/png'): ChildRecord {
  return addPhoto(record, photoId, { sha256: sha256(bytes), size: bytes.byteLength, type, by: phone.username, ts: phone.clock.now() });
}

async function pushOne(app: App, phone: Phone, record: ChildRecord): Promise<void> {
  const res = await push(app, phone.token, [record]);
  if (res.results[0]?.status !== 'ok') throw new Error(`push failed: ${JSON.stringify(res.results[0])}`);
}

t.test('H2: a photo id another record references is refused on push, and the owner still uploads and is served', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const carol = await phoneFor(app, admin, clock, 'carol');
  const bob = await phoneFor(app, admin, clock, 'bob');
  const real = png(50_000, 'carol-real');
  const evil = Buffer.concat([real.subarray(0, 8), Buffer.from('EVILEVILEVIL-substituted')]);
  const P = randomUUID();
  // The sequence of /tmp/sec-audit/attack2.mjs: carol pushes, bob (who pulled the ref) claims the id first.
  const carolRec = withPhoto(newRecord(carol, { name: 'child of carol' }), carol, P, real);
  await pushOne(app, carol, carolRec);
  const bobRec = withPhoto(newRecord(bob, { name: 'child of bob' }), bob, P, evil);
  const plain = newRecord(bob, { name: 'other child of bob' });
  const claim = await push(app, bob.token, [bobRec, plain]);
  t.match(claim.results[0], { id: bobRec.id, status: 'error', code: 'PHOTO_ID_TAKEN', field: 'photos' }, "bob's record is refused");
  t.match(claim.results[1], { id: plain.id, status: 'ok' }, 'the rest of the batch is stored');

  const own = await upload(app, bob.token, P, bobRec.id, evil);
  t.equal(own.json().code, 'RECORD_NOT_FOUND', 'bob has no record of his own naming the photo');
  // Bob may start an upload under carol's record (a phone relaying a photo between servers may),
  // but carol's phone, which added the photo, is not blocked by it: it starts over and replaces it.
  const onCarols = await upload(app, bob.token, P, carolRec.id, evil);
  t.match(onCarols.json(), { received: evil.byteLength, complete: false }, "bob's bytes are only a start under carol's ref");
  t.equal((await uploadStatus(app, carol.token, P, carolRec.id)).received, 0, "carol's phone is told to start from 0");

  const put = await upload(app, carol.token, P, carolRec.id, real);
  t.equal(put.statusCode, 200);
  t.equal((put.json() as PhotoUploadStatus).complete, true, "carol's upload works");
  const got = await download(app, bob.token, P);
  t.equal(got.statusCode, 200);
  t.ok(got.rawPayload.equals(real), "carol's bytes are served");
});

t.test('H2: a record that carries its own photo id again passes (pushed again, relayed by another user, edited)', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const sam = await phoneFor(app, admin, clock, 'sam', 'supervisor');
  const bytes = png(10_000);
  const P = randomUUID();
  const record = withPhoto(newRecord(amina, { name: 'Relayed' }), amina, P, bytes);
  await pushOne(app, amina, record);
  const again = await push(app, amina.token, [record]);
  t.match(again.results[0], { status: 'ok', changed: false }, 'the same push again');
  const relayed = await push(app, sam.token, [{ ...record, fields: { ...record.fields } }]);
  t.match(relayed.results[0], { status: 'ok' }, 'the same record relayed by another phone');
  const edited = { ...record, fields: { ...record.fields, name: { ...record.fields['name']!, value: 'Edited', ts: amina.clock.now() } } };
  edited.history = [...record.history, edited.fields['name']!];
  const res = await push(app, amina.token, [edited]);
  t.match(res.results[0], { status: 'ok', changed: true }, 'an edit of the record keeps its photo');
  const put = await upload(app, sam.token, P, record.id, bytes);
  t.equal((put.json() as PhotoUploadStatus).complete, true);
});

t.test('H2: two new records of one batch cannot both take one new photo id', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = png(1_000);
  const Q = randomUUID();
  const first = withPhoto(newRecord(amina, { name: 'First' }), amina, Q, bytes);
  const second = withPhoto(newRecord(amina, { name: 'Second' }), amina, Q, bytes);
  const res = await push(app, amina.token, [first, second]);
  t.match(res.results[0], { id: first.id, status: 'ok' });
  t.match(res.results[1], { id: second.id, status: 'error', code: 'PHOTO_ID_TAKEN' });
});

t.test('H2: a record refused for a squatted photo id is accepted once its user removes the photo and adds the image again (the PHOTO_ID_TAKEN hint)', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const carol = await phoneFor(app, admin, clock, 'carol');
  const bob = await phoneFor(app, admin, clock, 'bob');
  const real = png(20_000, 'carol-real');
  const evil = png(300, 'EVIL');
  const P = randomUUID();
  // This server is the second one: bob pulled carol's record elsewhere and names its photo id here first.
  const carolRec = withPhoto(newRecord(carol, { name: 'child of carol' }), carol, P, real);
  const junk = withPhoto(newRecord(bob, { name: 'junk' }), bob, P, evil);
  await pushOne(app, bob, junk);
  const refused = await push(app, carol.token, [carolRec]);
  t.match(refused.results[0], { id: carolRec.id, status: 'error', code: 'PHOTO_ID_TAKEN', field: 'photos' }, 'the live ref is refused');

  const P2 = randomUUID();
  const remedied = withPhoto(removePhoto(carolRec, P, { by: carol.username, ts: carol.clock.now() }), carol, P2, real);
  const res = await push(app, carol.token, [remedied]);
  t.match(res.results[0], { id: carolRec.id, status: 'ok', changed: true }, 'the record with the photo removed and added again is stored');
  t.same(Object.fromEntries(await app.repo.photoOwners([P, P2])), { [P]: junk.id, [P2]: carolRec.id }, 'the new id is the record\'s, the squatted one stays the junk record\'s');
  t.equal(((await upload(app, carol.token, P2, carolRec.id, real)).json() as PhotoUploadStatus).complete, true, "carol's photo uploads under its new id");
  t.ok((await download(app, bob.token, P2)).rawPayload.equals(real), "carol's bytes are served");
  t.equal((await upload(app, carol.token, P, carolRec.id, real)).json().code, 'PHOTO_NOT_FOUND', 'the removed ref takes no upload');
  t.equal(((await upload(app, bob.token, P, junk.id, evil)).json() as PhotoUploadStatus).complete, true, 'the junk record keeps its id as before');
});

t.test("H2: a refused record's result names its own photo at fault (field photos.<id>), never the record holding the id, in a shape SDKs up to session 17 accept", async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const carol = await phoneFor(app, admin, clock, 'carol');
  const bob = await phoneFor(app, admin, clock, 'bob');
  const P = randomUUID();
  const junk = withPhoto(newRecord(bob, { name: 'junk' }), bob, P, png(300, 'EVIL'));
  await pushOne(app, bob, junk);
  // A fresh photo beside the squatted one: the result must say which of the two to replace.
  const fresh = randomUUID();
  const carolRec = withPhoto(withPhoto(newRecord(carol, { name: 'child of carol' }), carol, fresh, png(1_000, 'fresh')), carol, P, png(2_000, 'real'));
  const refused = await push(app, carol.token, [carolRec]);
  t.same(refused.results[0], { id: carolRec.id, status: 'error', code: 'PHOTO_ID_TAKEN', field: `photos.${P}` }, 'PHOTO_ID_TAKEN names the squatted photo, and nothing else');
  // SDKs up to session 17 refuse a push answer whose results carry any other property (the whole
  // answer: every later sync would fail), so a result never gains one.
  const released = ['id', 'status', 'changed', 'conflicts', 'code', 'field'];
  t.same(Object.keys(refused.results[0] ?? {}).filter((k) => !released.includes(k)), [], 'only the properties released SDKs know');

  const Q = randomUUID();
  const kept = withPhoto(newRecord(carol, { name: 'kept' }), carol, Q, png(1_000, 'kept'));
  await pushOne(app, carol, kept);
  const changed = { ...kept, photos: { ...kept.photos, [Q]: { ...kept.photos[Q]!, size: 999 } } };
  const res = await push(app, carol.token, [changed]);
  t.same(res.results[0], { id: kept.id, status: 'error', code: 'PHOTO_REF_CHANGED', field: `photos.${Q}` }, 'PHOTO_REF_CHANGED names the changed photo');
});

t.test('H2: a removed photo ref binds no id and is refused for none; an id its record owns stays owned once removed', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bob = await phoneFor(app, admin, clock, 'bob');
  const bytes = png(1_000);
  const [P, Q] = [randomUUID(), randomUUID()];
  // Added and removed on the phone before any sync: the server only ever sees the removed ref.
  const gone = removePhoto(withPhoto(newRecord(amina, { name: 'Removed before sync' }), amina, P, bytes), P, { by: amina.username, ts: amina.clock.now() });
  await pushOne(app, amina, gone);
  t.same(Object.fromEntries(await app.repo.photoOwners([P])), {}, 'the removed ref bound nothing');
  const live = withPhoto(newRecord(bob, { name: 'Live' }), bob, P, bytes);
  t.match((await push(app, bob.token, [live])).results[0], { id: live.id, status: 'ok' }, 'a later live ref claims the id');
  t.same(Object.fromEntries(await app.repo.photoOwners([P])), { [P]: live.id });

  const owner = withPhoto(newRecord(amina, { name: 'Owner' }), amina, Q, bytes);
  await pushOne(app, amina, owner);
  await pushOne(app, amina, removePhoto(owner, Q, { by: amina.username, ts: amina.clock.now() }));
  t.same(Object.fromEntries(await app.repo.photoOwners([Q])), { [Q]: owner.id }, 'removing its photo releases nothing');
  const late = withPhoto(newRecord(bob, { name: 'Late' }), bob, Q, bytes);
  t.match((await push(app, bob.token, [late])).results[0], { id: late.id, status: 'error', code: 'PHOTO_ID_TAKEN' }, 'so another live ref to it is still refused');
});

t.test('H2: bytes stored for a record that does not own the id (a squat from before the fix) are not served, and the owner replaces them', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const carol = await phoneFor(app, admin, clock, 'carol');
  const bob = await phoneFor(app, admin, clock, 'bob');
  const real = png(20_000);
  const evil = png(30, 'EVIL');
  const P = randomUUID();
  const carolRec = withPhoto(newRecord(carol, { name: 'child of carol' }), carol, P, real);
  await pushOne(app, carol, carolRec);
  clock.advance(1_000);
  // Written as an earlier server version let it: bob's record and bytes under carol's photo id.
  const bobRec = withPhoto(newRecord(bob, { name: 'child of bob' }), bob, P, evil);
  const now = clock.now();
  await app.repo.modifyRecords([bobRec.id], () => ({ record: bobRec, pushedBy: 'bob', pushedFrom: bob.device.imei, receivedAt: now, firstPushedBy: 'bob', firstReceivedAt: now }));
  t.ok(await app.repo.createPhoto({ photoId: P, recordId: bobRec.id, sha256: sha256(evil), size: evil.byteLength, contentType: 'image/png', uploadedBy: 'bob', uploadedAt: now }, evil));

  t.equal((await download(app, carol.token, P)).json().code, 'PHOTO_NOT_FOUND', "bob's bytes are not served");
  const squat = await upload(app, bob.token, P, bobRec.id, evil);
  t.equal(squat.json().code, 'PHOTO_ID_TAKEN', 'bob cannot upload under an id his record does not own');
  const put = await upload(app, carol.token, P, carolRec.id, real);
  t.equal((put.json() as PhotoUploadStatus).complete, true, 'carol uploads over the squat');
  t.ok((await download(app, bob.token, P)).rawPayload.equals(real), "carol's bytes are served");
});

t.test('L2: a photo download cannot run as a page of the server', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  // A PNG signature followed by HTML passes the magic-byte check (the audit's repro).
  const bytes = Buffer.concat([Buffer.from(MAGIC['image/png']), Buffer.from('<html><script>alert(document.cookie)</script>')]);
  const P = randomUUID();
  const record = withPhoto(newRecord(amina, { name: 'Html' }), amina, P, bytes);
  await pushOne(app, amina, record);
  t.equal((await upload(app, amina.token, P, record.id, bytes)).statusCode, 200);
  const got = await download(app, amina.token, P);
  t.equal(got.statusCode, 200);
  t.equal(got.headers['content-type'], 'image/png');
  t.equal(got.headers['x-content-type-options'], 'nosniff');
  t.equal(got.headers['content-security-policy'], "default-src 'none'; sandbox");
  t.equal(got.headers['content-disposition'], `attachment; filename="${P}.png"`);
});

t.test('L7: another user elsewhere cannot discard a partial upload; the uploader and users of the same phone go on', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bob = await phoneFor(app, admin, clock, 'bob');
  const bytes = png(30_000);
  const P = randomUUID();
  const record = withPhoto(newRecord(amina, { name: 'Partial' }), amina, P, bytes);
  await pushOne(app, amina, record);
  t.equal((await upload(app, amina.token, P, record.id, bytes.subarray(0, 10_000))).json().received, 10_000);

  for (const offset of [10_000, 0]) {
    const wrong = await upload(app, bob.token, P, record.id, randomBytes(20_000), offset);
    t.equal(wrong.statusCode, 409);
    t.equal(wrong.json().code, 'PHOTO_UPLOAD_OWNED', `bob at offset ${offset} is refused`);
  }
  t.equal((await uploadStatus(app, bob.token, P, record.id)).received, 10_000, 'the partial upload is untouched');

  // Another user logged in on amina's phone continues it (a shared phone's sync).
  const password = await createUser(app, admin, 'nuru');
  const { token: nuru } = await login(app, amina.device, { username: 'nuru', password });
  t.equal((await upload(app, nuru, P, record.id, bytes.subarray(10_000, 20_000), 10_000)).json().received, 20_000);
  const done = await upload(app, amina.token, P, record.id, bytes.subarray(20_000), 20_000);
  t.equal((done.json() as PhotoUploadStatus).complete, true);
  t.ok((await download(app, bob.token, P)).rawPayload.equals(bytes));
});

t.test('L7: another user cannot stop a live upload by sending requests for the same photo', async (t) => {
  const spoolDir = join(t.testdir(), 'spool');
  const { app, clock } = await makeApp(t, couch, { photos: { spoolDir } });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bob = await phoneFor(app, admin, clock, 'bob');
  const size = 256 * 1024;
  const bytes = png(size);
  const P = randomUUID();
  const record = withPhoto(newRecord(amina, { name: 'Live upload' }), amina, P, bytes);
  await pushOne(app, amina, record);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;

  // Amina's upload is under way: half its bytes are in (its spool file holds them), the rest to come.
  const half = size / 2;
  const socket = await stalledUpload(port, amina.token, P, record.id, size, bytes.subarray(0, half));
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
  await until(() => spoolFiles(spoolDir), (f) => f.length === 1 && f[0]?.size === half);
  // Bob, who may read the record but did not add the photo, asks to upload it meanwhile.
  const attempts = [0, 0, 0].map(() => upload(app, bob.token, P, record.id, Buffer.alloc(0), 0));
  await new Promise((r) => setTimeout(r, 300)); // time for them to reach the photo's slot
  socket.write(bytes.subarray(half));
  const head = await answer;
  t.match(head, /^HTTP\/1\.1 200 /, `amina's upload was not stopped: ${head.split('\r\n')[0] ?? ''}`);
  for (const res of await Promise.all(attempts)) {
    t.ok(res.statusCode === 200 || res.json().code === 'PHOTO_UPLOAD_OWNED', `bob is answered once amina's upload ended (${res.statusCode})`);
  }
  t.ok((await download(app, bob.token, P)).rawPayload.equals(bytes), 'the photo is stored whole');
});

/** Sends the head and `sent` bytes of a PUT announcing `size`, and holds the connection open. */
function stalledUpload(port: number, token: string, photoId: string, recordId: string, size: number, sent: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `PUT /v1/photos/${photoId}?record=${recordId}&offset=0 HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\n` +
          `content-type: application/octet-stream\r\ncontent-length: ${size}\r\n\r\n`,
      );
      socket.write(sent, () => resolve(socket));
    });
    socket.resume();
    socket.on('error', reject);
  });
}

async function spoolFiles(dir: string): Promise<Array<{ name: string; size: number; mode: number }>> {
  const names = await readdir(dir);
  return Promise.all(names.map(async (name) => {
    const s = await stat(join(dir, name)).catch(() => undefined);
    return { name, size: s?.size ?? 0, mode: (s?.mode ?? 0) & 0o777 };
  }));
}

/** Polls (no deadline but tap's) until `check` holds. */
async function until<T>(read: () => Promise<T>, check: (v: T) => boolean): Promise<T> {
  for (;;) {
    const v = await read();
    if (check(v)) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('M2: stalled uploads go to encrypted 0600 spool files, not memory; a user gets at most the cap at once; cut ones resume', async (t) => {
  const spoolDir = join(t.testdir(), 'spool');
  const { app, clock } = await makeApp(t, couch, { photos: { maxUploadsPerUser: 3, spoolDir } });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const size = 1024 * 1024;
  const sent = 512 * 1024;
  const photos = [0, 1, 2, 3].map((i) => ({ id: randomUUID(), bytes: png(size, `MARKER-${i}-in-clear`) }));
  let record = newRecord(amina, { name: 'Many photos' });
  for (const p of photos) record = withPhoto(record, amina, p.id, p.bytes);
  await pushOne(app, amina, record);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;

  const stalled = photos.slice(0, 3);
  const sockets = await Promise.all(stalled.map((p) => stalledUpload(port, amina.token, p.id, record.id, size, p.bytes.subarray(0, sent))));
  const files = await until(() => spoolFiles(spoolDir), (f) => f.length === 3 && f.every((x) => x.size === sent));
  t.same(files.map((f) => f.mode), [0o600, 0o600, 0o600], 'spool files are 0600');
  t.equal(((await stat(spoolDir)).mode & 0o777), 0o700, 'the spool directory is 0700');
  for (const f of files) {
    const text = (await readFile(join(spoolDir, f.name))).toString('latin1');
    t.notOk(text.includes('-in-clear'), 'the spooled bytes are encrypted');
  }

  const probe = photos[3]!;
  const busy = await upload(app, amina.token, probe.id, record.id, probe.bytes);
  t.equal(busy.statusCode, 429);
  t.equal(busy.json().code, 'PHOTO_UPLOAD_BUSY', 'a fourth upload of the same user is refused');
  t.equal(busy.headers['retry-after'], '5');

  for (const s of sockets) s.destroy();
  await until(() => spoolFiles(spoolDir), (f) => f.length === 0);
  for (const p of stalled) {
    const st = await until(() => uploadStatus(app, amina.token, p.id, record.id), (s) => s.received === sent);
    t.equal(st.received, sent, 'what arrived before the cut was kept');
    const rest = await upload(app, amina.token, p.id, record.id, p.bytes.subarray(sent), sent);
    t.equal((rest.json() as PhotoUploadStatus).complete, true, 'and the upload resumes');
  }
  const later = await upload(app, amina.token, probe.id, record.id, probe.bytes);
  t.equal((later.json() as PhotoUploadStatus).complete, true, 'once the others ended, the fourth goes through');
  const got = await download(app, amina.token, stalled[0]!.id);
  t.ok(got.rawPayload.equals(stalled[0]!.bytes));
});

t.test('M2: the bytes of unfinished uploads one user keeps are capped; complete uploads always go through', async (t) => {
  const { app, clock } = await makeApp(t, couch, { photos: { pendingBytesPerUser: 150_000 } });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const [a, b, c] = [0, 1, 2].map(() => ({ id: randomUUID(), bytes: png(100_000) })) as [{ id: string; bytes: Buffer }, { id: string; bytes: Buffer }, { id: string; bytes: Buffer }];
  let record = newRecord(amina, { name: 'Quota' });
  for (const p of [a, b, c]) record = withPhoto(record, amina, p.id, p.bytes);
  await pushOne(app, amina, record);
  t.equal((await upload(app, amina.token, a.id, record.id, a.bytes.subarray(0, 1_000))).json().received, 1_000);
  const over = await upload(app, amina.token, b.id, record.id, b.bytes.subarray(0, 1_000));
  t.equal(over.statusCode, 429);
  t.equal(over.json().code, 'PHOTO_UPLOAD_QUOTA', 'a second unfinished upload would pass the quota');
  t.equal((await uploadStatus(app, amina.token, b.id, record.id)).received, 0, 'nothing of it was kept');
  t.equal((await upload(app, amina.token, c.id, record.id, c.bytes)).json().complete, true, 'a photo sent whole needs no quota');
  t.equal((await upload(app, amina.token, a.id, record.id, a.bytes.subarray(1_000), 1_000)).json().complete, true);
  t.equal((await upload(app, amina.token, b.id, record.id, b.bytes.subarray(0, 1_000))).json().received, 1_000, 'a finished upload frees the quota');
});
