// Pending sign-ups end to end (issue 7 step 3): an unverified user on a real SDK device (SQLCipher
// files) asks a real server process for an account with their records; the admin approves; the
// user logs in online with the password chosen on the phone (flow 1) and syncs, and each record is
// on the server once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { ChildRecord } from '@fieldvault/protocol';
import { startServerProcess, type ServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A, PASSWORD_C, newDevice, rejection } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'fieldvault-signup-'));
const A: ServerProcess = await startServerProcess(join(root, 'a'), 'server-a');
t.teardown(async () => {
  await A.stop();
  rmSync(root, { recursive: true, force: true });
});

const ids = (records: readonly ChildRecord[]): string[] => records.map((r) => r.id).sort();

t.test('an unverified user requests an account with their records; once approved they log in online and sync without duplicates', async (t) => {
  const imei = '356938035647001';
  const { device } = await newDevice(t, { imei });
  const transport = A.transport();
  await device.signUpOffline('zoe', PASSWORD_A);
  await device.signUpOffline('chidi', PASSWORD_C);
  let s = await device.loginOffline('zoe', PASSWORD_A);
  const mine = [await s.createRecord({ name: 'Zoe first' }), await s.createRecord({ name: 'Zoe second' }), await s.createRecord({ name: 'Zoe third' })];
  await s.logout();
  s = await device.loginOffline('chidi', PASSWORD_C);
  const chidis = await s.createRecord({ name: 'Chidi only' });
  await s.logout();

  t.equal((await rejection(device.requestAccount('zoe', PASSWORD_C, { transport }))).code, 'VAULT_WRONG_PASSWORD', 'the password must open her key here');
  // The key is tried before the password rules: a mistyped password is wrong, whatever rule it breaks too.
  t.equal((await rejection(device.requestAccount('zoe', 'password'.repeat(3), { transport }))).code, 'VAULT_WRONG_PASSWORD', 'a common wrong password is wrong');
  t.equal((await rejection(device.requestAccount('zoe', 'short', { transport }))).code, 'VAULT_WRONG_PASSWORD', 'a short wrong password is wrong');
  const { requestAccount: _omitted, signupStatus: _omitted2, ...withoutSignups } = A.transport();
  t.equal((await rejection(device.requestAccount('zoe', PASSWORD_A, { transport: withoutSignups }))).code, 'INPUT_INVALID', 'a transport without sign-ups is refused');

  // Two records per request: three records go in two signed calls.
  const asked = await device.requestAccount('zoe', PASSWORD_A, { transport, batchRecords: 2 });
  t.match(asked, { status: 'pending', sent: 3, quarantined: 3, failed: [] });
  t.same(await device.accountStatus('zoe', { transport }), { status: 'pending', requestedAt: asked.requestedAt, decidedAt: null });
  t.equal((await A.records()).length, 0, 'nothing in the records database (pull) before approval');

  const shown = await A.admin('GET', '/v1/signups/zoe');
  t.same(ids((shown.body['records'] as Array<{ record: ChildRecord }>).map((q) => q.record)), ids(mine), 'only her records, not chidi\'s');
  const approved = await A.admin('POST', '/v1/signups/zoe/approve', {});
  t.equal(approved.status, 200, JSON.stringify(approved.body));
  t.equal(approved.body['moved'], 3);
  t.equal((await device.accountStatus('zoe', { transport })).status, 'approved');
  t.same(ids(await A.records()), ids(mine), 'approved: her records are on the server');

  // Flow 1 with the phone password: verified database, her records move into it, and the sync
  // pushes them again under the same ids — nothing duplicated, nothing changed on the server.
  const v = await device.loginOnline('zoe', PASSWORD_A, { transport });
  t.equal(v.kind, 'verified');
  t.same(ids(await v.listRecords()), ids(mine));
  const summary = await v.sync({ transport });
  t.same(summary.failed, []);
  const onServer = await A.records();
  t.same(ids(onServer), ids(mine), 'each record once');
  for (const r of mine) t.same(onServer.find((x) => x.id === r.id)?.fields, r.fields);
  t.notOk(onServer.some((r) => r.id === chidis.id), 'chidi\'s record stayed on the phone');
  await v.logout();

  t.equal((await rejection(device.requestAccount('zoe', PASSWORD_A, { transport }))).code, 'VAULT_FORBIDDEN', 'a verified user logs in online instead');
  t.equal((await rejection(device.accountStatus('nobody', { transport }))).code, 'SIGNUP_NOT_FOUND');
});

t.test('the right password under a stricter policy than at sign-up is refused by the rules before anything is sent', async (t) => {
  const dir = t.testdir();
  const lenient = await newDevice(t, { passwordPolicy: { minLength: 8, maxLength: 256 } }, dir);
  await lenient.device.signUpOffline('ines', 'kite 7 river');
  await lenient.device.logout();
  const { device } = await newDevice(t, {}, dir);
  t.equal((await rejection(device.requestAccount('ines', 'kite 7 rivers', { transport: A.transport() }))).code, 'VAULT_WRONG_PASSWORD');
  t.equal((await rejection(device.requestAccount('ines', 'kite 7 river', { transport: A.transport() }))).code, 'PASSWORD_TOO_SHORT');
  t.same(await A.admin('GET', '/v1/signups/ines').then((r) => r.body['code']), 'SIGNUP_NOT_FOUND', 'the server holds no request');
});

t.test('a name another device is waiting for is refused; a rejected request reports rejected', async (t) => {
  const transport = A.transport();
  const p1 = await newDevice(t, { imei: '356938035647019' }, join(t.testdir(), 'p1'));
  const p2 = await newDevice(t, { imei: '356938035647027' }, join(t.testdir(), 'p2'));
  await p1.device.signUpOffline('yusra', PASSWORD_A);
  await p2.device.signUpOffline('yusra', PASSWORD_C);
  t.match(await p1.device.requestAccount('yusra', PASSWORD_A, { transport }), { status: 'pending', sent: 0 });
  t.equal((await rejection(p2.device.requestAccount('yusra', PASSWORD_C, { transport }))).code, 'SIGNUP_PENDING_ELSEWHERE');
  t.equal((await rejection(p2.device.accountStatus('yusra', { transport }))).code, 'SIGNUP_NOT_FOUND', 'only the asking device learns the status');
  t.equal((await A.admin('POST', '/v1/signups/yusra/reject', {})).status, 200);
  t.equal((await p1.device.accountStatus('yusra', { transport })).status, 'rejected');
  t.equal((await rejection(p1.device.loginOnline('yusra', PASSWORD_A, { transport }))).code, 'AUTH_INVALID_CREDENTIALS', 'no account');
});
