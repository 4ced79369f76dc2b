// Issue 5: a conflict a supervisor resolves through server A reaches server B through a field
// worker's phone. Two real server processes (apps/server on the embedded store) and real SDK
// phones on SQLCipher files. Before resolutions carried their author, B refused the record with
// RECORD_FORBIDDEN (field `resolved`) on every sync.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Session } from '@fieldvault/client';
import { conflictId, needsReview, openConflicts, type ChildRecord } from '@fieldvault/protocol';
import type { ServerProcess } from '@fieldvault/test-support';
import { NO_RATE_LIMITS, PASSWORD_A, PASSWORD_B, PASSWORD_C, newDevice, startServers } from './helpers.js';

const [A, B] = (await startServers(
  t,
  'relayed-resolutions',
  ['server-a', 'server-b'],
  [['amina', PASSWORD_A], ['bilal', PASSWORD_B], ['sam', PASSWORD_C, 'supervisor']],
  NO_RATE_LIMITS,
)) as [ServerProcess, ServerProcess];

const byId = (records: readonly ChildRecord[], id: string): ChildRecord | undefined => records.find((r) => r.id === id);

type Phone = Awaited<ReturnType<typeof newDevice>>;

/** A record of amina's edited concurrently (`age`) on her phone and bilal's, the conflict met on A. */
async function conflictMetOnA(t: Test, pa: Phone, pb: Phone, name: string): Promise<{ bilal: Session; record: ChildRecord }> {
  const amina = await pa.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const record = await amina.createRecord({ name, age: 4 });
  await amina.sync({ transport: A.transport() });
  const bilal = await pb.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  await bilal.sync({ transport: A.transport() });
  await amina.updateRecord(record.id, { age: 5 });
  await bilal.updateRecord(record.id, { age: 6 });
  await amina.sync({ transport: A.transport() });
  t.equal((await bilal.sync({ transport: A.transport() })).conflicts, 1, 'the conflict is met on A');
  return { bilal, record };
}

t.test("issue 5: a supervisor resolves a conflict through A; a field worker's phone pulls it from A and syncs B: B holds the resolved record, nothing fails", async (t) => {
  const dir = t.testdir();
  const pa = await newDevice(t, { imei: '356938035645001' }, join(dir, 'amina'));
  const pb = await newDevice(t, { imei: '356938035645002' }, join(dir, 'bilal'));
  const ps = await newDevice(t, { imei: '356938035645003' }, join(dir, 'sam'));

  // A concurrent edit of amina's record on two phones, met on A.
  const { bilal, record } = await conflictMetOnA(t, pa, pb, 'Resolved on A');

  // sam, a supervisor, resolves it on his phone and pushes the resolution to A.
  const sam = await ps.device.loginOnline('sam', PASSWORD_C, { transport: A.transport() });
  await sam.sync({ transport: A.transport() });
  const open = openConflicts(await sam.getRecord(record.id));
  t.equal(open.length, 1);
  const resolved = await sam.resolveConflict(record.id, conflictId(open[0]!));
  t.match(resolved.resolved, [{ conflict: conflictId(open[0]!), by: 'sam', device: '356938035645003' }], 'the resolution names sam, his phone and when');
  t.same((await sam.sync({ transport: A.transport() })).failed, []);
  const onA = byId(await A.records(), record.id);
  t.ok(onA !== undefined && !needsReview(onA), 'resolved on A');

  // bilal's phone (a field worker's) pulls the resolution from A, then syncs with B for the first time.
  const fromA = await bilal.sync({ transport: A.transport() });
  t.same(fromA.failed, []);
  t.notOk(needsReview(await bilal.getRecord(record.id)), 'the phone holds the resolution');
  const bilalOnB = await pb.device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  const toB = await bilalOnB.sync({ transport: B.transport() });
  t.same(toB.failed, [], 'no failures (was RECORD_FORBIDDEN on resolved at every sync)');
  t.equal(toB.conflicts, 0);
  const onB = byId(await B.records(), record.id);
  t.ok(onB !== undefined && !needsReview(onB), 'B holds the resolved record');
  t.same(onB, byId(await A.records(), record.id), 'the same record as A, resolution and its author included');

  const again = await bilalOnB.sync({ transport: B.transport() });
  t.same([again.pushed, again.failed], [0, []], 'the next sync has nothing left to push');

  const audit = await B.admin('GET', '/v1/audit?event=sync.push&username=bilal&limit=50');
  const counts = (audit.body['events'] as Array<{ details: Record<string, unknown> }>).map((e) => e.details['relayedResolutions']);
  t.ok(counts.includes(1), `B's audit log counts the relayed resolution (${JSON.stringify(counts)})`);
});

t.test("a supervisor of A only resolves a conflict; a field worker's phone carries it to B, where nobody knows her: B stores the field worker's edits, keeps the conflict open for its own supervisors, and the phone's syncs stay clean", async (t) => {
  const dir = t.testdir();
  // zoe supervises on A only (B has never heard of her).
  await A.createUser('zoe', PASSWORD_C, 'supervisor');
  const pa = await newDevice(t, { imei: '356938035645011' }, join(dir, 'amina'));
  const pb = await newDevice(t, { imei: '356938035645012' }, join(dir, 'bilal'));
  const pz = await newDevice(t, { imei: '356938035645013' }, join(dir, 'zoe'));

  const { bilal, record } = await conflictMetOnA(t, pa, pb, 'Resolved by a supervisor of A only');

  const zoe = await pz.device.loginOnline('zoe', PASSWORD_C, { transport: A.transport() });
  await zoe.sync({ transport: A.transport() });
  await zoe.resolveConflict(record.id, conflictId(openConflicts(await zoe.getRecord(record.id))[0]!));
  t.same((await zoe.sync({ transport: A.transport() })).failed, []);

  // bilal pulls the resolution from A, edits the record, and syncs with B.
  await bilal.sync({ transport: A.transport() });
  await bilal.updateRecord(record.id, { location: 'Camp 9' });
  const bilalOnB = await pb.device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  const toB = await bilalOnB.sync({ transport: B.transport() });
  t.same(toB.failed, [], 'nothing fails (was RECORD_FORBIDDEN on resolved, for good)');
  const onB = byId(await B.records(), record.id);
  t.equal(onB?.fields['location']?.value, 'Camp 9', "bilal's edit reached B");
  t.ok(onB !== undefined && needsReview(onB), "the conflict stays open on B for B's supervisors");
  t.same(onB?.resolved, [], "zoe's resolution is not applied on B");
  t.notOk(needsReview(await bilalOnB.getRecord(record.id)), 'the phone keeps the resolution it pulled from A');

  // Later edits keep flowing, and a sync with nothing new pushes nothing.
  await bilalOnB.updateRecord(record.id, { location: 'Camp 10' });
  const later = await bilalOnB.sync({ transport: B.transport() });
  t.same([later.pushed, later.failed], [1, []], 'a later edit reaches B');
  t.equal(byId(await B.records(), record.id)?.fields['location']?.value, 'Camp 10');
  const idle = await bilalOnB.sync({ transport: B.transport() });
  t.same([idle.pushed, idle.failed], [0, []], 'and then nothing is left to push');

  const audit = await B.admin('GET', '/v1/audit?event=sync.push&username=bilal&limit=50');
  const counts = (audit.body['events'] as Array<{ details: Record<string, unknown> }>).map((e) => e.details['unappliedRelays']);
  t.ok(counts.includes(1), `B's audit log counts the push whose relay was not applied (${JSON.stringify(counts)})`);
});
