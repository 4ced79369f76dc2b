import { randomUUID } from 'node:crypto';
import t from 'tap';
import { conflictId, createClock, isDeleted, mergeRecords, needsReview, openConflicts, resolveConflict, type ChildRecord, type PushResponse } from '@fieldvault/protocol';
import { bearer, json, makeApp, setupAdmin, startStore } from './helpers.js';
import { edit, newRecord, phoneFor, pull, pullAll, push, pushRaw, recordDoc } from './sync-helpers.js';

// Issue 5 item 1: POST /v1/sync/push — per-record results, idempotent, merged, rights from the session.
const couch = await startStore(t);

t.test('new records are stored with pushedBy and receivedAt from the session', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const a = newRecord(amina, { name: 'Amina Yusuf', age: 7 });
  const b = newRecord(amina, { name: 'Omar Yusuf', age: 9, flagged: true });
  const res = await push(app, amina.token, [a, b]);
  t.same(res.results, [
    { id: a.id, status: 'ok', changed: true, conflicts: 0 },
    { id: b.id, status: 'ok', changed: true, conflicts: 0 },
  ]);
  t.equal(res.deviceStatus, 'active');
  const doc = await recordDoc(couch.url, ta, a.id);
  t.equal(doc['pushedBy'], 'amina');
  t.equal(doc['pushedFrom'], amina.device.imei);
  t.equal(doc['receivedAt'], clock.now());
  t.same(doc['record'], a, 'the record itself is stored exactly, server data beside it');
  const pulled = await pullAll(app, amina.token);
  t.same(pulled.records.map((r) => r.id).sort(), [a.id, b.id].sort());
});

t.test('records made offline before the user was verified are accepted as theirs', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  // Flow 1: three days offline (unverified) on this phone, then the first online login.
  const offlineClock = createClock({ node: amina.device.imei, now: () => clock.now() - 3 * 86_400_000 });
  const offline = newRecord({ ...amina, clock: offlineClock }, { name: 'Registered offline' });
  const res = await push(app, amina.token, [offline]);
  t.equal(res.results[0]?.status, 'ok');
  const doc = await recordDoc(couch.url, ta, offline.id);
  t.same([(doc['record'] as ChildRecord).createdBy, doc['pushedBy'], doc['firstPushedBy']], ['amina', 'amina', 'amina']);
});

t.test('pushing the same batch twice changes nothing (same CouchDB revision)', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const batch = [newRecord(amina, { name: 'A' }), newRecord(amina, { name: 'B' })];
  await push(app, amina.token, batch);
  const before = await Promise.all(batch.map((r) => recordDoc(couch.url, ta, r.id)));
  clock.advance(60_000);
  const again = await push(app, amina.token, batch);
  t.same(again.results.map((r) => [r.status, r.changed]), [['ok', false], ['ok', false]]);
  const after = await Promise.all(batch.map((r) => recordDoc(couch.url, ta, r.id)));
  t.same(after.map((d) => d._rev), before.map((d) => d._rev), 'no new revision');
  t.same(after.map((d) => d['receivedAt']), before.map((d) => d['receivedAt']), 'no new receivedAt');
});

t.test('concurrent edits from two phones merge, keep both values and flag the record', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const original = newRecord(amina, { name: 'Amina', location: 'Gulu' });
  await push(app, amina.token, [original]);
  const [seen] = (await pull(app, bilal.token)).records as [ChildRecord];
  clock.advance(1_000);
  const onA = edit(amina, original, 'location', 'Kitgum');
  clock.advance(1_000);
  const onB = edit(bilal, seen, 'location', 'Lira');
  // Both phones push at the same moment: the `_rev` race makes one retry, and both edits merge.
  const [ra, rb] = await Promise.all([push(app, amina.token, [onA]), push(app, bilal.token, [onB])]);
  t.equal(ra.results[0]?.status, 'ok');
  t.equal(rb.results[0]?.status, 'ok');
  const [merged] = (await pull(app, amina.token)).records as [ChildRecord];
  t.equal(merged.fields['location']?.value, 'Lira', 'newest edit wins');
  t.same(merged.history.filter((v) => v.field === 'location').map((v) => v.value).sort(), ['Gulu', 'Kitgum', 'Lira'], 'no value lost');
  t.ok(needsReview(merged), 'flagged for review');
  t.same(openConflicts(merged).map((c) => c.field), ['location']);
  const again = await push(app, amina.token, [onA]);
  t.same(again.results[0], { id: original.id, status: 'ok', changed: false, conflicts: 1 }, 'the result counts open conflicts');
});

t.test('many phones pushing the same record at once all merge', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const phones = await Promise.all(['p1', 'p2', 'p3', 'p4', 'p5'].map((u) => phoneFor(app, admin, clock, u)));
  const base = newRecord(phones[0]!, { name: 'Shared' });
  await push(app, phones[0]!.token, [base]);
  const edits = phones.map((p, i) => edit(p, base, `notes`, `note from ${p.username} ${i}`));
  const results = await Promise.all(phones.map((p, i) => push(app, p.token, [edits[i]!])));
  t.ok(results.every((r) => r.results[0]?.status === 'ok'));
  const [merged] = (await pull(app, phones[0]!.token)).records as [ChildRecord];
  t.equal(merged.history.filter((v) => v.field === 'notes').length, 5, 'every edit is in the history');
});

t.test('one bad record in a batch fails alone with its code', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const good1 = newRecord(amina, { name: 'Good one' });
  const good2 = newRecord(amina, { name: 'Good two' });
  const noName = newRecord(amina, { age: 4 });
  const badAge = newRecord(amina, { name: 'Old', age: 300 });
  const unknownField = newRecord(amina, { name: 'X', favourite_colour: 'blue' });
  const hugeValue = { ...newRecord(amina, { name: 'Y' }) };
  hugeValue.fields = { ...hugeValue.fields, name: { ...hugeValue.fields['name']!, value: 'x'.repeat(10_001) } };
  const badId = { ...newRecord(amina, { name: 'Z' }), id: 'nope' };
  const res = await push(app, amina.token, [good1, noName, 'not a record', badAge, badId, unknownField, hugeValue, good2]);
  const summary = res.results.map((r) => [r.id, r.status, r.code ?? null, r.field ?? null]);
  t.same(summary, [
    [good1.id, 'ok', null, null],
    [noName.id, 'error', 'RECORD_INVALID', 'name'],
    [null, 'error', 'RECORD_INVALID', '(root)'],
    [badAge.id, 'error', 'RECORD_INVALID', 'age'],
    [null, 'error', 'RECORD_INVALID', 'id'],
    [unknownField.id, 'error', 'RECORD_INVALID', 'favourite_colour'],
    [hugeValue.id, 'error', 'RECORD_TOO_LARGE', 'fields.name.value'],
    [good2.id, 'ok', null, null],
  ]);
  const stored = (await pullAll(app, amina.token)).records.map((r) => r.id).sort();
  t.same(stored, [good1.id, good2.id].sort(), 'only the good records are stored');
});

t.test('a batch over the record or byte limit is refused as a whole', async (t) => {
  const ta = await makeApp(t, couch, { sync: { pushMaxRecords: 3, pushMaxBytes: 4_096 } });
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const tooMany = await pushRaw(app, amina.token, [1, 2, 3, 4].map((i) => newRecord(amina, { name: `R${i}` })));
  t.equal(tooMany.statusCode, 413);
  t.equal(json(tooMany)['code'], 'INPUT_TOO_LARGE');
  const tooBig = await pushRaw(app, amina.token, [newRecord(amina, { name: 'Big', notes: 'n'.repeat(5_000) })]);
  t.equal(tooBig.statusCode, 413);
  t.equal(json(tooBig)['code'], 'INPUT_TOO_LARGE');
  t.same((await pullAll(app, amina.token)).records, [], 'nothing stored');
});

t.test('server fields, CouchDB fields and design/local ids are refused per record', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const ok = newRecord(amina, { name: 'Fine' });
  const withPushedBy = { ...newRecord(amina, { name: 'P' }), pushedBy: 'admin' };
  const withReceivedAt = { ...newRecord(amina, { name: 'R' }), receivedAt: 1 };
  const withSeq = { ...newRecord(amina, { name: 'S' }), seq: '99' };
  const withId = { ...newRecord(amina, { name: 'I' }), _id: '_design/fieldvault' };
  const withRev = { ...newRecord(amina, { name: 'V' }), _rev: '1-abc' };
  const designId = { ...newRecord(amina, { name: 'D' }), id: '_design/fieldvault' };
  const localId = { ...newRecord(amina, { name: 'L' }), id: '_local/x' };
  const res = await push(app, amina.token, [ok, withPushedBy, withReceivedAt, withSeq, withId, withRev, designId, localId]);
  t.same(
    res.results.map((r) => [r.status, r.code ?? null, r.field ?? null]),
    [
      ['ok', null, null],
      ['error', 'RECORD_FIELD_FORBIDDEN', 'pushedBy'],
      ['error', 'RECORD_FIELD_FORBIDDEN', 'receivedAt'],
      ['error', 'RECORD_FIELD_FORBIDDEN', 'seq'],
      ['error', 'RECORD_FIELD_FORBIDDEN', '_id'],
      ['error', 'RECORD_FIELD_FORBIDDEN', '_rev'],
      ['error', 'RECORD_INVALID', 'id'],
      ['error', 'RECORD_INVALID', 'id'],
    ],
  );
  t.equal(res.results[6]?.id, null, 'a design id is never echoed');
  const pulled = await pullAll(app, amina.token);
  t.same(pulled.records.map((r) => r.id), [ok.id], 'the design document never reaches a phone either');
});

t.test('a field worker relays a new record created by another user (issue 5: records from A reach B through the phone), attributed to the pusher', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  // Created by bilal on his phone (or by a user another server knows), carried here by amina's phone.
  const bilals = newRecord(bilal, { name: 'Registered by Bilal' });
  const byOther = newRecord(amina, { name: 'Created by a user of another server' }, { createdBy: 'zainab' });
  const res = await push(app, amina.token, [bilals, byOther]);
  t.same(res.results.map((r) => [r.id, r.status]), [[bilals.id, 'ok'], [byOther.id, 'ok']]);
  for (const rec of [bilals, byOther]) {
    const doc = await recordDoc(couch.url, ta, rec.id);
    t.same(doc['record'], rec, 'stored exactly as created, authorship claim unchanged');
    t.same([doc['firstPushedBy'], doc['pushedBy'], doc['pushedFrom']], ['amina', 'amina', amina.device.imei], 'who brought it in is stamped from the session');
  }
  // The creator syncs it later: nothing changes, and the first pusher stays on record.
  t.same((await push(app, bilal.token, [bilals])).results[0], { id: bilals.id, status: 'ok', changed: false, conflicts: 0 });
  t.equal((await recordDoc(couch.url, ta, bilals.id))['firstPushedBy'], 'amina');
});

t.test('issue 5: a field worker relays a foreign record already deleted by someone who may delete it, but never deletes it themselves', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const carla = await phoneFor(app, admin, clock, 'carla');
  const sam = await phoneFor(app, admin, clock, 'sam', 'supervisor');

  // Deleted by its creator on another server; amina's phone pulled it there and relays it here.
  const deletedByCreator = edit(bilal, newRecord(bilal, { name: 'Deleted by its creator elsewhere' }), '_deleted', true);
  t.match((await push(app, amina.token, [deletedByCreator])).results[0], { status: 'ok', changed: true }, 'a new record deleted by its creator is relayed');
  t.same((await push(app, amina.token, [deletedByCreator])).results[0], { id: deletedByCreator.id, status: 'ok', changed: false, conflicts: 0 }, 'relaying it again changes nothing');

  // On this server already; a supervisor deleted it on another server; amina relays the tombstone.
  const onServer = newRecord(bilal, { name: 'Deleted by a supervisor elsewhere' });
  await push(app, bilal.token, [onServer]);
  clock.advance(1_000);
  const deletedBySupervisor = edit(sam, onServer, '_deleted', true);
  t.match((await push(app, amina.token, [deletedBySupervisor])).results[0], { status: 'ok', changed: true }, 'a tombstone made by a supervisor is relayed');
  const [stored] = (await pull(app, bilal.token)).records.filter((r) => r.id === onServer.id) as [ChildRecord];
  t.ok(isDeleted(stored), 'and the record is deleted here too');
  const audit = await app.inject({ method: 'GET', url: '/v1/audit?event=sync.push&username=amina&limit=50', headers: bearer(admin) });
  const relayed = (audit.json() as { events: Array<{ details: Record<string, unknown> }> }).events.map((e) => e.details['relayedDeletions']);
  t.same(relayed.sort(), [0, 1, 1], 'each relayed deletion is counted in the audit log, attributed to the pusher');

  // Not a relay: amina's own deletion is refused; one by a field worker who is not the creator (or
  // by anyone this server does not know as a supervisor) is left out, and the record stays live.
  const other = newRecord(bilal, { name: 'Not to be deleted by others' });
  await push(app, bilal.token, [other]);
  clock.advance(1_000);
  const own = (await push(app, amina.token, [edit(amina, other, '_deleted', true)])).results[0];
  t.same([own?.status, own?.code, own?.field], ['error', 'RECORD_FORBIDDEN', '_deleted'], 'the pusher deleting it');
  const byCarla = (await push(app, amina.token, [edit(carla, other, '_deleted', true)])).results[0];
  t.same(byCarla, { id: other.id, status: 'ok', changed: false, conflicts: 0 }, 'another field worker deleting it: not applied, not refused');
  const byStranger = edit(carla, newRecord(bilal, { name: 'New, deleted by a stranger' }), '_deleted', true);
  t.match((await push(app, amina.token, [byStranger])).results[0], { status: 'ok', changed: true }, 'a new record deleted by someone who may not: stored without the deletion');
  const pulled = (await pull(app, bilal.token)).records;
  const [unchanged] = pulled.filter((r) => r.id === other.id) as [ChildRecord];
  t.notOk(isDeleted(unchanged), 'the deletions not allowed changed nothing');
  const [strangers] = pulled.filter((r) => r.id === byStranger.id) as [ChildRecord];
  t.notOk(isDeleted(strangers), 'and the new record is live here');
  t.notOk(strangers.history.some((v) => v.field === '_deleted'), 'without the deletion in its history');
});

t.test('a field worker cannot bring in a record of someone else that is already resolved', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const base = newRecord(bilal, { name: 'Resolved elsewhere' });
  const x = edit(amina, base, 'age', 5);
  const y = edit(bilal, base, 'age', 6);
  const merged = mergeRecords(x, y);
  const conflict = openConflicts(merged)[0];
  t.ok(conflict, 'a conflict');
  // Resolved by amina herself (a field worker): not a relay of a supervisor's resolution.
  const resolved = resolveConflict(merged, conflictId(conflict!), { by: amina.username, device: amina.device.imei, ts: amina.clock.now() });
  const refused = (await push(app, amina.token, [resolved])).results[0];
  t.same([refused?.status, refused?.code, refused?.field], ['error', 'RECORD_FORBIDDEN', 'resolved']);
});

t.test('field workers edit what they read but only supervisors delete others\' records or resolve conflicts', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const sam = await phoneFor(app, admin, clock, 'sam', 'supervisor');
  const aminas = newRecord(amina, { name: 'Child of Amina' });
  const bilals = newRecord(bilal, { name: 'Child of Bilal' });
  await push(app, amina.token, [aminas]);
  await push(app, bilal.token, [bilals]);

  clock.advance(1_000);
  const renamed = edit(bilal, aminas, 'name', 'Renamed by Bilal');
  t.same((await push(app, bilal.token, [renamed])).results[0]?.status, 'ok', 'a field worker edits a record they can read');

  const deletedByBilal = edit(bilal, renamed, '_deleted', true);
  const refused = (await push(app, bilal.token, [deletedByBilal])).results[0];
  t.same([refused?.code, refused?.field], ['RECORD_FORBIDDEN', '_deleted'], 'but does not delete it');
  t.equal((await push(app, bilal.token, [edit(bilal, bilals, '_deleted', true)])).results[0]?.status, 'ok', 'their own record they may delete');

  // A conflict, then resolution.
  clock.advance(1_000);
  const x = edit(amina, renamed, 'age', 5);
  const y = edit(bilal, renamed, 'age', 6);
  await push(app, amina.token, [x]);
  await push(app, bilal.token, [y]);
  const [current] = (await pull(app, amina.token)).records.filter((r) => r.id === aminas.id) as [ChildRecord];
  const conflict = openConflicts(current)[0];
  t.ok(conflict, 'a conflict to resolve');
  const byAmina = resolveConflict(current, conflictId(conflict!), { by: amina.username, device: amina.device.imei, ts: amina.clock.now() });
  const byWorker = (await push(app, amina.token, [byAmina])).results[0];
  t.same([byWorker?.code, byWorker?.field], ['RECORD_FORBIDDEN', 'resolved'], 'field workers do not resolve conflicts');
  const resolved = resolveConflict(current, conflictId(conflict!), { by: sam.username, device: sam.device.imei, ts: sam.clock.now() });
  t.same((await push(app, sam.token, [resolved])).results[0], { id: aminas.id, status: 'ok', changed: true, conflicts: 0 }, 'supervisors do');
  const samDeletes = edit(sam, resolved, '_deleted', true);
  t.equal((await push(app, sam.token, [samDeletes])).results[0]?.status, 'ok', "supervisors delete others' records");
  const [final] = (await pull(app, amina.token)).records.filter((r) => r.id === aminas.id) as [ChildRecord];
  t.ok(isDeleted(final));
});

t.test('nobody takes over a record by forging an older creation', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const sam = await phoneFor(app, admin, clock, 'sam', 'supervisor');
  const rec = newRecord(amina, { name: 'Mine' });
  await push(app, amina.token, [rec]);
  const forged: ChildRecord = { ...rec, createdBy: 'bilal', createdAt: `${String(clock.now() - 10_000).padStart(13, '0')}-0000-${bilal.device.imei}` };
  for (const who of [bilal, sam]) {
    const res = (await push(app, who.token, [forged])).results[0];
    t.same([res?.code, res?.field], ['RECORD_CREATOR_MISMATCH', 'createdBy'], who.username);
  }
  // Protocol audit s15 (M4): a creation the merge would drop (newer, or only another name or
  // device) was answered `ok` and silently ignored; every difference is refused now, naming it.
  const newer = `${String(clock.now() + 10_000).padStart(13, '0')}-0000-${amina.device.imei}`;
  const variants: [string, ChildRecord][] = [
    ['createdBy', { ...rec, createdBy: 'bilal' }],
    ['createdAt', { ...rec, createdAt: newer }],
    ['device', { ...rec, device: bilal.device.imei }],
  ];
  for (const [field, copy] of variants) {
    const res = (await push(app, amina.token, [copy])).results[0];
    t.same([res?.code, res?.field], ['RECORD_CREATOR_MISMATCH', field], `another ${field} is refused`);
  }
  const [stored] = (await pull(app, amina.token)).records as [ChildRecord];
  t.same([stored.createdBy, stored.createdAt, stored.device], [rec.createdBy, rec.createdAt, rec.device], 'the stored creation is unchanged');
  t.same((await push(app, amina.token, [rec])).results[0], { id: rec.id, status: 'ok', changed: false, conflicts: 0 }, 'the true copy is still taken');
});

t.test('versions dated far in the future are refused until the phone clock is fixed', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  clock.advance(3_600_000);
  const fromTheFuture = newRecord(amina, { name: 'Later' });
  clock.advance(-3_600_000);
  const res = await push(app, amina.token, [fromTheFuture]);
  t.equal(res.results[0]?.code, 'HLC_TOO_FAR_AHEAD');
});

t.test('copies of one record in one batch are merged, each gets the result', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const v1 = newRecord(amina, { name: 'One' });
  const v2 = edit(amina, v1, 'age', 3);
  const res = await push(app, amina.token, [v1, v2]);
  t.same(res.results.map((r) => [r.id, r.status]), [[v1.id, 'ok'], [v1.id, 'ok']]);
  const [stored] = (await pull(app, amina.token)).records as [ChildRecord];
  t.equal(stored.fields['age']?.value, 3);
});

t.test('a retired device syncs one last time and is told so; a blacklisted one is refused', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  await app.inject({ method: 'POST', url: `/v1/devices/${amina.device.imei}/retire`, headers: bearer(admin), payload: {} });
  const res = await push(app, amina.token, [newRecord(amina, { name: 'Last' })]);
  t.equal(res.results[0]?.status, 'ok');
  t.equal(res.deviceStatus, 'retired');
  t.equal((await pull(app, amina.token)).deviceStatus, 'retired');
  await app.inject({ method: 'POST', url: `/v1/devices/${bilal.device.imei}/blacklist`, headers: bearer(admin), payload: {} });
  const refused = await pushRaw(app, bilal.token, [newRecord(bilal, { name: 'Stolen' })]);
  t.equal(json(refused)['code'], 'DEVICE_BLACKLISTED');
  const refusedPull = await app.inject({ method: 'GET', url: '/v1/sync/pull', headers: bearer(bilal.token) });
  t.equal(json(refusedPull)['code'], 'DEVICE_BLACKLISTED');
});

t.test('each push and pull is audited with counts only, and the device shows its last sync', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  clock.advance(30_000);
  const secret = `Secret name ${randomUUID()}`;
  await push(app, amina.token, [newRecord(amina, { name: secret }), newRecord(amina, { name: 'Other' }), { id: 'bad' }]);
  await pullAll(app, amina.token);
  const audit = await app.inject({ method: 'GET', url: `/v1/audit?imei=${amina.device.imei}`, headers: bearer(admin) });
  const events = json(audit)['events'] as Array<{ event: string; username: string; details: Record<string, unknown> }>;
  const pushed = events.find((e) => e.event === 'sync.push');
  t.match(pushed, { username: 'amina', details: { records: 3, ok: 2, changed: 2, failed: 1, conflicts: 0, failedCodes: 'RECORD_INVALID:1' } });
  const pulled = events.find((e) => e.event === 'sync.pull');
  t.match(pulled, { username: 'amina', details: { records: 2, more: false } });
  t.notOk(audit.body.includes(secret), 'no record content in the audit log');
  const device = json(await app.inject({ method: 'GET', url: `/v1/devices/${amina.device.imei}`, headers: bearer(admin) }))['device'] as Record<string, unknown>;
  t.equal(device['lastSyncAt'], new Date(clock.now()).toISOString());
  t.equal(device['lastSeenAt'], new Date(clock.now()).toISOString());
});

t.test('the unacknowledged hint: a record the server holds is merged, never overwritten; a bad index is refused', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const original = newRecord(amina, { name: 'Amina', location: 'Gulu' });
  await push(app, amina.token, [original]);
  const firstDoc = await recordDoc(couch.url, ta, original.id);
  clock.advance(1_000);
  // Bilal's phone got the record elsewhere and names it as never acknowledged by this server: wrong.
  const onB = edit(bilal, original, 'location', 'Lira');
  const fresh = newRecord(bilal, { name: 'New on B' });
  const hinted = (records: readonly unknown[], unacknowledged: readonly number[]) =>
    app.inject({ method: 'POST', url: '/v1/sync/push', headers: bearer(bilal.token), payload: { records, unacknowledged } });
  const res = json(await hinted([onB, fresh], [0, 1]));
  t.same(res['results'], [
    { id: original.id, status: 'ok', changed: true, conflicts: 0 },
    { id: fresh.id, status: 'ok', changed: true, conflicts: 0 },
  ]);
  const doc = await recordDoc(couch.url, ta, original.id);
  const stored = doc['record'] as ChildRecord;
  t.same(stored, mergeRecords(original, onB), 'merged with the stored copy');
  t.same([doc['firstPushedBy'], doc['firstReceivedAt'], doc['pushedBy']], ['amina', firstDoc['firstReceivedAt'], 'bilal'], 'first push kept');
  const again = json(await hinted([onB], [0]))['results'] as PushResponse['results'];
  t.same(again[0], { id: original.id, status: 'ok', changed: false, conflicts: 0 }, 'idempotent with the hint');
  const revBefore = (await recordDoc(couch.url, ta, original.id))._rev;

  for (const unacknowledged of [[1], [0, 5], [-1]]) {
    const refused = await hinted([edit(bilal, onB, 'age', 4)], unacknowledged);
    t.equal(refused.statusCode, 400, JSON.stringify(unacknowledged));
    t.equal(json(refused)['code'], 'INPUT_INVALID');
    t.match(json(refused)['message'], /unacknowledged/, 'the message names the field');
  }
  t.equal((await recordDoc(couch.url, ta, original.id))._rev, revBefore, 'a refused push stores nothing');
});

t.test('the unacknowledged hint: a record refused as new but allowed as an edit of the stored copy is accepted', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const sam = await phoneFor(app, admin, clock, 'sam', 'supervisor');
  const rec = newRecord(amina, { name: 'Deleted by a supervisor' });
  await push(app, amina.token, [rec]);
  clock.advance(1_000);
  t.equal((await push(app, sam.token, [edit(sam, rec, '_deleted', true)])).results[0]?.status, 'ok');
  const demoted = await app.inject({ method: 'PATCH', url: '/v1/users/sam', headers: bearer(admin), payload: { role: 'field_worker' } });
  t.equal(demoted.statusCode, 200);
  // As a new record, sam's deletion would be bilal's relay of a non-supervisor's deletion (left out);
  // against the stored copy it adds nothing, so bilal's edit of the deleted record is fine.
  const [seen] = (await pull(app, bilal.token)).records.filter((r) => r.id === rec.id) as [ChildRecord];
  clock.advance(1_000);
  const onB = edit(bilal, seen, 'age', 6);
  const res = await app.inject({ method: 'POST', url: '/v1/sync/push', headers: bearer(bilal.token), payload: { records: [onB], unacknowledged: [0] } });
  t.same((json(res)['results'] as PushResponse['results'])[0], { id: rec.id, status: 'ok', changed: true, conflicts: 0 });
  const [stored] = (await pull(app, amina.token)).records.filter((r) => r.id === rec.id) as [ChildRecord];
  t.ok(isDeleted(stored));
  t.equal(stored.fields['age']?.value, 6);
});
