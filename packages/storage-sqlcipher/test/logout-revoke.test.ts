// Logout ends the server sessions (best effort): a real server process (apps/server on the
// embedded store, pinned TLS) and a real SDK device on SQLCipher files. The token a login
// obtained is refused by the server after `session.logout()`; a server that cannot be reached
// does not stop the logout, and the phone is logged out all the same.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startServerProcess, type ServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A, newDevice, recording, rejection } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'fieldvault-logout-'));
const servers: ServerProcess[] = [];
t.teardown(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(root, { recursive: true, force: true });
});
const A = await startServerProcess(join(root, 'a'), 'server-a');
servers.push(A);
await A.createUser('amina', PASSWORD_A);

async function logoutEvents(): Promise<number> {
  const page = await A.admin('GET', '/v1/audit?event=logout&username=amina&limit=100');
  return (page.body['events'] as unknown[]).length;
}

t.test('logout ends the session on the server: its token is refused afterwards', async (t) => {
  const { device } = await newDevice(t, { imei: '356938035643801' });
  const transport = recording(A.transport());
  await device.signUpOffline('amina', PASSWORD_A);
  const session = await device.loginOnline('amina', PASSWORD_A, { transport });
  const token = transport.tokens[0] ?? '';
  t.ok(token.length > 0, 'the login returned a token');
  await transport.pull(token, { limit: 1 });
  const before = await logoutEvents();

  await session.logout();
  t.equal((await rejection(transport.pull(token, { limit: 1 }))).code, 'SESSION_INVALID', 'the server no longer accepts the token');
  t.equal(await logoutEvents(), before + 1, 'the server audited the logout');
  t.equal((await rejection(session.listRecords())).code, 'VAULT_LOCKED', 'the phone is logged out');
  await session.logout();
  t.equal(await logoutEvents(), before + 1, 'logging out twice asks the server once');
});

t.test('a new online login of the same user ends the server session it replaces', async (t) => {
  const { device } = await newDevice(t, { imei: '356938035643802' });
  const transport = recording(A.transport());
  await device.signUpOffline('amina', PASSWORD_A);
  await device.loginOnline('amina', PASSWORD_A, { transport });
  const first = transport.tokens[0] ?? '';
  // Logging in again replaces the open session; the server login it held is superseded.
  const again = await device.loginOnline('amina', PASSWORD_A, { transport });
  const second = transport.tokens[1] ?? '';
  t.not(second, first, 'the second login has its own token');
  t.equal((await rejection(transport.pull(first, { limit: 1 }))).code, 'SESSION_INVALID', 'the superseded token is ended');
  await transport.pull(second, { limit: 1 });
  t.pass('the new token works');
  await again.logout();
  for (const token of transport.tokens) t.equal((await rejection(transport.pull(token, { limit: 1 }))).code, 'SESSION_INVALID', 'every token of the session ends at logout');
});

t.test('an unreachable server does not stop the logout', async (t) => {
  const { device } = await newDevice(t, { imei: '356938035643803' });
  const dir = join(root, 'b');
  const B = await startServerProcess(dir, 'server-b');
  servers.push(B);
  await B.createUser('amina', PASSWORD_A);
  const transport = recording(B.transport());
  await device.signUpOffline('amina', PASSWORD_A);
  const session = await device.loginOnline('amina', PASSWORD_A, { transport });
  await B.kill();
  await session.logout();
  t.equal((await rejection(session.listRecords())).code, 'VAULT_LOCKED', 'logged out on the phone although the server is gone');
  const offline = await device.loginOffline('amina', PASSWORD_A);
  t.ok(offline, 'the next user logs in offline as usual');
  await offline.logout();
});
