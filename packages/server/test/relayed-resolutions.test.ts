// Issue 5: relayed conflict resolutions. A supervisor resolves a conflict on another server (or
// on their phone, pushed there); a field worker's phone pulled the record there and pushes it
// here. Each resolution names its author, so this server accepts it as a relay when the author is
// a supervisor or admin it knows, still refuses a field worker's own, and leaves out (without
// refusing the record) one it cannot attribute: forged, or by another server's supervisor.
import t, { type Test } from 'tap';
import { conflictId, mergeRecords, needsReview, openConflicts, resolveConflict, type ChildRecord } from '@fieldvault/protocol';
import { bearer, makeApp, setupAdmin, startStore, type TestApp } from './helpers.js';
import { edit, newRecord, phoneFor, pull, push, recordDoc, type Phone } from './sync-helpers.js';

const couch = await startStore(t);

interface World {
  readonly ta: TestApp;
  readonly admin: string;
  readonly amina: Phone;
  readonly bilal: Phone;
  readonly carla: Phone;
  readonly sam: Phone;
}

async function world(t: Test): Promise<World> {
  const ta = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(ta.app);
  const [amina, bilal, carla, sam] = [
    await phoneFor(ta.app, admin, ta.clock, 'amina'),
    await phoneFor(ta.app, admin, ta.clock, 'bilal'),
    await phoneFor(ta.app, admin, ta.clock, 'carla'),
    await phoneFor(ta.app, admin, ta.clock, 'sam', 'supervisor'),
  ];
  return { ta, admin, amina, bilal, carla, sam };
}

/** A record of bilal's with a concurrent edit of `age` (amina vs bilal), as this server stores it. */
async function conflictedOnServer(w: World, name: string): Promise<{ stored: ChildRecord; id: string }> {
  const base = newRecord(w.bilal, { name });
  await push(w.ta.app, w.bilal.token, [base]);
  w.ta.clock.advance(1_000);
  await push(w.ta.app, w.amina.token, [edit(w.amina, base, 'age', 5)]);
  await push(w.ta.app, w.bilal.token, [edit(w.bilal, base, 'age', 6)]);
  const stored = (await pull(w.ta.app, w.bilal.token)).records.find((r) => r.id === base.id) as ChildRecord;
  const conflict = openConflicts(stored)[0];
  if (conflict === undefined) throw new Error('fixture: expected a conflict');
  return { stored, id: conflictId(conflict) };
}

/** `record` with conflict `id` resolved on `phone` (by its user, on its device, at its clock). */
function resolvedOn(phone: Phone, record: ChildRecord, id: string): ChildRecord {
  return resolveConflict(record, id, { by: phone.username, device: phone.device.imei, ts: phone.clock.now() });
}

/** `record` with conflict `id` resolved in the name of `by` (a forgery when `by` never resolved it). */
function resolvedAs(by: string, phone: Phone, record: ChildRecord, id: string): ChildRecord {
  return resolveConflict(record, id, { by, device: phone.device.imei, ts: phone.clock.now() });
}

async function auditCounts(w: World, username: string): Promise<unknown[]> {
  const res = await w.ta.app.inject({ method: 'GET', url: `/v1/audit?event=sync.push&username=${username}&limit=100`, headers: bearer(w.admin) });
  return (res.json() as { events: Array<{ details: Record<string, unknown> }> }).events.map((e) => e.details['relayedResolutions']);
}

t.test("a field worker's push relays a supervisor's resolution made elsewhere: accepted, stored with its author, counted in the audit log", async (t) => {
  const w = await world(t);
  const { stored, id } = await conflictedOnServer(w, 'Resolved by a supervisor on another server');
  // sam resolved it on server A; amina's phone pulled it there and pushes it here.
  const relayed = resolvedOn(w.sam, stored, id);
  const res = (await push(w.ta.app, w.amina.token, [relayed])).results[0];
  t.same(res, { id: stored.id, status: 'ok', changed: true, conflicts: 0 }, 'accepted (was RECORD_FORBIDDEN)');
  const doc = await recordDoc(couch.url, w.ta, stored.id);
  const record = doc['record'] as ChildRecord;
  t.notOk(needsReview(record), 'no longer flagged on this server');
  t.same(record.resolved, [{ conflict: id, ts: relayed.resolved.find((e) => typeof e !== 'string')!.ts, by: 'sam', device: w.sam.device.imei }], 'the resolution keeps its author');
  t.same([doc['pushedBy'], doc['pushedFrom']], ['amina', w.amina.device.imei], 'who relayed it is stamped from the session');
  t.same((await auditCounts(w, 'amina')).sort(), [0, 1], 'the sync.push event counts the relayed resolution (the other event: her edit)');
});

t.test('relaying the same resolution again changes nothing (same revision, nothing counted)', async (t) => {
  const w = await world(t);
  const { stored, id } = await conflictedOnServer(w, 'Relayed twice');
  const relayed = resolvedOn(w.sam, stored, id);
  await push(w.ta.app, w.amina.token, [relayed]);
  const before = await recordDoc(couch.url, w.ta, stored.id);
  w.ta.clock.advance(60_000);
  for (const phone of [w.amina, w.carla]) {
    t.same((await push(w.ta.app, phone.token, [relayed])).results[0], { id: stored.id, status: 'ok', changed: false, conflicts: 0 }, phone.username);
  }
  const after = await recordDoc(couch.url, w.ta, stored.id);
  t.equal(after._rev, before._rev, 'no new revision');
  t.same([...(await auditCounts(w, 'amina')), ...(await auditCounts(w, 'carla'))].sort(), [0, 0, 0, 1]);
});

t.test("a field worker's own resolution is still refused (RECORD_FORBIDDEN, field resolved) and changes nothing", async (t) => {
  const w = await world(t);
  const { stored, id } = await conflictedOnServer(w, 'Not for field workers to resolve');
  const before = await recordDoc(couch.url, w.ta, stored.id);
  const own = (await push(w.ta.app, w.amina.token, [resolvedOn(w.amina, stored, id)])).results[0];
  t.same([own?.status, own?.code, own?.field], ['error', 'RECORD_FORBIDDEN', 'resolved']);
  t.equal((await recordDoc(couch.url, w.ta, stored.id))._rev, before._rev, 'stored record unchanged');
});

async function auditUnapplied(w: World, username: string): Promise<unknown[]> {
  const res = await w.ta.app.inject({ method: 'GET', url: `/v1/audit?event=sync.push&username=${username}&limit=100`, headers: bearer(w.admin) });
  return (res.json() as { events: Array<{ details: Record<string, unknown> }> }).events.map((e) => e.details['unappliedRelays']);
}

t.test('a resolution attributed to a field worker, an unknown user or a disabled supervisor is not applied here, and the record is not refused', async (t) => {
  const w = await world(t);
  const { stored, id } = await conflictedOnServer(w, 'Forged resolutions');
  await phoneFor(w.ta.app, w.admin, w.ta.clock, 'sara', 'supervisor');
  const disable = await w.ta.app.inject({ method: 'PATCH', url: '/v1/users/sara', headers: bearer(w.admin), payload: { disabled: true } });
  t.equal(disable.statusCode, 200, 'sara disabled');
  const before = await recordDoc(couch.url, w.ta, stored.id);
  for (const [by, why] of [
    ['carla', 'another field worker'],
    ['bilal', 'the record creator (a field worker)'],
    ['zainab', 'a user this server does not know (e.g. a supervisor of another server only)'],
    ['sara', 'a disabled supervisor'],
  ] as const) {
    const res = (await push(w.ta.app, w.amina.token, [resolvedAs(by, w.amina, stored, id)])).results[0];
    t.same(res, { id: stored.id, status: 'ok', changed: false, conflicts: 1 }, `${why}: accepted without it, the conflict still open`);
  }
  // A bare conflict id (a record from before resolutions had authors) names nobody.
  const bare: ChildRecord = { ...stored, resolved: [id] };
  const res = (await push(w.ta.app, w.amina.token, [bare])).results[0];
  t.same(res, { id: stored.id, status: 'ok', changed: false, conflicts: 1 }, 'an authorless (old) resolution from a field worker is not applied either');
  const after = await recordDoc(couch.url, w.ta, stored.id);
  t.equal(after._rev, before._rev, 'stored record unchanged');
  t.same((after['record'] as ChildRecord).resolved, [], 'no resolution stored');
  t.same((await auditUnapplied(w, 'amina')).filter((n) => n !== 0 && n !== undefined), [1, 1, 1, 1, 1], 'each push counts the record whose relay was not applied');
  t.same((await push(w.ta.app, w.sam.token, [bare])).results[0], { id: stored.id, status: 'ok', changed: true, conflicts: 0 }, 'a supervisor still brings in an old resolution');
});

t.test("multi-server: a field worker's edit travels with a resolution made by another server's supervisor; the edit is stored, the resolution left for this server's supervisors", async (t) => {
  const w = await world(t);
  const { stored, id } = await conflictedOnServer(w, 'Resolved on server A by its supervisor');
  // zainab supervises on server A only. amina's phone pulled her resolution there, then amina
  // edited the record; both reach this server in one push, and again at every later sync.
  w.ta.clock.advance(1_000);
  const carried = edit(w.amina, resolvedAs('zainab', w.amina, stored, id), 'location', 'Camp 7');
  const first = (await push(w.ta.app, w.amina.token, [carried])).results[0];
  t.same(first, { id: stored.id, status: 'ok', changed: true, conflicts: 1 }, 'accepted (was RECORD_FORBIDDEN for good)');
  const record = (await recordDoc(couch.url, w.ta, stored.id))['record'] as ChildRecord;
  t.equal(record.fields['location']?.value, 'Camp 7', 'her edit is stored');
  t.ok(needsReview(record), 'the conflict stays open for this server');
  t.same(record.resolved, [], 'without the unattributed resolution');
  t.same((await push(w.ta.app, w.amina.token, [carried])).results[0], { id: stored.id, status: 'ok', changed: false, conflicts: 1 }, 'the same push again changes nothing');
  // This server's own supervisor resolves it here; the phone's copy (a join) agrees later.
  const here = resolvedOn(w.sam, record, id);
  t.same((await push(w.ta.app, w.sam.token, [here])).results[0], { id: stored.id, status: 'ok', changed: true, conflicts: 0 });
  t.same((await push(w.ta.app, w.amina.token, [mergeRecords(carried, here)])).results[0], { id: stored.id, status: 'ok', changed: false, conflicts: 0 }, 'and her next sync is clean');
});

t.test("one forged resolution beside a supervisor's: the supervisor's is relayed, the forged one left out", async (t) => {
  const w = await world(t);
  const { stored, id } = await conflictedOnServer(w, 'Mixed resolutions');
  const both = mergeRecords(resolvedOn(w.sam, stored, id), resolvedOn(w.carla, stored, id));
  t.equal(both.resolved.length, 2, 'two resolutions of one conflict');
  const res = (await push(w.ta.app, w.amina.token, [both])).results[0];
  t.same(res, { id: stored.id, status: 'ok', changed: true, conflicts: 0 });
  const record = (await recordDoc(couch.url, w.ta, stored.id))['record'] as ChildRecord;
  t.same(record.resolved.map((e) => (typeof e === 'string' ? e : e.by)), ['sam'], "only sam's resolution is stored");
});

t.test("a new record (never on this server) already resolved by a supervisor is relayed; one resolved by the pusher is not", async (t) => {
  const w = await world(t);
  const base = newRecord(w.bilal, { name: 'Resolved before it reached this server' });
  const merged = mergeRecords(edit(w.amina, base, 'age', 5), edit(w.bilal, base, 'age', 6));
  const id = conflictId(openConflicts(merged)[0]!);
  t.same((await push(w.ta.app, w.carla.token, [resolvedOn(w.sam, merged, id)])).results[0], { id: base.id, status: 'ok', changed: true, conflicts: 0 });
  const other = newRecord(w.bilal, { name: 'Resolved by the pusher' });
  const merged2 = mergeRecords(edit(w.amina, other, 'age', 5), edit(w.bilal, other, 'age', 6));
  const own = (await push(w.ta.app, w.carla.token, [resolvedOn(w.carla, merged2, conflictId(openConflicts(merged2)[0]!))])).results[0];
  t.same([own?.code, own?.field], ['RECORD_FORBIDDEN', 'resolved']);
});
