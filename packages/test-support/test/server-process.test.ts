// The shared launcher on the real server (apps/server/dist/main.js): the options the admin CLI
// tests and the sync bench rely on, since those run it without a test of their own.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { launchServerProcess, startServerProcess } from '../src/index.js';

t.test('a bare launch has no admin yet: it hands over the setup token and phones can try to log in', async (t) => {
  const server = await launchServerProcess(join(t.testdir(), 'server'), 'srv-bare', { startAttempts: 1 });
  t.teardown(() => server.stop());
  t.match(server.setupToken, /^\S{20,}$/, 'the printed setup token');
  t.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const login = await server.deviceLogin('nobody', 'quiet river bank at dawn 42', '490154203237518');
  t.equal(login.status, 401);
  t.equal(login.body['code'], 'AUTH_INVALID_CREDENTIALS');
  const setup = await server.call('POST', '/v1/setup/admin', { setupToken: server.setupToken, username: 'admin', password: 'lantern harbour copper kettle dawn' });
  t.equal(setup.status, 201, 'the token sets up the first admin');
  // Without the fixture's `optional`, the server asks an admin for TOTP, as in production.
  const admin = await server.deviceLogin('admin', 'lantern harbour copper kettle dawn', '100000000000001');
  t.not(admin.status, 200, 'no admin session without TOTP');
  t.match(admin.body['code'], /^AUTH_TOTP_/);
});

t.test('with a log file, the request log goes to the file and the banner is still read', async (t) => {
  const dir = join(t.testdir(), 'server');
  const logFile = join(t.testdir(), 'server.log');
  const server = await startServerProcess(dir, 'srv-logged', { env: { FIELDVAULT_LOG_LEVEL: 'info' }, logFile, adminPassword: 'copper kettle lantern harbour noon' });
  await server.createUser('amina', 'quiet river bank at dawn 42');
  await server.stop();
  const log = readFileSync(logFile, 'utf8');
  t.match(log, /"url":"\/v1\/users"/, 'the request log is in the file');
  t.notMatch(server.output(), /"url":"\/v1\/users"/, 'and not kept in memory');
  t.notOk(log.includes('copper kettle lantern harbour noon'), 'no password in the log');
});

t.test('a custom admin password survives a restart', async (t) => {
  const server = await startServerProcess(join(t.testdir(), 'server'), 'srv-restart', { adminPassword: 'copper kettle lantern harbour noon' });
  await server.stop();
  const again = await server.restart();
  t.teardown(() => again.stop());
  t.equal(again.port, server.port, 'the same port');
  t.equal(again.setupToken, null, 'no second setup token');
  t.equal((await again.admin('GET', '/v1/users')).status, 200, 'the admin logs in again with the same password');
});

t.test('a start that fails rejects at once with what the server said', async (t) => {
  const dir = join(t.testdir(), 'server');
  await t.rejects(launchServerProcess(dir, 'srv-bad', { env: { FIELDVAULT_LOG_LEVEL: 'loud' }, startAttempts: 1 }), /FIELDVAULT_LOG_LEVEL must be one of/);
  t.notOk(existsSync(join(dir, 'couch')), 'no store was started');
});

t.test('stop waits until the server and its store are gone', async (t) => {
  const server = await startServerProcess(join(t.testdir(), 'server'), 'srv-stop');
  await server.stop();
  t.notOk(existsSync(`/proc/${server.pid}`), 'the server process is gone (reaped)');
});
