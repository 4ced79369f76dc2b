// A phone blacklisted on one server stays blocked for every server (audit s11 H2): real server
// processes (apps/server on the embedded store) and real SDK devices on SQLCipher files. Before the
// fix, the phone wiped by B's DEVICE_BLACKLISTED logged in online to A (which never heard of the
// blacklisting) and got every record back.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BLOCKED_MARK_FILE, type Transport } from '@fieldvault/client';
import type { ServerProcess } from '@fieldvault/test-support';
import { NO_RATE_LIMITS, PASSWORD_A, PASSWORD_C, filesUnder, newDevice, rejection, startServers } from './helpers.js';

const [A, B] = (await startServers(t, 'blocked', ['server-a', 'server-b'], [['amina', PASSWORD_A]], NO_RATE_LIMITS)) as [ServerProcess, ServerProcess];

/** A real transport that counts every request it sends (to show that nothing reached a server). */
function counting(transport: Transport): Transport & { calls: string[] } {
  const calls: string[] = [];
  const wrap =
    <A extends unknown[], R>(name: string, f: ((...a: A) => Promise<R>) | undefined) =>
    (...a: A): Promise<R> => {
      calls.push(name);
      if (f === undefined) throw new Error(`${name} missing`);
      return f.apply(transport, a);
    };
  return {
    ...transport,
    challenge: wrap('challenge', transport.challenge),
    login: wrap('login', transport.login),
    requestAccount: wrap('requestAccount', transport.requestAccount),
    signupStatus: wrap('signupStatus', transport.signupStatus),
    calls,
  };
}

const details = (err: unknown): unknown => (err as { details?: unknown }).details;

t.test('blacklisted on B (at login): wiped and marked; A is refused locally until B reinstates the phone and a login to B succeeds', async (t) => {
  const imei = '356938035647001';
  const { dir, device } = await newDevice(t, { imei });
  const s = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const record = await s.createRecord({ name: 'Synced to A and B' });
  t.equal((await s.sync({ transport: A.transport() })).pushed, 1);
  await device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  await device.logout();
  t.equal(await device.blockedBy(), null);

  t.equal((await B.admin('POST', `/v1/devices/${imei}/blacklist`, { reason: 'reported stolen' })).status, 200);
  const before = Date.now();
  const wiped = await rejection(device.loginOnline('amina', PASSWORD_A, { transport: B.transport() }));
  t.equal(wiped.code, 'DEVICE_BLACKLISTED');
  t.match(details(wiped), { serverId: 'server-b', wiped: true });
  t.same(filesUnder(dir), [BLOCKED_MARK_FILE], 'everything wiped but the mark');
  const mark = await device.blockedBy();
  t.equal(mark?.serverId, 'server-b');
  t.ok(mark !== null && Date.parse(mark.at) >= before - 1000, 'the mark says when');
  t.same(JSON.parse(readFileSync(join(dir, BLOCKED_MARK_FILE), 'utf8')), mark, 'blocked.json holds the same');
  if (process.platform !== 'win32') t.equal(statSync(join(dir, BLOCKED_MARK_FILE)).mode & 0o777, 0o600);

  // A never heard of the blacklisting: the phone must not ask it. The wipe destroyed the device key,
  // so A would answer DEVICE_BINDING_MISMATCH, whose hint sends the worker to A's admin for an
  // unbind; after that, without the mark, A hands the key (and every record) back.
  t.equal((await A.admin('POST', `/v1/devices/${imei}/unbind`, { reason: 'phone was reset' })).status, 200);
  const seenByA = await A.device(imei);
  const toA = counting(A.transport());
  const refused = await rejection(device.loginOnline('amina', PASSWORD_A, { transport: toA }));
  t.equal(refused.code, 'DEVICE_BLACKLISTED');
  t.match(details(refused), { serverId: 'server-b', wiped: true, local: true });
  t.match(refused.message, /blocked by server server-b .*reinstate it there, then log in online to server-b/);
  t.same(toA.calls, [], 'nothing was sent to A');
  t.same(await A.device(imei), seenByA, 'A\'s record of the device is unchanged');
  t.same(filesUnder(dir), [BLOCKED_MARK_FILE], 'and nothing came back');

  // Sign-up and its status are refused the same way; offline login says why too.
  await device.signUpOffline('chidi', PASSWORD_C);
  t.match(details(await rejection(device.requestAccount('chidi', PASSWORD_C, { transport: toA }))), { serverId: 'server-b', local: true });
  t.match(details(await rejection(device.accountStatus('chidi', { transport: toA }))), { serverId: 'server-b', local: true });
  t.same(toA.calls, []);
  t.match(details(await rejection(device.loginOffline('amina', PASSWORD_A))), { serverId: 'server-b', local: true });

  // The app's own wipe keeps the mark.
  await device.wipe();
  t.same(filesUnder(dir), [BLOCKED_MARK_FILE]);

  // B itself is still asked (that is how the phone learns it was reinstated); still blacklisted: the mark stays.
  const again = await rejection(device.loginOnline('amina', PASSWORD_A, { transport: B.transport() }));
  t.equal(again.code, 'DEVICE_BLACKLISTED');
  t.notOk((details(again) as { local?: boolean }).local, 'B answered, not the phone');
  t.same(await device.blockedBy(), mark, 'the mark is kept as it was');

  // Reinstated on B: the login to B succeeds and lifts the mark; then A works again.
  t.equal((await B.admin('POST', `/v1/devices/${imei}/reinstate`, { reason: 'found' })).status, 200);
  const back = await device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  t.equal(back.kind, 'verified');
  t.equal(await device.blockedBy(), null, 'the mark is gone');
  t.notOk(filesUnder(dir).includes(BLOCKED_MARK_FILE));
  await device.logout();
  const onA = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  t.equal(onA.kind, 'verified');
  await onA.sync({ transport: A.transport() });
  t.ok((await onA.listRecords()).some((r) => r.id === record.id), 'the record comes back from A');
});

t.test('blacklisted on B (at sync, with a session open on A and B): the session callback wipes and marks too', async (t) => {
  const imei = '356938035647002';
  const { dir, device } = await newDevice(t, { imei });
  await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const s = await device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  await s.createRecord({ name: 'On a stolen phone' });
  t.equal((await B.admin('POST', `/v1/devices/${imei}/blacklist`, { reason: 'stolen' })).status, 200);
  const err = await rejection(s.sync({ transport: B.transport() }));
  t.equal(err.code, 'DEVICE_BLACKLISTED');
  t.match(details(err), { serverId: 'server-b', wiped: true });
  t.notOk(s.active);
  t.same(filesUnder(dir), [BLOCKED_MARK_FILE]);
  t.equal((await device.blockedBy())?.serverId, 'server-b');
  const toA = counting(A.transport());
  t.match(details(await rejection(device.loginOnline('amina', PASSWORD_A, { transport: toA }))), { serverId: 'server-b', local: true });
  t.same(toA.calls, [], 'nothing was sent to A');
});
