import { randomUUID } from 'node:crypto';
import t from 'tap';
import { addPhoto, createClock, removePhoto, type ChildRecord, type PhotoRef } from '@fieldvault/protocol';
import { makeApp, setupAdmin, startStore } from './helpers.js';
import { newRecord, phoneFor, pullAll, push, recordDoc, type Phone } from './sync-helpers.js';
import { download, png, sha256, upload, uploadStatus, type App } from './photo-helpers.js';

// Review finding: a pushed ref with another added part (digest, size, type, addedAt, by) for a
// photo the stored record already holds won the merge (the smaller added part is kept), so
// another user could make a photo undownloadable, or show bytes of their own under its author.
const couch = await startStore(t);

/** PNG bytes whose digest sorts before `than`'s: a forged ref with it wins the merge's min. */
function pngSortingBefore(than: string, size: number): Buffer {
  for (;;) {
    const bytes = png(size);
    if (sha256(bytes) < than) return bytes;
  }
}

async function pulled(app: App, phone: Phone, id: string): Promise<ChildRecord> {
  const found = (await pullAll(app, phone.token)).records.find((r) => r.id === id);
  if (found === undefined) throw new Error(`record ${id} not pulled`);
  return found;
}

/** `record` with photo `photoId`'s ref replaced by `ref` (what a forging phone sends). */
function withRef(record: ChildRecord, photoId: string, ref: PhotoRef): ChildRecord {
  return { ...record, photos: { ...record.photos, [photoId]: ref } };
}

t.test("a push that changes the added part of a photo the server holds is refused for that record; the photo stays its author's", async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bob = await phoneFor(app, admin, clock, 'bob');
  clock.advance(60_000);

  const real = png(20_000);
  const partial = png(30_000);
  const P = randomUUID();
  const Q = randomUUID();
  const photo = (bytes: Buffer) => ({ sha256: sha256(bytes), size: bytes.byteLength, type: 'image/png' as const, by: amina.username, ts: amina.clock.now() });
  let R = newRecord(amina, { name: 'child of amina' });
  R = addPhoto(R, P, photo(real));
  R = addPhoto(R, Q, photo(partial));
  const first = await push(app, amina.token, [R]);
  t.match(first.results[0], { id: R.id, status: 'ok', changed: true });
  t.equal((await upload(app, amina.token, P, R.id, real)).json().complete, true, "amina uploads P's bytes");
  t.equal((await upload(app, amina.token, Q, R.id, partial.subarray(0, 10_000))).json().received, 10_000, 'and starts Q');

  const received = await pulled(app, bob, R.id);
  const p = received.photos[P] as PhotoRef;
  const q = received.photos[Q] as PhotoRef;
  const stored = await recordDoc(couch.url, ta, R.id);
  const evil = pngSortingBefore(p.sha256, 5_000);
  // An addedAt before amina's, on amina's own phone (its HLC node), so it wins the merge's min.
  const earlier = createClock({ node: amina.device.imei, now: () => clock.now() - 30_000 }).now();
  t.ok(earlier < p.addedAt, 'the forged addedAt is earlier');
  const forgeries: Array<[string, ChildRecord]> = [
    ['sha256 and size (bytes of bob)', withRef(received, P, { ...p, sha256: sha256(evil), size: evil.byteLength })],
    ['addedAt earlier', withRef(received, P, { ...p, addedAt: earlier })],
    ['by another user (sorting first)', withRef(received, P, { ...p, by: 'aaron' })],
    ['by another user (sorting last)', withRef(received, P, { ...p, by: 'zed' })],
    ['type', withRef(received, P, { ...p, type: 'image/jpeg' })],
    ['the ref of a photo with a partial upload', withRef(received, Q, { ...q, sha256: sha256(evil), size: evil.byteLength })],
  ];
  for (const [what, forged] of forgeries) {
    const other = newRecord(bob, { name: `other child of bob (${what})` });
    const res = await push(app, bob.token, [forged, other]);
    t.match(res.results[0], { id: R.id, status: 'error', code: 'PHOTO_REF_CHANGED', field: 'photos' }, `${what}: the record is refused`);
    t.match(res.results[1], { id: other.id, status: 'ok', changed: true }, `${what}: the rest of the push is stored`);
    t.equal((await recordDoc(couch.url, ta, R.id))._rev, stored._rev, `${what}: the stored record is unchanged`);
  }
  t.same(await pulled(app, amina, R.id), received, 'amina pulls R as she pushed it');
  await upload(app, bob.token, P, R.id, evil); // P is stored whole: nothing bob sends replaces it
  const got = await download(app, amina.token, P);
  t.equal(got.statusCode, 200, 'P is still served');
  t.equal(sha256(got.rawPayload), p.sha256, "and matches its ref's digest");
  t.ok(got.rawPayload.equals(real), "amina's bytes");
  t.equal((await uploadStatus(app, amina.token, Q, R.id)).received, 10_000, "amina's partial upload of Q is kept");
  t.equal((await upload(app, amina.token, Q, R.id, partial.subarray(10_000), 10_000)).json().complete, true, 'and she finishes it');

  const again = await push(app, bob.token, [received]);
  t.match(again.results[0], { id: R.id, status: 'ok', changed: false }, 'R pushed again as received changes nothing');

  // Anyone who may edit the record may remove a photo: only the removal fields change.
  const removed = removePhoto(received, P, { by: bob.username, ts: bob.clock.now() });
  const res = await push(app, bob.token, [removed]);
  t.match(res.results[0], { id: R.id, status: 'ok', changed: true }, "bob's removal of P is stored");
  const after = await pulled(app, amina, R.id);
  t.same(after.photos[P], { ...p, removedAt: removed.photos[P]?.removedAt, removedBy: bob.username }, 'P is removed, its added part kept');
  t.match((await push(app, amina.token, [R])).results[0], { status: 'ok', changed: false }, "amina's copy without the removal still merges");
  const forgedRemoved = withRef(after, P, { ...(after.photos[P] as PhotoRef), addedAt: earlier });
  t.match((await push(app, bob.token, [forgedRemoved])).results[0], { status: 'error', code: 'PHOTO_REF_CHANGED' }, 'a removed photo keeps its added part too');
});

t.test('a new record, or a photo new to a stored record, carries any ref (nothing is held to compare with)', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bob = await phoneFor(app, admin, clock, 'bob');
  const bytes = png(1_000);
  const R = newRecord(amina, { name: 'child' });
  t.match((await push(app, amina.token, [R])).results[0], { status: 'ok', changed: true });
  const received = await pulled(app, bob, R.id);
  const P = randomUUID();
  const withP = addPhoto(received, P, { sha256: sha256(bytes), size: bytes.byteLength, type: 'image/png', by: bob.username, ts: bob.clock.now() });
  t.match((await push(app, bob.token, [withP])).results[0], { status: 'ok', changed: true }, 'bob adds a photo to a record of amina');
  t.equal((await upload(app, bob.token, P, R.id, bytes)).json().complete, true);
  t.match((await push(app, amina.token, [await pulled(app, amina, R.id)])).results[0], { status: 'ok', changed: false });
});
