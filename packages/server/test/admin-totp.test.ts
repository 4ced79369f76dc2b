import t from 'tap';
import type { FastifyInstance } from 'fastify';
import {
  ADMIN_PASSWORD,
  SETUP_TOKEN,
  bearer,
  createUser,
  json,
  login,
  loginRaw,
  makeApp,
  newDevice,
  startStore,
  type Overrides,
} from './helpers.js';
import { codeAt, enrol, post, setupEnrolledAdmin } from './totp-helpers.js';

// Issue 7 step 1: TOTP two-factor authentication for admin accounts, the admin console login,
// admin session lifetime. Codes are computed here with otpauth from the secret the server shows.
const couch = await startStore(t);

const STEP = 30_000;

async function totpApp(t: Parameters<typeof makeApp>[0], overrides: Overrides = {}) {
  return makeApp(t, couch, { adminTotp: { required: true }, ...overrides });
}

t.test('an admin without TOTP gets no session while TOTP is required', async (t) => {
  const { app } = await totpApp(t);
  await post(app, '/v1/setup/admin', { setupToken: SETUP_TOKEN, username: 'admin', password: ADMIN_PASSWORD });
  const device = await loginRaw(app, newDevice(), { username: 'admin', password: ADMIN_PASSWORD });
  t.equal(device.statusCode, 403);
  t.equal(json(device)['code'], 'AUTH_TOTP_ENROLMENT_REQUIRED');
  const console = await post(app, '/v1/admin/login', { username: 'admin', password: ADMIN_PASSWORD, code: '123456' });
  t.equal(json(console)['code'], 'AUTH_TOTP_ENROLMENT_REQUIRED');
});

t.test('each server names its own authenticator entry: issuer and label carry the server id (audit s16 F10)', async (t) => {
  const { app } = await totpApp(t, { serverId: 'fv-b.east' });
  await post(app, '/v1/setup/admin', { setupToken: SETUP_TOKEN, username: 'admin', password: ADMIN_PASSWORD });
  const started = json(await post(app, '/v1/admin/totp/enrol', { username: 'admin', password: ADMIN_PASSWORD })) as { otpauthUri: string; issuer: string };
  t.match(started.otpauthUri, /^otpauth:\/\/totp\/fieldvault%20fv-b\.east:admin\?/, 'label: "fieldvault fv-b.east:admin"');
  t.equal(new URL(started.otpauthUri).searchParams.get('issuer'), 'fieldvault fv-b.east');
  t.equal(started.issuer, 'fieldvault fv-b.east');
});

t.test('enrolment shows the secret once, a wrong first code is refused, the right one confirms and opens a console session', async (t) => {
  const { app, clock, logs } = await totpApp(t);
  await post(app, '/v1/setup/admin', { setupToken: SETUP_TOKEN, username: 'admin', password: ADMIN_PASSWORD });
  const started = await post(app, '/v1/admin/totp/enrol', { username: 'admin', password: ADMIN_PASSWORD });
  t.equal(started.statusCode, 200);
  const { secret, otpauthUri, issuer } = json(started) as { secret: string; otpauthUri: string; issuer: string };
  t.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
  t.ok(otpauthUri.includes(`secret=${secret}`));
  // Audit s16 F10: the entry names its server (makeApp's id is server-a), so entries of several servers differ.
  t.match(otpauthUri, /^otpauth:\/\/totp\/fieldvault%20server-a:admin\?/);
  t.equal(new URL(otpauthUri).searchParams.get('issuer'), 'fieldvault server-a');
  t.equal(issuer, 'fieldvault server-a');

  const right = codeAt(secret, clock.now());
  const wrong = right === '000000' ? '000001' : '000000';
  const bad = await post(app, '/v1/admin/totp/confirm', { username: 'admin', password: ADMIN_PASSWORD, code: wrong });
  t.equal(bad.statusCode, 401);
  t.equal(json(bad)['code'], 'AUTH_TOTP_INVALID');
  const wrongPassword = await post(app, '/v1/admin/totp/confirm', { username: 'admin', password: 'not the admin password at all', code: right });
  t.equal(json(wrongPassword)['code'], 'AUTH_INVALID_CREDENTIALS');

  const ok = await post(app, '/v1/admin/totp/confirm', { username: 'admin', password: ADMIN_PASSWORD, code: right });
  t.equal(ok.statusCode, 200);
  const body = json(ok) as { recoveryCodes: string[]; session: { token: string; user: unknown } };
  t.equal(body.recoveryCodes.length, 10);
  t.equal(new Set(body.recoveryCodes).size, 10);
  for (const c of body.recoveryCodes) t.match(c, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
  t.same(body.session.user, { username: 'admin', role: 'admin' });
  const users = await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(body.session.token) });
  t.equal(users.statusCode, 200);
  t.equal((json(users)['users'] as Array<{ totp: string }>)[0]?.totp, 'enrolled');

  const again = await post(app, '/v1/admin/totp/enrol', { username: 'admin', password: ADMIN_PASSWORD });
  t.equal(again.statusCode, 409);
  t.equal(json(again)['code'], 'AUTH_TOTP_ALREADY_ENROLLED', 'a password alone cannot replace an enrolled authenticator');

  // Nothing secret is kept in the clear or logged.
  const stored = await app.repo.getUser('admin');
  t.notOk(JSON.stringify(stored).includes(secret), 'the secret is stored sealed');
  for (const c of body.recoveryCodes) t.notOk(JSON.stringify(stored).includes(c), 'recovery codes are stored as digests');
  const logText = logs.text();
  t.notOk(logText.includes(secret));
  t.notOk(body.recoveryCodes.some((c) => logText.includes(c)));
  const audit = await app.inject({ method: 'GET', url: '/v1/audit?username=admin', headers: bearer(body.session.token) });
  const events = (json(audit)['events'] as Array<{ event: string }>).map((e) => e.event);
  t.ok(events.includes('user.totp_enrolment_started'));
  t.ok(events.includes('user.totp_enrolled'));
  t.notOk(JSON.stringify(json(audit)).includes(secret));
});

t.test('console login: a wrong code is refused, a fresh code works once, a replayed or older code is refused', async (t) => {
  const { app, clock } = await totpApp(t);
  const { secret } = await setupEnrolledAdmin(app, clock);
  const creds = { username: 'admin', password: ADMIN_PASSWORD };

  // The enrolment used this step's code: the same code again is a replay.
  const replay = await post(app, '/v1/admin/login', { ...creds, code: codeAt(secret, clock.now()) });
  t.equal(replay.statusCode, 401);
  t.equal(json(replay)['code'], 'AUTH_TOTP_INVALID');

  clock.advance(STEP);
  const fresh = codeAt(secret, clock.now());
  const wrong = fresh === '111111' ? '222222' : '111111';
  t.equal(json(await post(app, '/v1/admin/login', { ...creds, code: wrong }))['code'], 'AUTH_TOTP_INVALID');
  const ok = await post(app, '/v1/admin/login', { ...creds, code: fresh });
  t.equal(ok.statusCode, 200);
  t.match(json(ok), { user: { username: 'admin', role: 'admin' } });
  const again = await post(app, '/v1/admin/login', { ...creds, code: fresh });
  t.equal(json(again)['code'], 'AUTH_TOTP_INVALID', 'the same code twice is refused');

  // A code of the previous step is still inside the drift window but older than the last used one.
  clock.advance(STEP);
  const previous = codeAt(secret, clock.now() - STEP);
  t.equal(json(await post(app, '/v1/admin/login', { ...creds, code: previous }))['code'], 'AUTH_TOTP_INVALID');
  // One step of drift either side is accepted (the phone's clock is a little behind).
  t.equal((await post(app, '/v1/admin/login', { ...creds, code: codeAt(secret, clock.now() + STEP) })).statusCode, 200);
  // Far outside the window: refused.
  clock.advance(10 * STEP);
  t.equal(json(await post(app, '/v1/admin/login', { ...creds, code: codeAt(secret, clock.now() - 5 * STEP) }))['code'], 'AUTH_TOTP_INVALID');
});

t.test('two logins racing with one code: exactly one gets a session', async (t) => {
  const { app, clock } = await totpApp(t);
  const { secret } = await setupEnrolledAdmin(app, clock);
  clock.advance(STEP);
  const code = codeAt(secret, clock.now());
  const results = await Promise.all(
    Array.from({ length: 4 }, () => post(app, '/v1/admin/login', { username: 'admin', password: ADMIN_PASSWORD, code })),
  );
  t.equal(results.filter((r) => r.statusCode === 200).length, 1);
  t.same(
    results.filter((r) => r.statusCode !== 200).map((r) => json(r)['code']),
    ['AUTH_TOTP_INVALID', 'AUTH_TOTP_INVALID', 'AUTH_TOTP_INVALID'],
  );
});

t.test('a recovery code works once, and its use is audited', async (t) => {
  const { app, clock } = await totpApp(t);
  const { recoveryCodes, token } = await setupEnrolledAdmin(app, clock);
  const code = recoveryCodes[3] as string;
  const creds = { username: 'admin', password: ADMIN_PASSWORD };
  const ok = await post(app, '/v1/admin/login', { ...creds, code: code.toUpperCase() });
  t.equal(ok.statusCode, 200, 'case and dashes do not matter');
  const again = await post(app, '/v1/admin/login', { ...creds, code });
  t.equal(json(again)['code'], 'AUTH_TOTP_INVALID', 'single use');
  const made = `${code.slice(0, -1)}${code.endsWith('a') ? 'b' : 'a'}`;
  t.equal(json(await post(app, '/v1/admin/login', { ...creds, code: made }))['code'], 'AUTH_TOTP_INVALID');
  const audit = await app.inject({ method: 'GET', url: '/v1/audit?event=user.recovery_code_used', headers: bearer(token) });
  const events = json(audit)['events'] as Array<{ details: { remaining: number } }>;
  t.equal(events.length, 1);
  t.equal(events[0]?.details.remaining, 9);
});

t.test('an admin logging in from a device needs a code too; field workers do not', async (t) => {
  const { app, clock } = await totpApp(t);
  const { secret, token } = await setupEnrolledAdmin(app, clock);
  const device = newDevice();
  const without = await loginRaw(app, device, { username: 'admin', password: ADMIN_PASSWORD });
  t.equal(without.statusCode, 401);
  t.equal(json(without)['code'], 'AUTH_TOTP_REQUIRED');
  clock.advance(STEP);
  const withCode = await loginRaw(app, device, { username: 'admin', password: ADMIN_PASSWORD, totp: codeAt(secret, clock.now()) });
  t.equal(withCode.statusCode, 200);

  const password = await createUser(app, token, 'alice');
  const alice = await loginRaw(app, newDevice(), { username: 'alice', password });
  t.equal(alice.statusCode, 200, 'a field worker logs in with the password alone');
  const console = await post(app, '/v1/admin/login', { username: 'alice', password, code: '123456' });
  t.equal(json(console)['code'], 'AUTH_TOTP_NOT_ADMIN');
  const enrolAlice = await post(app, '/v1/admin/totp/enrol', { username: 'alice', password });
  t.equal(json(enrolAlice)['code'], 'AUTH_TOTP_NOT_ADMIN');
});

t.test('wrong codes count as failed logins: the account locks even for someone who knows the password', async (t) => {
  const { app, clock } = await totpApp(t, { throttle: { maxFailures: 3, lockSeconds: 60, maxLockSeconds: 3600 } });
  const { secret } = await setupEnrolledAdmin(app, clock);
  clock.advance(STEP);
  const right = codeAt(secret, clock.now());
  const wrong = right === '999999' ? '999998' : '999999';
  for (let i = 0; i < 3; i++) {
    t.equal(json(await post(app, '/v1/admin/login', { username: 'admin', password: ADMIN_PASSWORD, code: wrong }))['code'], 'AUTH_TOTP_INVALID');
  }
  const locked = await post(app, '/v1/admin/login', { username: 'admin', password: ADMIN_PASSWORD, code: right });
  t.equal(locked.statusCode, 429);
  t.equal(json(locked)['code'], 'AUTH_ACCOUNT_LOCKED');
  clock.advance(61_000);
  const later = await post(app, '/v1/admin/login', { username: 'admin', password: ADMIN_PASSWORD, code: codeAt(secret, clock.now()) });
  t.equal(later.statusCode, 200, 'after the lock the right code works');
});

t.test('a console session reaches the admin API only, and expires after the admin session lifetime', async (t) => {
  const { app, clock } = await totpApp(t, { session: { ttlSeconds: 43_200, adminTtlSeconds: 600 } });
  const { token } = await setupEnrolledAdmin(app, clock);
  const who = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(token) });
  t.equal(who.statusCode, 200);
  t.match(json(who), { user: { username: 'admin', role: 'admin' }, imei: null, console: true });
  t.equal(Date.parse(json(who)['expiresAt'] as string), clock.now() + 600_000);
  t.equal((await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(token) })).statusCode, 200);
  const pull = await app.inject({ method: 'GET', url: '/v1/sync/pull', headers: bearer(token) });
  t.equal(pull.statusCode, 403);
  t.equal(json(pull)['code'], 'AUTH_FORBIDDEN', 'no device: no sync');
  clock.advance(600_000);
  const expired = await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(token) });
  t.equal(json(expired)['code'], 'SESSION_INVALID');
});

t.test('an admin device session also lives the admin session lifetime', async (t) => {
  const { app, clock } = await totpApp(t, { session: { ttlSeconds: 43_200, adminTtlSeconds: 900 } });
  const { secret } = await setupEnrolledAdmin(app, clock);
  clock.advance(STEP);
  const s = await login(app, newDevice(), { username: 'admin', password: ADMIN_PASSWORD, totp: codeAt(secret, clock.now()) });
  t.equal(Date.parse(s.expiresAt), clock.now() + 900_000);
});

t.test('logout ends a console session', async (t) => {
  const { app, clock } = await totpApp(t);
  const { token } = await setupEnrolledAdmin(app, clock);
  t.equal((await post(app, '/v1/auth/logout', {}, token)).statusCode, 204);
  t.equal(json(await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(token) }))['code'], 'SESSION_INVALID');
});

t.test('promoting a user to admin ends their sessions (opened without a second factor)', async (t) => {
  const { app, clock } = await totpApp(t);
  const { token } = await setupEnrolledAdmin(app, clock);
  const password = await createUser(app, token, 'bob');
  const bob = await login(app, newDevice(), { username: 'bob', password });
  const promoted = await app.inject({ method: 'PATCH', url: '/v1/users/bob', headers: bearer(token), payload: { role: 'admin' } });
  t.equal(promoted.statusCode, 200);
  t.equal(json(promoted)['user'] && (json(promoted)['user'] as { totp: string }).totp, 'none');
  const after = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(bob.token) });
  t.equal(json(after)['code'], 'SESSION_INVALID');
  const again = await loginRaw(app, newDevice(), { username: 'bob', password });
  t.equal(json(again)['code'], 'AUTH_TOTP_ENROLMENT_REQUIRED', 'the new admin must enrol first');
  const enrolled = await enrol(app, clock, 'bob', password);
  t.ok(enrolled.token.length > 0);
});

t.test('another admin can reset a lost authenticator: sessions end and the admin enrols again', async (t) => {
  const { app, clock } = await totpApp(t);
  const first = await setupEnrolledAdmin(app, clock);
  const password = await createUser(app, first.token, 'carol', 'supervisor');
  await app.inject({ method: 'PATCH', url: '/v1/users/carol', headers: bearer(first.token), payload: { role: 'admin' } });
  const carol = await enrol(app, clock, 'carol', password);
  const reset = await post(app, '/v1/users/carol/totp-reset', {}, first.token);
  t.equal(reset.statusCode, 200);
  t.equal((json(reset)['user'] as { totp: string }).totp, 'none');
  t.equal(json(await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(carol.token) }))['code'], 'SESSION_INVALID');
  clock.advance(STEP);
  t.equal(
    json(await post(app, '/v1/admin/login', { username: 'carol', password, code: codeAt(carol.secret, clock.now()) }))['code'],
    'AUTH_TOTP_ENROLMENT_REQUIRED',
    'the old authenticator no longer works',
  );
  const fresh = await enrol(app, clock, 'carol', password);
  t.not(fresh.secret, carol.secret);
  const audit = await app.inject({ method: 'GET', url: '/v1/audit?event=user.totp_reset', headers: bearer(fresh.token) });
  t.match((json(audit)['events'] as unknown[])[0], { actor: 'admin', username: 'carol' }, 'the acting admin is recorded');
  const byNonAdmin = await post(app, '/v1/users/admin/totp-reset', {});
  t.equal(json(byNonAdmin)['code'], 'SESSION_INVALID');
});

t.test('no admin route lets an admin choose or see a user password', async (t) => {
  const { app, clock } = await totpApp(t);
  const { token } = await setupEnrolledAdmin(app, clock);
  const pw = 'an admin chosen password for dave';
  const create = await post(app, '/v1/users', { username: 'dave', role: 'field_worker', password: pw }, token);
  t.equal(json(create)['code'], 'INPUT_INVALID');
  await post(app, '/v1/users', { username: 'dave', role: 'field_worker' }, token);
  const patch = await app.inject({ method: 'PATCH', url: '/v1/users/dave', headers: bearer(token), payload: { password: pw } });
  t.equal(json(patch)['code'], 'INPUT_INVALID');
  const reset = await post(app, '/v1/users/dave/password-reset', { password: pw }, token);
  t.equal(json(reset)['code'], 'INPUT_INVALID');
  const shown = await app.inject({ method: 'GET', url: '/v1/users/dave', headers: bearer(token) });
  t.notOk('password' in (json(shown)['user'] as object) || 'passwordHash' in (json(shown)['user'] as object));
});
