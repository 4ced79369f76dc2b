import { X509Certificate, createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { generateDeviceKeyPair } from '@fieldvault/crypto';
import { ADMIN_PASSWORD, CLI, STEP_MS, cli, cliEnrolling, errorCode, json, startServer, totp } from './helpers.js';

// Issue 7 step 2: every admin CLI command against a real server process (embedded store, TLS,
// admin TOTP required). One server for the file; the subtests build on each other in order.
const dataDir = t.testdir();
const server = await startServer(join(dataDir, 'server'));
t.teardown(() => server.stop());
const home = join(dataDir, 'admin-home');
const trust = ['--server', server.url, '--ca', server.certFile];
const AMINA_PASSWORD = 'amber lantern over quiet harbour';
const BOB_PASSWORD = 'seven copper kettles sing at dawn';
let secret = '';
let recoveryCodes: string[] = [];

t.test('init creates the first admin from the setup token, enrols TOTP and keeps the session in a 0600 file', async (t) => {
  const r = await cliEnrolling(home, ['--json', 'init', ...trust], [server.setupToken, ADMIN_PASSWORD], (s) => [totp(s)]);
  t.equal(r.code, 0, r.stderr);
  secret = r.secret;
  t.match(secret, /^[A-Z2-7]{32}$/, 'the secret is shown (on stderr)');
  // The entry names its server, so an admin of several servers tells their codes apart (admin audit s16, F10).
  t.match(r.stderr, /otpauth:\/\/totp\/fieldvault%20srv-admin-cli:admin\?issuer=fieldvault%20srv-admin-cli&/);
  const out = json<{ user: { username: string; role: string }; recoveryCodes: string[] }>(r);
  t.same(out.user, { username: 'admin', role: 'admin' });
  recoveryCodes = out.recoveryCodes;
  t.equal(recoveryCodes.length, 10);
  t.notOk(r.stdout.includes(secret), 'the secret never goes to stdout');
  t.equal(statSync(home).mode & 0o777, 0o700);
  const sessionFile = join(home, 'session.json');
  t.equal(statSync(sessionFile).mode & 0o777, 0o600);
  const stored = readFileSync(sessionFile, 'utf8') + readFileSync(join(home, 'config.json'), 'utf8');
  t.notOk(stored.includes(ADMIN_PASSWORD), 'no password on disk');
  t.notOk(stored.includes(secret), 'no TOTP secret on disk');
  t.notOk(stored.includes(server.setupToken), 'no setup token on disk');

  const again = await cli(home, ['--json', 'init', ...trust], [server.setupToken, ADMIN_PASSWORD, ADMIN_PASSWORD]);
  t.equal(again.code, 1);
  t.equal(errorCode(again), 'AUTH_SETUP_COMPLETED');
});

t.test('whoami shows the admin console session', async (t) => {
  const r = await cli(home, ['--json', 'whoami']);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r), { user: { username: 'admin', role: 'admin' }, console: true, server: server.url, serverId: 'srv-admin-cli' });
  const human = await cli(home, ['whoami']);
  t.match(human.stdout, /logged in as\s+admin \(admin\)/);
  t.match(human.stdout, /server id\s+srv-admin-cli\n/, 'the id init learned');
});

t.test('users add prints a one-time invitation; the user (not the admin) sets the password with it', async (t) => {
  const r = await cli(home, ['--json', 'users', 'add', 'amina', '--role', 'field_worker']);
  t.equal(r.code, 0, r.stderr);
  const { user, invitation } = json<{ user: { username: string; hasPassword: boolean }; invitation: { token: string } }>(r);
  t.equal(user.hasPassword, false);
  const human = await cli(home, ['users', 'add', 'yusuf', '--role', 'supervisor']);
  t.match(human.stdout, /One-time invitation token for yusuf/);
  t.match(human.stdout, /You never see or choose their password/);
  const set = await server.call('POST', '/v1/auth/password', { resetToken: invitation.token, password: AMINA_PASSWORD });
  t.equal(set.status, 200);
  const shown = json<{ user: { hasPassword: boolean; role: string } }>(await cli(home, ['--json', 'users', 'show', 'amina']));
  t.equal(shown.user.hasPassword, true);
  t.equal(shown.user.role, 'field_worker');
  const bad = await cli(home, ['users', 'add', 'zed', '--role', 'superuser']);
  t.equal(bad.code, 2, 'a role that does not exist is a usage error');
  t.match(bad.stderr, /ADMIN_USAGE/);
  const exists = await cli(home, ['--json', 'users', 'add', 'amina']);
  t.equal(errorCode(exists), 'USER_EXISTS');
});

t.test('users list shows a table and JSON', async (t) => {
  const table = await cli(home, ['users', 'list']);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^USER\s+ROLE\s+STATE\s+TOTP/m);
  t.match(table.stdout, /^amina\s+field_worker\s+active/m);
  t.match(table.stdout, /^yusuf\s+supervisor\s+invited/m);
  t.match(table.stdout, /^admin\s+admin\s+active\s+enrolled/m);
  const all = json<{ users: Array<{ username: string }>; nextCursor: null }>(await cli(home, ['--json', 'users', 'list', '--all', '--limit', '1']));
  t.same(all.users.map((u) => u.username).sort(), ['admin', 'amina', 'yusuf'], '--all follows the pages');
  t.equal(all.nextCursor, null);
});

t.test('users role, disable, enable and reset change the account on the server', async (t) => {
  const role = await cli(home, ['--json', 'users', 'role', 'amina', 'supervisor']);
  t.equal(json<{ user: { role: string } }>(role).user.role, 'supervisor');
  await cli(home, ['users', 'role', 'amina', 'field_worker']);

  const login = await server.deviceLogin('amina', AMINA_PASSWORD, '490154203237518');
  t.equal(login.status, 200, 'amina logs in from her phone');
  const phoneToken = login.body['token'] as string;
  const disabled = await cli(home, ['--json', 'users', 'disable', 'amina']);
  t.equal(json<{ user: { disabled: boolean } }>(disabled).user.disabled, true);
  t.equal((await server.call('GET', '/v1/auth/session', undefined, phoneToken)).status, 401, 'disabling ended her session');
  t.equal((await server.deviceLogin('amina', AMINA_PASSWORD, '490154203237518')).body['code'], 'USER_DISABLED');
  await cli(home, ['users', 'enable', 'amina']);

  const reset = await cli(home, ['--json', 'users', 'reset', 'amina']);
  t.equal(reset.code, 0, reset.stderr);
  const { user, reset: token } = json<{ user: { hasPassword: boolean }; reset: { token: string } }>(reset);
  t.equal(user.hasPassword, false, 'the old password no longer works');
  t.equal((await server.deviceLogin('amina', AMINA_PASSWORD, '490154203237519')).body['code'], 'AUTH_INVALID_CREDENTIALS');
  // Operator audit s10, item 10: a reset account is not "invited", and its old password is void.
  const shown = await cli(home, ['users', 'show', 'amina']);
  t.match(shown.stdout, /^state\s+reset pending$/m);
  t.match(shown.stdout, /^password set\s+— \(reset: the one set .* no longer works/m);
  t.match((await cli(home, ['users', 'list'])).stdout, /^amina\s+field_worker\s+reset pending/m);
  t.equal((await server.call('POST', '/v1/auth/password', { resetToken: token.token, password: AMINA_PASSWORD })).status, 200);
  t.equal((await server.deviceLogin('amina', AMINA_PASSWORD, '490154203237518')).status, 200);
});

t.test('devices list, show, rekey, unbind, retire and blacklist act on the server', async (t) => {
  const imei = '490154203237518';
  const other = '490154203237526';
  t.equal((await server.deviceLogin('amina', AMINA_PASSWORD, other)).status, 200);
  const list = json<{ devices: Array<{ imei: string; status: string; usersSeen: string[] }> }>(await cli(home, ['--json', 'devices', 'list']));
  t.same(list.devices.map((d) => d.imei).sort(), [imei, other]);
  const table = await cli(home, ['devices', 'list', '--status', 'active']);
  t.match(table.stdout, new RegExp(`^${imei}\\s+active\\s+yes`, 'm'));

  const before = json<{ device: { key: { keyId: string } } }>(await cli(home, ['--json', 'devices', 'show', imei])).device.key.keyId;
  const rekeyed = json<{ device: { key: { keyId: string } } }>(await cli(home, ['--json', 'devices', 'rekey', imei, '--reason', 'scheduled rotation']));
  t.not(rekeyed.device.key.keyId, before, 'a new key');
  const unbound = json<{ device: { bound: boolean } }>(await cli(home, ['--json', 'devices', 'unbind', imei]));
  t.equal(unbound.device.bound, false);

  const refused = await cli(home, ['--json', 'devices', 'blacklist', other], ['anything']);
  t.equal(refused.code, 1);
  t.equal(errorCode(refused), 'ADMIN_NOT_CONFIRMED', 'a wiping action needs --yes without a terminal');
  t.equal(json<{ device: { status: string } }>(await cli(home, ['--json', 'devices', 'show', other])).device.status, 'active', 'nothing changed');
  const black = await cli(home, ['--json', 'devices', 'blacklist', other, '--yes', '--reason', 'stolen']);
  t.equal(black.code, 0, black.stderr);
  t.match(json(black), { device: { status: 'blacklisted', statusChangedBy: 'admin' } });
  t.equal((await server.deviceLogin('amina', AMINA_PASSWORD, other)).body['code'], 'DEVICE_BLACKLISTED', 'the stolen phone is told to wipe');
  // Operator audit s10, item 4: the phone wiped its device key; after a reinstate it logs in with a new one.
  const back = await cli(home, ['devices', 'reinstate', other, '--reason', 'found']);
  t.equal(back.code, 0, back.stderr);
  t.match(back.stdout, /^bound\s+no \(the next login enrols its device key\)$/m);
  t.match(back.stdout, 'Its device key binding was cleared too (as "devices unbind" does)');
  t.equal((await server.deviceLogin('amina', AMINA_PASSWORD, other, generateDeviceKeyPair())).status, 200, 'the wiped phone enrols a new device key');
  const reinstatedAudit = json<{ events: Array<{ details: Record<string, unknown> }> }>(await cli(home, ['--json', 'audit', '--device', other, '--event', 'device.reinstated']));
  t.match(reinstatedAudit.events, [{ details: { reason: 'found', previousStatus: 'blacklisted', bindingCleared: true } }]);
  const retired = await cli(home, ['--json', 'devices', 'retire', imei, '-y']);
  t.match(json(retired), { device: { status: 'retired' } });
  const reinstated = await cli(home, ['--json', 'devices', 'reinstate', imei]);
  t.match(json(reinstated), { device: { status: 'active' }, bindingCleared: false });
  const bad = await cli(home, ['devices', 'show', '12345']);
  t.equal(bad.code, 2);
  const missing = await cli(home, ['--json', 'devices', 'show', '999999999999999']);
  t.equal(errorCode(missing), 'DEVICE_NOT_FOUND');
});

t.test('audit shows every admin action with the acting admin, filtered by user, device, event and time', async (t) => {
  const byUser = json<{ events: Array<{ event: string; actor: string | null; username: string | null }> }>(
    await cli(home, ['--json', 'audit', '--user', 'amina', '--limit', '100']),
  );
  const adminActions = byUser.events.filter((e) => e.actor === 'admin').map((e) => e.event);
  for (const ev of ['user.created', 'user.updated', 'user.password_reset']) t.ok(adminActions.includes(ev), `${ev} by admin`);
  const times = byUser.events.map((e) => (e as unknown as { at: string }).at);
  t.same(times, [...times].sort(), 'oldest first, like tail');

  const byDevice = json<{ events: Array<{ event: string; actor: string | null; details: Record<string, unknown> }> }>(
    await cli(home, ['--json', 'audit', '--device', '490154203237526', '--event', 'device.blacklisted']),
  );
  t.equal(byDevice.events.length, 1);
  t.match(byDevice.events[0], { actor: 'admin', details: { reason: 'stolen' } });
  const rekey = json<{ events: Array<{ actor: string }> }>(await cli(home, ['--json', 'audit', '--event', 'key.rekeyed']));
  t.equal(rekey.events[0]?.actor, 'admin');

  const future = json<{ events: unknown[] }>(await cli(home, ['--json', 'audit', '--since', '2999-01-01']));
  t.equal(future.events.length, 0);
  const recent = json<{ events: unknown[] }>(await cli(home, ['--json', 'audit', '--since', '1h', '--until', '2999-01-01T00:00:00Z', '-n', '3']));
  t.equal(recent.events.length, 3, '--limit takes the latest n');
  const table = await cli(home, ['audit', '--event', 'login.ok', '-n', '5']);
  t.match(table.stdout, /^TIME\s+EVENT\s+ACTOR\s+USER\s+DEVICE\s+IP\s+DETAILS/m);
  t.match(table.stdout, /login\.ok\s+admin\s+admin\s+—.*kind=console/);
  const bad = await cli(home, ['audit', '--since', 'yesterday']);
  t.equal(bad.code, 2);
  // Operator audit s10, item 10: an unknown event type is refused here, with the known ones.
  const unknown = await cli(home, ['audit', '--event', 'no.such.event']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /error ADMIN_USAGE: .*--event: no event type "no\.such\.event"; the event types are setup\.admin_created, login\.ok, login\.failed, .*device\.reinstated/);
  const text = JSON.stringify(json(await cli(home, ['--json', 'audit', '-n', '500'])));
  for (const s of [ADMIN_PASSWORD, AMINA_PASSWORD, secret, server.setupToken, ...recoveryCodes]) t.notOk(text.includes(s), 'no secret in the audit log');
});

t.test('audit --follow prints new events as they happen, until Ctrl-C', async (t) => {
  const child = spawn(process.execPath, [CLI, '--home', home, '--json', 'audit', '--follow', '--interval', '0.2', '--event', 'user.created', '-n', '1'], {
    env: { PATH: process.env['PATH'] ?? '', HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  let exited = false;
  const closed = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      exited = true;
      resolve(code);
    }),
  );
  const until = async (re: RegExp): Promise<void> => {
    while (!re.test(out)) {
      if (exited) throw new Error(`audit --follow ended early:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until(/"username":"yusuf"/);
  await cli(home, ['users', 'add', 'followed']);
  await until(/"username":"followed"/);
  child.kill('SIGINT');
  t.equal(await closed, 0, 'Ctrl-C ends --follow cleanly');
  const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { username: string; actor: string });
  t.same(lines.map((l) => l.username), ['yusuf', 'followed'], 'each event once, one JSON object per line');
});

// Admin audit s16, F11 and F1: what acts on this server only says so where the admin acts (the help
// and the success output), and disabling a user does not claim to reach the phone.
t.test('per-server actions say in their help and output that they act on this server only', async (t) => {
  const help = (args: string[]): string => spawnSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8' }).stdout.replace(/\s+/g, ' ');
  t.match(help(['users', 'disable']), 'this server only: repeat it on every server the user uses');
  t.match(help(['users', 'disable']), 'phones keep their offline access (blacklist or retire the phones to end it)');
  t.notMatch(help(['users', 'disable']), 'cannot log in', 'no claim that the user is locked out everywhere');
  t.match(help(['users', 'reset']), 'this server only: repeat it on every server the user uses, and they set the same new password on each');
  for (const verb of ['blacklist', 'retire']) t.match(help(['devices', verb]), 'this server only: repeat it on every server the phone syncs with', verb);
  t.notMatch(help(['devices', 'rekey']), 'this server only', 'not on actions that need no repeating');

  const disabled = await cli(home, ['users', 'disable', 'yusuf']);
  t.equal(disabled.code, 0, disabled.stderr);
  t.match(disabled.stdout, 'yusuf is disabled: their sessions here have ended and their logins here are refused.');
  t.match(disabled.stdout, /keep their offline access to the records on them: to end it, blacklist or retire\s+those phones/);
  t.match(disabled.stdout, `Done on server srv-admin-cli (${server.url}) only: repeat "fieldvault-admin users disable yusuf" on every server yusuf uses.`);
  t.equal((await cli(home, ['users', 'enable', 'yusuf'])).code, 0);
  const reset = await cli(home, ['users', 'reset', 'yusuf']);
  t.equal(reset.code, 0, reset.stderr);
  t.match(reset.stdout, `Done on server srv-admin-cli (${server.url}) only: repeat "fieldvault-admin users reset yusuf" on every server yusuf uses.`);
  t.match(reset.stdout, 'yusuf sets the same new password on each');

  const imei = '490154203237518';
  for (const verb of ['blacklist', 'retire']) {
    const r = await cli(home, ['devices', verb, imei, '--yes']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, `Done on server srv-admin-cli (${server.url}) only: repeat "fieldvault-admin devices ${verb} ${imei}" on every server the phone syncs with.`, verb);
    t.equal((await cli(home, ['devices', 'reinstate', imei])).code, 0);
  }
  const rekey = await cli(home, ['devices', 'rekey', imei]);
  t.equal(rekey.code, 0, rekey.stderr);
  t.notMatch(rekey.stdout, 'only: repeat', 'a rekey is not repeated elsewhere');
});

t.test('login: a wrong or replayed code is refused; a fresh code or an unused recovery code works once', async (t) => {
  const other = join(dataDir, 'second-home');
  const login = (lines: string[]) => cli(other, ['--json', 'login', ...trust, '--user', 'admin'], lines);
  const wrongCode = totp(secret) === '000000' ? '000001' : '000000';
  t.equal(errorCode(await login([ADMIN_PASSWORD, wrongCode])), 'AUTH_TOTP_INVALID');
  t.equal(errorCode(await login(['not the right password at all', totp(secret)])), 'AUTH_INVALID_CREDENTIALS');

  // One step ahead is inside the drift window and newer than any step used so far.
  const fresh = totp(secret, Date.now() + STEP_MS);
  const ok = await login([ADMIN_PASSWORD, fresh]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(json(ok), { user: { username: 'admin' } });
  t.equal(statSync(join(other, 'session.json')).mode & 0o777, 0o600);
  t.equal(errorCode(await login([ADMIN_PASSWORD, fresh])), 'AUTH_TOTP_INVALID', 'the same code again is a replay');
  t.equal(errorCode(await login([ADMIN_PASSWORD, totp(secret)])), 'AUTH_TOTP_INVALID', 'a code older than the last one used is refused');

  const recovery = recoveryCodes[0] as string;
  const byRecovery = await cli(other, ['--json', 'login'], [ADMIN_PASSWORD, recovery]);
  t.equal(byRecovery.code, 0, byRecovery.stderr);
  t.equal(errorCode(await cli(other, ['--json', 'login'], [ADMIN_PASSWORD, recovery])), 'AUTH_TOTP_INVALID', 'a recovery code works once');
  const users = await cli(other, ['--json', 'users', 'list']);
  t.equal(users.code, 0, 'the remembered server and user are used');
});

// Admins know servers by id (several behind one name, or moved to another URL): the CLI learns it at
// login and names it where it acts; a config from before it did keeps working and names the URL.
t.test('login remembers the server id: whoami and success lines name it; a config without it names the URL', async (t) => {
  const other = join(dataDir, 'second-home');
  const configFile = join(other, 'config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { server: Record<string, unknown>; username: string };
  t.equal(config.server['id'], 'srv-admin-cli', 'the console login told the id; it is kept beside the URL');
  t.equal(statSync(configFile).mode & 0o777, 0o600);
  t.match(json(await cli(other, ['--json', 'whoami'])), { server: server.url, serverId: 'srv-admin-cli' });
  t.match((await cli(other, ['whoami'])).stdout, /server\s+https:\S+\nserver id\s+srv-admin-cli\n/);
  const named = await cli(other, ['users', 'disable', 'yusuf']);
  t.equal(named.code, 0, named.stderr);
  t.match(named.stdout, `Done on server srv-admin-cli (${server.url}) only: repeat "fieldvault-admin users disable yusuf" on every server yusuf uses.`);
  t.equal((await cli(other, ['users', 'enable', 'yusuf'])).code, 0);

  // A config written before the CLI kept the id (and no login since): it loads, and the URL is named.
  const { id: _id, ...oldServer } = config.server;
  writeFileSync(configFile, JSON.stringify({ server: oldServer, username: config.username }), { mode: 0o600 });
  const old = await cli(other, ['users', 'disable', 'yusuf']);
  t.equal(old.code, 0, old.stderr);
  t.match(old.stdout, `Done on ${server.url} only: repeat "fieldvault-admin users disable yusuf" on every server yusuf uses.`);
  t.equal((await cli(other, ['users', 'enable', 'yusuf'])).code, 0);
  t.match(json(await cli(other, ['--json', 'whoami'])), { server: server.url, serverId: null });
  t.notMatch((await cli(other, ['whoami'])).stdout, 'server id', 'no id row when it is not known');

  // The next login learns it again.
  const again = await cli(other, ['--json', 'login'], [ADMIN_PASSWORD, recoveryCodes[3] as string]);
  t.equal(again.code, 0, again.stderr);
  t.match(json(again), { server: server.url, serverId: 'srv-admin-cli' });
  t.equal((JSON.parse(readFileSync(configFile, 'utf8')) as { server: { id?: string } }).server.id, 'srv-admin-cli');

  // The id is printed: one that is not a server id makes the config corrupt, not the output.
  writeFileSync(configFile, JSON.stringify({ server: { ...oldServer, id: 'Not an id!' }, username: config.username }), { mode: 0o600 });
  t.equal(errorCode(await cli(other, ['--json', 'whoami'])), 'ADMIN_CONFIG_CORRUPT');
  writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
});

t.test('a new admin is invited, enrols TOTP at first login, and can be reset by another admin', async (t) => {
  const invited = json<{ invitation: { token: string } }>(await cli(home, ['--json', 'users', 'add', 'bob', '--role', 'admin']));
  t.equal((await server.call('POST', '/v1/auth/password', { resetToken: invited.invitation.token, password: BOB_PASSWORD })).status, 200);
  const phone = await server.deviceLogin('bob', BOB_PASSWORD, '490154203237534');
  t.equal(phone.body['code'], 'AUTH_TOTP_ENROLMENT_REQUIRED', 'no admin session anywhere before TOTP');

  const bobHome = join(dataDir, 'bob-home');
  // Only the password before the secret is shown: no code is asked of an admin who has no authenticator.
  const first = await cliEnrolling(bobHome, ['--json', 'login', ...trust, '--user', 'bob'], [BOB_PASSWORD], (s) => [totp(s)]);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stderr, /no authenticator yet: enrolling/);
  t.equal(json<{ recoveryCodes: string[] }>(first).recoveryCodes.length, 10);
  t.equal(json<{ user: { totp: string } }>(await cli(home, ['--json', 'users', 'show', 'bob'])).user.totp, 'enrolled');

  const reset = await cli(home, ['--json', 'users', 'reset-totp', 'bob']);
  t.equal(json<{ user: { totp: string } }>(reset).user.totp, 'none');
  const ended = await cli(bobHome, ['--json', 'users', 'list']);
  t.equal(errorCode(ended), 'ADMIN_NOT_LOGGED_IN', "bob's session ended");
  const audit = json<{ events: Array<{ actor: string; username: string }> }>(await cli(home, ['--json', 'audit', '--event', 'user.totp_reset']));
  t.match(audit.events[0], { actor: 'admin', username: 'bob' });
  const again = await cliEnrolling(bobHome, ['--json', 'enrol'], [BOB_PASSWORD], (s) => [totp(s)]);
  t.equal(again.code, 0, again.stderr);
  t.not(again.secret, first.secret, 'a new secret');
});

t.test('logout ends the session on the server and deletes the token file', async (t) => {
  const token = (JSON.parse(readFileSync(join(home, 'session.json'), 'utf8')) as { token: string }).token;
  const r = await cli(home, ['logout']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Logged out/);
  t.equal((await server.call('GET', '/v1/users', undefined, token)).status, 401, 'the token is dead on the server');
  const after = await cli(home, ['--json', 'users', 'list']);
  t.equal(errorCode(after), 'ADMIN_NOT_LOGGED_IN');
  t.equal((await cli(home, ['logout'])).code, 0, 'logging out twice is fine');
});

t.test('the CLI refuses unsafe or missing configuration with a catalogued code', async (t) => {
  const empty = join(dataDir, 'empty-home');
  t.equal(errorCode(await cli(empty, ['--json', 'users', 'list'])), 'ADMIN_NOT_LOGGED_IN');
  t.equal(errorCode(await cli(empty, ['--json', 'login'], [ADMIN_PASSWORD, '123456'])), 'ADMIN_NO_SERVER');
  const pinned = await cli(empty, ['--json', 'login', '--server', server.url, '--pin', 'AB'.repeat(32), '--user', 'admin'], [ADMIN_PASSWORD, '123456']);
  t.equal(errorCode(pinned), 'TRANSPORT_TLS_UNTRUSTED', 'a wrong pin: nothing is sent');
  const noTrust = await cli(empty, ['--json', 'login', '--server', server.url, '--user', 'admin'], [ADMIN_PASSWORD, '123456']);
  t.equal(errorCode(noTrust), 'TRANSPORT_TLS_UNTRUSTED', 'a self-signed server is not trusted without --ca or --pin');
  const byPin = await cli(empty, ['--json', 'login', '--server', server.url, '--pin', server.fingerprint, '--user', 'admin'], [ADMIN_PASSWORD, recoveryCodes[1] as string]);
  t.equal(byPin.code, 0, `the printed fingerprint is enough: ${byPin.stderr}`);
  // The public-key pin the banner prints (sha256//…) is accepted too; another key's is refused.
  const keyPin = `sha256//${createHash('sha256').update(new X509Certificate(readFileSync(server.certFile)).publicKey.export({ type: 'spki', format: 'der' })).digest('base64')}`;
  const byKey = await cli(join(dataDir, 'key-pin-home'), ['--json', 'login', '--server', server.url, '--pin', keyPin, '--user', 'admin'], [ADMIN_PASSWORD, recoveryCodes[2] as string]);
  t.equal(byKey.code, 0, `a public-key pin is enough: ${byKey.stderr}`);
  const otherKey = `sha256//${createHash('sha256').update('another key').digest('base64')}`;
  t.equal(errorCode(await cli(join(dataDir, 'key-pin-home-2'), ['--json', 'login', '--server', server.url, '--pin', otherKey, '--user', 'admin'], [ADMIN_PASSWORD, '123456'])), 'TRANSPORT_TLS_UNTRUSTED', 'another key pin: nothing is sent');
  const plain = await cli(empty, ['--json', 'login', '--server', server.url.replace('https:', 'http:'), '--user', 'admin'], [ADMIN_PASSWORD, '123456']);
  t.equal(errorCode(plain), 'ADMIN_USAGE', 'no plain http');
  t.equal(plain.code, 2, 'a command-line mistake');
  chmodSync(join(empty, 'session.json'), 0o644);
  t.equal(errorCode(await cli(empty, ['--json', 'users', 'list'])), 'ADMIN_CONFIG_INSECURE');
  const noInput = await cli(empty, ['--json', 'login', '--server', server.url, '--ca', server.certFile]);
  t.equal(errorCode(noInput), 'ADMIN_INPUT_REQUIRED', 'no terminal and no --stdin');
});
