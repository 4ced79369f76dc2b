import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ADMIN_PASSWORD, cli, cliEnrolling, errorCode, json, startServer, totp } from './helpers.js';

// Operations audit of user administration and the admin CLI, against a real server process
// (embedded store, TLS, admin TOTP required as in production). One server for the file; the
// subtests build on each other in order.
const dataDir = t.testdir();
// Every CLI login is two auth requests; the file does many: keep the per-IP limit out of the way.
const server = await startServer(join(dataDir, 'server'), { FIELDVAULT_AUTH_RATE_LIMIT: '1000' });
t.teardown(() => server.stop());
const home = join(dataDir, 'root-home');
const trust = ['--server', server.url, '--ca', server.certFile];
const SECOND_PASSWORD = 'amber lantern over quiet harbour';
const BOB_PASSWORD = 'seven copper kettles sing at dawn';
const SAM_PASSWORD = 'violet meadows under winter stars';

/** The home of the admin acting now: root's, then second's once root was disabled (ending root's session). */
let admin = home;

async function invite(username: string, role: string, password: string): Promise<void> {
  const r = await cli(admin, ['--json', 'users', 'add', username, '--role', role]);
  const { invitation } = json<{ invitation: { token: string } }>(r);
  const set = await server.call('POST', '/v1/auth/password', { resetToken: invitation.token, password });
  if (set.status !== 200) throw new Error(JSON.stringify(set.body));
}

t.test('setup: root is the first admin, enrolled', async (t) => {
  const r = await cliEnrolling(home, ['--json', 'init', ...trust, '--user', 'root'], [server.setupToken, ADMIN_PASSWORD], (s) => [totp(s)]);
  t.equal(r.code, 0, r.stderr);
});

t.test('an invited admin does not count: the last admin who can log in is not disabled (USER_LAST_ADMIN)', async (t) => {
  const added = await cli(home, ['--json', 'users', 'add', 'second', '--role', 'admin']);
  t.equal(added.code, 0, added.stderr);
  const disable = await cli(home, ['--json', 'users', 'disable', 'root']);
  t.equal(disable.code, 1);
  t.equal(errorCode(disable), 'USER_LAST_ADMIN');
  const human = await cli(home, ['users', 'disable', 'root']);
  t.match(human.stderr, /without an admin who can log in/);
  t.notMatch(human.stdout, /is disabled/);
  const demote = await cli(home, ['--json', 'users', 'role', 'root', 'field_worker']);
  t.equal(errorCode(demote), 'USER_LAST_ADMIN');
  const shown = json<{ user: { disabled: boolean; role: string } }>(await cli(home, ['--json', 'users', 'show', 'root']));
  t.match(shown.user, { disabled: false, role: 'admin' }, 'root unchanged');
  t.equal((await cli(home, ['--json', 'whoami'])).code, 0, "root's session lives on");
});

t.test('login of an admin without an authenticator goes to enrolment without asking a code first', async (t) => {
  // A reset of an admin who cannot log in yet is allowed (it takes no usable admin away).
  const { reset } = json<{ reset: { token: string } }>(await cli(home, ['--json', 'users', 'reset', 'second']));
  t.equal((await server.call('POST', '/v1/auth/password', { resetToken: reset.token, password: SECOND_PASSWORD })).status, 200);
  const secondHome = join(dataDir, 'second-home');
  const r = await cliEnrolling(secondHome, ['--json', 'login', ...trust, '--user', 'second'], [SECOND_PASSWORD], (s) => [totp(s)]);
  t.equal(r.code, 0, r.stderr);
  t.notMatch(r.stderr, /6-digit code from the authenticator app \(or a recovery code\)/, 'no code was asked before the enrolment');
  t.match(r.stderr, /no authenticator yet: enrolling/);
  t.equal(json<{ recoveryCodes: string[] }>(r).recoveryCodes.length, 10);
  // Now another admin can log in: root may be disabled (and enabled again by second).
  const disabled = await cli(home, ['--json', 'users', 'disable', 'root']);
  t.equal(disabled.code, 0, disabled.stderr);
  admin = secondHome;
  t.equal((await cli(admin, ['--json', 'users', 'enable', 'root'])).code, 0);
  t.equal(errorCode(await cli(home, ['--json', 'whoami'])), 'ADMIN_NOT_LOGGED_IN', "disabling ended root's session");
});

t.test('users reset-totp of a field worker is refused and changes nothing', async (t) => {
  await invite('bob', 'field_worker', BOB_PASSWORD);
  const phone = await server.deviceLogin('bob', BOB_PASSWORD, '490154203237518');
  t.equal(phone.status, 200);
  const before = json<{ user: Record<string, unknown> }>(await cli(admin, ['--json', 'users', 'show', 'bob'])).user;
  const r = await cli(admin, ['users', 'reset-totp', 'bob']);
  t.equal(r.code, 1);
  t.equal(errorCode(r), 'AUTH_TOTP_NOT_ADMIN');
  t.notMatch(r.stdout, /authenticator was removed/);
  t.same(json<{ user: Record<string, unknown> }>(await cli(admin, ['--json', 'users', 'show', 'bob'])).user, before, 'bob unchanged');
  t.equal((await server.call('GET', '/v1/auth/session', undefined, phone.body['token'] as string)).status, 200, "bob's phone session lives on");
  const audit = json<{ events: unknown[] }>(await cli(admin, ['--json', 'audit', '--event', 'user.totp_reset']));
  t.equal(audit.events.length, 0);
});

t.test('users show shows a login lock and until when; users reset ends it', async (t) => {
  await invite('sam', 'field_worker', SAM_PASSWORD);
  for (let i = 0; i < 10; i += 1) await server.deviceLogin('sam', 'not the password of this user', '490154203237526');
  t.equal((await server.deviceLogin('sam', SAM_PASSWORD, '490154203237526')).body['code'], 'AUTH_ACCOUNT_LOCKED');

  const shown = json<{ user: { lock: { failures: number; until: string } } }>(await cli(admin, ['--json', 'users', 'show', 'sam']));
  t.equal(shown.user.lock.failures, 10);
  t.ok(Date.parse(shown.user.lock.until) > Date.now(), 'locked until a time to come');
  const human = await cli(admin, ['users', 'show', 'sam']);
  t.match(human.stdout, /^state\s+locked$/m);
  t.match(human.stdout, /^login lock\s+locked until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ after 10 failed logins/m);
  t.match((await cli(admin, ['users', 'list'])).stdout, /^sam\s+field_worker\s+locked/m);

  const reset = json<{ user: { lock: unknown }; reset: { token: string } }>(await cli(admin, ['--json', 'users', 'reset', 'sam']));
  t.equal(reset.user.lock, null);
  t.notMatch((await cli(admin, ['users', 'show', 'sam'])).stdout, /locked/, 'the reset ended the lock');
  const NEW_PASSWORD = 'granite bridges over sleepy rivers';
  t.equal((await server.call('POST', '/v1/auth/password', { resetToken: reset.reset.token, password: NEW_PASSWORD })).status, 200);
  t.equal((await server.deviceLogin('sam', NEW_PASSWORD, '490154203237526')).status, 200, 'sam logs in with the new password at once');
});

t.test('login checks the form of the code locally and sends nothing malformed', async (t) => {
  const other = join(dataDir, 'root-other');
  for (const typed of ['x', '12345', '1234567']) {
    const r = await cli(other, ['--json', 'login', ...trust, '--user', 'root'], [ADMIN_PASSWORD, typed]);
    t.equal(r.code, 1);
    t.equal(errorCode(r), 'ADMIN_CODE_MALFORMED', typed);
  }
  const audit = json<{ events: Array<{ details: { code?: string } }> }>(await cli(admin, ['--json', 'audit', '--event', 'login.failed', '--user', 'root']));
  t.equal(audit.events.length, 0, 'no failed login reached the server');
});

t.test('--stdin running out of lines says so (not "--stdin was not given")', async (t) => {
  const other = join(dataDir, 'root-other');
  const r = await cli(other, ['login', ...trust, '--user', 'root'], [ADMIN_PASSWORD]);
  t.equal(r.code, 1);
  t.equal(errorCode(r), 'ADMIN_STDIN_EXHAUSTED');
  t.notMatch(r.stderr, /--stdin was not given/);
  t.match(r.stderr, /6-digit code/, 'names the answer that was missing');
});

t.test('a malformed --pin or --server is a usage error (exit 2)', async (t) => {
  const other = join(dataDir, 'usage-home');
  const pin = await cli(other, ['--json', 'login', '--server', server.url, '--pin', '00:11', '--user', 'root'], [ADMIN_PASSWORD]);
  t.equal(pin.code, 2);
  t.equal(errorCode(pin), 'ADMIN_USAGE');
  t.match(pin.stderr, /--pin/);
  const url = await cli(other, ['--json', 'login', '--server', 'not a url', '--ca', server.certFile], [ADMIN_PASSWORD]);
  t.equal(url.code, 2);
  t.equal(errorCode(url), 'ADMIN_USAGE');
});

t.test('a login that stops during enrolment remembers the server, so "enrol" alone finishes it', async (t) => {
  await invite('third', 'admin', BOB_PASSWORD);
  const thirdHome = join(dataDir, 'third-home');
  const stopped = await cliEnrolling(thirdHome, ['--json', 'login', ...trust, '--user', 'third'], [BOB_PASSWORD], () => []);
  t.equal(errorCode(stopped), 'ADMIN_STDIN_EXHAUSTED', 'stdin ended where the first code was asked');
  t.notOk(existsSync(join(thirdHome, 'session.json')), 'no session');
  const config = readFileSync(join(thirdHome, 'config.json'), 'utf8');
  t.match(config, server.url);
  t.notOk(config.includes(BOB_PASSWORD), 'no password remembered');
  const enrolled = await cliEnrolling(thirdHome, ['--json', 'enrol'], [BOB_PASSWORD], (s) => [totp(s)]);
  t.equal(enrolled.code, 0, enrolled.stderr);
  t.match(json(enrolled), { user: { username: 'third', role: 'admin' } });
});

t.test('an unreachable server gets an admin hint, not the phone one', async (t) => {
  const other = join(dataDir, 'unreachable-home');
  const r = await cli(other, ['login', '--server', 'https://127.0.0.1:1', '--pin', server.fingerprint, '--user', 'root'], [ADMIN_PASSWORD]);
  t.equal(r.code, 1);
  t.equal(errorCode(r), 'TRANSPORT_UNREACHABLE');
  t.notMatch(r.stderr, /offline/);
  t.match(r.stderr, /that the server is running/);
});
