import { randomUUID } from 'node:crypto';
import t from 'tap';
import { addPhoto, conflictId, openConflicts, removePhoto, resolveConflict, type ChildRecord } from '@fieldvault/protocol';
import { bearer, json, makeApp, setupAdmin, startStore, type TestApp } from './helpers.js';
import { edit, newRecord, phoneFor, pullAll, push as pushAny, type Phone } from './sync-helpers.js';

// Admin audit c-report F3: the server stamps who pushed each record, from which phone and when,
// but nothing showed it. `GET /v1/admin/records/:id` answers that (and the record's state) for an
// admin, without any field value. Real embedded store, records pushed from device sessions.
const couch = await startStore(t);

/** Values that must never appear in the answer (field values and a photo digest). */
const SECRET_NAME = 'Zawadi Mwanaisha-7731';
const SECRET_EDIT = 'Zawadi Mwanaisha-Kombo-4402';
const SECRET_LOCATION = 'Mwembeni-Juu-0093';
const PHOTO_SHA = 'ab'.repeat(32);

async function push(app: TestApp['app'], phone: Phone, records: readonly ChildRecord[]): Promise<void> {
  const res = await pushAny(app, phone.token, records);
  const failed = res.results.filter((r) => r.status === 'error');
  if (failed.length > 0) throw new Error(`push refused: ${JSON.stringify(failed)}`);
}

async function show(ta: TestApp, id: string, token: string | undefined): Promise<{ status: number; text: string; body: Record<string, unknown> }> {
  const res = await ta.app.inject({ method: 'GET', url: `/v1/admin/records/${id}`, headers: token === undefined ? {} : bearer(token) });
  return { status: res.statusCode, text: res.body, body: json(res) };
}

const ta = await makeApp(t, couch);
const admin = (await setupAdmin(ta.app)).token;
const amina = await phoneFor(ta.app, admin, ta.clock, 'amina');
const baraka = await phoneFor(ta.app, admin, ta.clock, 'baraka');
const sam = await phoneFor(ta.app, admin, ta.clock, 'sam', 'supervisor');

t.test('who pushed a record, from which phone and when, its history and conflicts: never its values', async (t) => {
  const t0 = ta.clock.now();
  let made = newRecord(amina, { name: SECRET_NAME, location: SECRET_LOCATION, age: 7 });
  made = addPhoto(made, randomUUID(), { sha256: PHOTO_SHA, size: 1234, type: 'image/jpeg', by: 'amina', ts: amina.clock.now() });
  await push(ta.app, amina, [made]);

  let res = await show(ta, made.id, admin);
  t.equal(res.status, 200, res.text);
  t.same(res.body, {
    record: {
      id: made.id,
      deleted: false,
      createdBy: 'amina',
      createdAt: made.createdAt,
      createdFrom: amina.device.imei,
      versions: 3,
      firstVersion: { ts: made.createdAt, by: 'amina', device: amina.device.imei },
      lastVersion: { ts: made.createdAt, by: 'amina', device: amina.device.imei },
      pushedBy: 'amina',
      pushedFrom: amina.device.imei,
      receivedAt: new Date(t0).toISOString(),
      firstPushedBy: 'amina',
      firstReceivedAt: new Date(t0).toISOString(),
      needsReview: false,
      openConflicts: 0,
      resolvedConflicts: 0,
      photos: 1,
      photosRemoved: 0,
    },
  });

  // Both edit `age` from the copy amina pushed, neither seeing the other's edit: a conflict.
  // baraka, on his own phone, also renames the child.
  ta.clock.advance(60_000);
  const byAmina = edit(amina, made, 'age', 9);
  ta.clock.advance(1_000);
  const byBaraka = edit(baraka, edit(baraka, made, 'age', 8), 'name', SECRET_EDIT);
  await push(ta.app, amina, [byAmina]);
  ta.clock.advance(120_000);
  const t2 = ta.clock.now();
  await push(ta.app, baraka, [byBaraka]);

  const stored = (await pullAll(ta.app, admin)).records.find((r) => r.id === made.id) as ChildRecord;
  const open = openConflicts(stored);
  t.equal(open.length, 1, 'the pulled record holds one open conflict');
  res = await show(ta, made.id, admin);
  t.equal(res.status, 200, res.text);
  const last = stored.history[stored.history.length - 1]!;
  t.same(last.by, 'baraka', 'the newest version is baraka\'s rename');
  t.match(res.body['record'], {
    versions: 6,
    firstVersion: { ts: made.createdAt, by: 'amina', device: amina.device.imei },
    lastVersion: { ts: last.ts, by: 'baraka', device: baraka.device.imei },
    pushedBy: 'baraka',
    pushedFrom: baraka.device.imei,
    receivedAt: new Date(t2).toISOString(),
    firstPushedBy: 'amina',
    firstReceivedAt: new Date(t0).toISOString(),
    needsReview: true,
    openConflicts: 1,
    resolvedConflicts: 0,
  });
  t.equal(stored.history.length, 6);

  // sam (a supervisor) resolves it on his phone: the last push is his, the first stays amina's.
  ta.clock.advance(30_000);
  const t3 = ta.clock.now();
  await push(ta.app, sam, [resolveConflict(stored, conflictId(open[0]!), { by: 'sam', device: sam.device.imei, ts: sam.clock.now() })]);
  res = await show(ta, made.id, admin);
  t.match(res.body['record'], {
    versions: 6,
    pushedBy: 'sam',
    pushedFrom: sam.device.imei,
    receivedAt: new Date(t3).toISOString(),
    firstPushedBy: 'amina',
    firstReceivedAt: new Date(t0).toISOString(),
    needsReview: false,
    openConflicts: 0,
    resolvedConflicts: 1,
  });

  // amina's phone sending its old copy again changes nothing, so the last push stays sam's.
  ta.clock.advance(30_000);
  await push(ta.app, amina, [made]);
  res = await show(ta, made.id, admin);
  t.match(res.body['record'], { pushedBy: 'sam', pushedFrom: sam.device.imei, receivedAt: new Date(t3).toISOString() }, 'a push that changed nothing is not the last push');

  for (const secret of [SECRET_NAME, SECRET_EDIT, SECRET_LOCATION, PHOTO_SHA, '"location"', '"value"', '"fields"']) {
    t.notMatch(res.text, secret, `the answer does not hold ${secret}`);
  }
});

t.test('a deleted record with a removed photo says so', async (t) => {
  const photoId = randomUUID();
  let rec = addPhoto(newRecord(amina, { name: 'Tumaini' }), photoId, { sha256: 'cd'.repeat(32), size: 99, type: 'image/png', by: 'amina', ts: amina.clock.now() });
  ta.clock.advance(1_000);
  rec = removePhoto(rec, photoId, { by: 'amina', ts: amina.clock.now() });
  rec = edit(amina, rec, '_deleted', true);
  await push(ta.app, amina, [rec]);
  const res = await show(ta, rec.id, admin);
  t.equal(res.status, 200, res.text);
  t.match(res.body['record'], { deleted: true, versions: 2, photos: 1, photosRemoved: 1, lastVersion: { by: 'amina' } });
});

t.test('an unknown record id is not found; a malformed one is refused as an id', async (t) => {
  const unknown = await show(ta, randomUUID(), admin);
  t.equal(unknown.status, 404);
  t.equal(unknown.body['code'], 'RECORD_NOT_FOUND');
  for (const bad of ['not-a-record', randomUUID().toUpperCase(), '0'.repeat(36), `${randomUUID()}x`]) {
    const res = await show(ta, encodeURIComponent(bad), admin);
    t.equal(res.status, 400, bad);
    t.equal(res.body['code'], 'INPUT_ID_INVALID', bad);
  }
});

t.test('only admins may ask: field workers and supervisors are refused, no session is refused', async (t) => {
  const rec = newRecord(amina, { name: 'Neema' });
  await push(ta.app, amina, [rec]);
  for (const [who, phone] of [
    ['field worker (its creator)', amina],
    ['supervisor', sam],
  ] as const) {
    const res = await show(ta, rec.id, phone.token);
    t.equal(res.status, 403, who);
    t.equal(res.body['code'], 'AUTH_FORBIDDEN', who);
    t.notMatch(res.text, 'amina', `${who}: nothing about the record`);
  }
  const anonymous = await show(ta, rec.id, undefined);
  t.equal(anonymous.status, 401);
  // The digest routes are still theirs, not taken for record ids.
  const digest = await show(ta, 'digest', admin);
  t.equal(digest.status, 200);
  t.ok('digest' in digest.body);
});
