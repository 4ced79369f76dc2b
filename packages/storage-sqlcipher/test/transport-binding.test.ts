// A session's server login is bound to the transport it was made through (SDK audit H2,
// /work/notes/s9/sdk-report.md): its bearer token and records go only through a transport with the
// same identity (base URL + TLS trust), never through one that merely carries the same serverId.
// And conflicts can be reviewed and resolved with the SDK alone (audit H1). Two real server
// processes, real SQLCipher phones.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createHttpTransport, isFieldvaultError, type Device, type Transport } from '@fieldvault/client';
import { startIdentityStandIn, type ServerProcess } from '@fieldvault/test-support';
import { NO_RATE_LIMITS, PASSWORD_A, PASSWORD_B, PASSWORD_C, newDevice, rejection, startServers } from './helpers.js';

const [A, B] = (await startServers(
  t,
  'binding',
  ['server-a', 'server-b'],
  [['amina', PASSWORD_A], ['bilal', PASSWORD_B], ['sam', PASSWORD_C, 'supervisor']],
  NO_RATE_LIMITS,
)) as [ServerProcess, ServerProcess];
const NO_RETRY = { attempts: 1, baseDelayMs: 0 };

const testDirs = new WeakMap<Test, string>();

/** A phone in its own directory under the test's fixture directory (`t.testdir()` recreates it: called once per test). */
async function phone(t: Test, name: string, imei: string): Promise<Device> {
  const dir = testDirs.get(t) ?? t.testdir();
  testDirs.set(t, dir);
  return (await newDevice(t, { imei }, join(dir, name))).device;
}

/** A real transport whose every server call (and the token it was given) is written down. */
function watched(transport: Transport): Transport & { calls: string[] } {
  const calls: string[] = [];
  const out: Record<string, unknown> = { ...transport, calls };
  for (const [name, value] of Object.entries(transport)) {
    if (typeof value !== 'function') continue;
    out[name] = (...args: unknown[]) => {
      calls.push(`${name}${typeof args[0] === 'string' ? ` token=${(args[0] as string).slice(0, 6)}…` : ''}`);
      return (value as (...a: unknown[]) => unknown)(...args);
    };
  }
  return out as unknown as Transport & { calls: string[] };
}

t.test('a transport with A’s serverId but another server’s address gets no token and no record (audit 07-token-leak)', async (t) => {
  const device = await phone(t, 'p1', '356938035645001');
  const amina = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  await amina.createRecord({ name: 'Secret child name', age: 4, location: 'Safe house 7' });

  // The real server B, reached under A's id (a stale or hostile configuration entry).
  const toB = watched(B.transport({ serverId: 'server-a' }));
  for (const attempt of [
    () => amina.sync({ transport: toB, retry: NO_RETRY }),
    () => amina.searchServer(toB, { name: 'secret' }),
    () => amina.serverForm(toB),
  ]) {
    const err = await rejection(attempt());
    t.equal(err.code, 'SYNC_TRANSPORT_CHANGED');
  }
  t.same(toB.calls, [], 'the SDK called nothing on the transport to B');

  // The audit's exact repro: an HTTPS server with B's certificate, pinned, under A's id: it sees no request at all.
  const standIn = await startIdentityStandIn(B, 'server-a');
  t.teardown(() => standIn.close());
  const wrong = createHttpTransport({ baseUrl: standIn.url, serverId: 'server-a', tls: { pinSha256: B.fingerprint } });
  t.equal((await rejection(amina.sync({ transport: wrong, retry: NO_RETRY }))).code, 'SYNC_TRANSPORT_CHANGED');
  t.same(standIn.paths, [], 'the other server received no request (no token, no record)');
  t.same((await A.records()).length, 0, 'and A has nothing yet either');

  const ok = await amina.sync({ transport: A.transport() });
  t.equal(ok.pushed, 1, 'a new transport object to the same address with the same pin syncs: the binding is its identity, not the object');
  t.equal((await A.records()).length, 1);
});

t.test('the same address with another TLS trust is refused until the user logs in online through it', async (t) => {
  const device = await phone(t, 'p2', '356938035645002');
  const amina = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const byCa = A.transport({ tls: { ca: A.certPem } });
  t.not(byCa.identity, A.transport().identity, 'trust is part of the identity');
  const err = await rejection(amina.sync({ transport: byCa, retry: NO_RETRY }));
  t.equal(err.code, 'SYNC_TRANSPORT_CHANGED');
  t.ok(isFieldvaultError(err) && /log in online again/i.test(err.hint ?? ''), 'the hint says what to do');
  const again = await device.loginOnline('amina', PASSWORD_A, { transport: byCa });
  t.equal((await again.sync({ transport: byCa })).serverId, 'server-a', 'after an online login through it, it syncs');
  t.equal((await rejection(again.sync({ transport: A.transport(), retry: NO_RETRY }))).code, 'SYNC_TRANSPORT_CHANGED', 'and now the pin-only transport is the other one');
});

t.test('a transport without an identity is bound to itself: only the same object gets the token', async (t) => {
  const device = await phone(t, 'p3', '356938035645003');
  const { identity: _dropped, ...plain } = A.transport();
  const own: Transport = plain;
  const amina = await device.loginOnline('amina', PASSWORD_A, { transport: own });
  t.equal((await amina.sync({ transport: own })).serverId, 'server-a');
  const { identity: _also, ...other } = A.transport();
  t.equal((await rejection(amina.sync({ transport: other, retry: NO_RETRY }))).code, 'SYNC_TRANSPORT_CHANGED');
});

t.test('a supervisor lists a record’s open conflicts with ids and both values, and keeps either value', async (t) => {
  const p1 = await phone(t, 'c1', '356938035645011');
  const p2 = await phone(t, 'c2', '356938035645012');
  const p3 = await phone(t, 'c3', '356938035645013');
  const amina = await p1.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const rec = await amina.createRecord({ name: 'Shared child', age: 5, caregiver: 'Aunt', location: 'Camp 1' });
  await amina.sync({ transport: A.transport() });
  const bilal = await p2.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  await bilal.sync({ transport: A.transport() });
  // Two concurrent edits of two fields.
  await amina.updateRecord(rec.id, { caregiver: 'Grandma', location: 'Camp 2' });
  await bilal.updateRecord(rec.id, { caregiver: 'Uncle', location: 'Camp 3' });
  await amina.sync({ transport: A.transport() });
  await bilal.sync({ transport: A.transport() });

  const sam = await p3.loginOnline('sam', PASSWORD_C, { transport: A.transport() });
  await sam.sync({ transport: A.transport() });
  const open = await sam.openConflicts(rec.id);
  t.same(open.map((c) => c.field).sort(), ['caregiver', 'location']);
  const current = await sam.getRecord(rec.id);
  for (const c of open) {
    t.equal(c.winnerValue, current.fields[c.field]?.value, `${c.field}: the winner is the current value`);
    t.ok(['Grandma', 'Uncle', 'Camp 2', 'Camp 3'].includes(String(c.loserValue)) && c.loserValue !== c.winnerValue, `${c.field}: the loser is the other edit`);
    t.ok(c.loserBy === 'amina' || c.loserBy === 'bilal');
  }
  t.equal((await rejection(bilal.resolveConflict(rec.id, open[0]?.id ?? ''))).code, 'RECORD_FORBIDDEN', 'a field worker cannot resolve');
  t.equal((await rejection(sam.resolveConflict(rec.id, open[0]?.id ?? '', { keep: 'both' as 'winner' }))).code, 'INPUT_INVALID');

  const caregiver = open.find((c) => c.field === 'caregiver');
  const location = open.find((c) => c.field === 'location');
  if (caregiver === undefined || location === undefined) throw new Error('conflicts missing');
  const kept = await sam.resolveConflict(rec.id, caregiver.id);
  t.equal(kept.fields['caregiver']?.value, caregiver.winnerValue, "keep: 'winner' (the default) leaves the current value");
  const swapped = await sam.resolveConflict(rec.id, location.id, { keep: 'loser' });
  t.equal(swapped.fields['location']?.value, location.loserValue, "keep: 'loser' makes the losing value current");
  t.ok(swapped.history.some((v) => v.field === 'location' && v.value === location.winnerValue), 'the value that was current stays in history');
  t.same(await sam.openConflicts(rec.id), [], 'nothing is left to review');
  t.equal((await rejection(sam.resolveConflict(rec.id, 'location:nope:nope'))).code, 'RECORD_CONFLICT_NOT_FOUND');

  // The resolutions travel: after syncing, the other phones have nothing to review either.
  await sam.sync({ transport: A.transport() });
  await amina.sync({ transport: A.transport() });
  t.same(await amina.openConflicts(rec.id), []);
  t.equal((await amina.getRecord(rec.id)).fields['location']?.value, location.loserValue);
});
