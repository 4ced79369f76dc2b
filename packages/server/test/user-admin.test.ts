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

// Operations audit of user administration: the last admin who can log in is kept, reset-totp only
// for admins, login locks visible to admins, clear validation answers. In-process server on the
// real embedded store; TOTP computed here from the secret the server shows (otpauth).
const couch = await startStore(t);
const STEP = 30_000;

async function patch(app: FastifyInstance, url: string, payload: unknown, token: string) {
  return app.inject({ method: 'PATCH', url, payload: payload as Record<string, unknown>, headers: bearer(token) });
}
async function get(app: FastifyInstance, url: string, token: string) {
  return app.inject({ method: 'GET', url, headers: bearer(token) });
}

/** A server requiring admin TOTP (as in production) with `root` set up and enrolled. */
async function totpServer(t: Parameters<typeof makeApp>[0], overrides: Overrides = {}) {
  const made = await makeApp(t, couch, { adminTotp: { required: true }, ...overrides });
  const root = await setupEnrolledAdmin(made.app, made.clock, 'root');
  return { ...made, root };
}

async function userOf(app: FastifyInstance, token: string, username: string): Promise<Record<string, unknown>> {
  return json(await get(app, `/v1/users/${username}`, token))['user'] as Record<string, unknown>;
}

t.test('an admin with only an invitation does not count: the last admin who can log in cannot be disabled, demoted or reset', async (t) => {
  const { app, root } = await totpServer(t);
  const invited = await post(app, '/v1/users', { username: 'second', role: 'admin' }, root.token);
  t.equal(invited.statusCode, 201);

  const disable = await patch(app, '/v1/users/root', { disabled: true }, root.token);
  t.equal(disable.statusCode, 409);
  t.equal(json(disable)['code'], 'USER_LAST_ADMIN');
  const demote = await patch(app, '/v1/users/root', { role: 'supervisor' }, root.token);
  t.equal(json(demote)['code'], 'USER_LAST_ADMIN');
  const reset = await post(app, '/v1/users/root/password-reset', {}, root.token);
  t.equal(json(reset)['code'], 'USER_LAST_ADMIN', 'a reset would leave only a token that expires');
  const totpReset = await post(app, '/v1/users/root/totp-reset', {}, root.token);
  t.equal(json(totpReset)['code'], 'USER_LAST_ADMIN');

  const stored = await app.repo.getUser('root');
  t.match(stored, { role: 'admin', disabled: false, epoch: 0 }, 'root unchanged');
  t.not(stored?.passwordHash, null);
  t.not(stored?.totp?.confirmedAt, null);
  t.equal((await get(app, '/v1/users', root.token)).statusCode, 200, "root's session lives on");
});

t.test('with TOTP required, another admin counts only once they have a password and an enrolled authenticator', async (t) => {
  const { app, clock, root } = await totpServer(t);
  const secondPassword = await createUser(app, root.token, 'second', 'admin');
  t.equal(json(await patch(app, '/v1/users/root', { disabled: true }, root.token))['code'], 'USER_LAST_ADMIN', 'password set, no TOTP yet');
  await enrol(app, clock, 'second', secondPassword);
  const disable = await patch(app, '/v1/users/root', { disabled: true }, root.token);
  t.equal(disable.statusCode, 200, disable.body);
  t.equal((json(disable)['user'] as { disabled: boolean }).disabled, true);
});

t.test('with admin TOTP optional, an admin with a password counts and an invited one does not', async (t) => {
  const { app } = await makeApp(t, couch, { adminTotp: { required: false } });
  await post(app, '/v1/setup/admin', { setupToken: SETUP_TOKEN, username: 'root', password: ADMIN_PASSWORD });
  const { token } = await login(app, newDevice(), { username: 'root', password: ADMIN_PASSWORD });
  await post(app, '/v1/users', { username: 'invited', role: 'admin' }, token);
  t.equal(json(await patch(app, '/v1/users/root', { role: 'field_worker' }, token))['code'], 'USER_LAST_ADMIN');
  await createUser(app, token, 'second', 'admin');
  const demoted = await patch(app, '/v1/users/root', { role: 'field_worker' }, token);
  t.equal(demoted.statusCode, 200, demoted.body);
});

t.test('users reset-totp of a field worker is refused and changes nothing', async (t) => {
  const { app, root } = await totpServer(t);
  const bobPassword = await createUser(app, root.token, 'bob', 'field_worker');
  const phone = await login(app, newDevice(), { username: 'bob', password: bobPassword });
  const before = await app.repo.getUser('bob');

  const res = await post(app, '/v1/users/bob/totp-reset', {}, root.token);
  t.equal(res.statusCode, 403);
  t.equal(json(res)['code'], 'AUTH_TOTP_NOT_ADMIN');
  t.same(await app.repo.getUser('bob'), before, 'the account is unchanged');
  t.equal((await get(app, '/v1/auth/session', phone.token)).statusCode, 200, "bob's phone session lives on");
  const audit = json(await get(app, '/v1/audit?event=user.totp_reset', root.token))['events'] as unknown[];
  t.equal(audit.length, 0, 'nothing audited as a reset');
});

t.test('an admin sees a login lock and until when; a password reset ends it', async (t) => {
  const { app, clock, root } = await totpServer(t);
  const samPassword = await createUser(app, root.token, 'sam', 'field_worker');
  const device = newDevice();
  t.equal((json(await get(app, '/v1/users/sam', root.token))['user'] as { lock: unknown }).lock, null, 'not locked');
  for (let i = 0; i < 10; i += 1) await loginRaw(app, device, { username: 'sam', password: 'not sams password at all, no' });
  t.equal(json(await loginRaw(app, device, { username: 'sam', password: samPassword }))['code'], 'AUTH_ACCOUNT_LOCKED');

  const shown = (await userOf(app, root.token, 'sam'))['lock'] as { failures: number; until: string };
  t.equal(shown.failures, 10);
  t.equal(shown.until, new Date(clock.now() + 60_000).toISOString(), 'the first lock lasts throttle.lockSeconds');
  const listed = (json(await get(app, '/v1/users', root.token))['users'] as Array<{ username: string; lock: unknown }>).find((u) => u.username === 'sam');
  t.same(listed?.lock, shown, 'the list shows it too');

  const reset = await post(app, '/v1/users/sam/password-reset', {}, root.token);
  t.equal(reset.statusCode, 200);
  t.equal((json(reset)['user'] as { lock: unknown }).lock, null, 'the reset ends the lock');
  t.equal((await userOf(app, root.token, 'sam'))['lock'], null);
  const token = (json(reset)['reset'] as { token: string }).token;
  const newPassword = 'violet meadows under winter stars';
  t.equal((await post(app, '/v1/auth/password', { resetToken: token, password: newPassword })).statusCode, 200);
  t.equal((await loginRaw(app, device, { username: 'sam', password: newPassword })).statusCode, 200, 'sam logs in at once');

  clock.advance(STEP);
  for (let i = 0; i < 10; i += 1) await loginRaw(app, device, { username: 'sam', password: 'not sams password at all, no' });
  clock.advance(61_000);
  t.equal((await userOf(app, root.token, 'sam'))['lock'], null, 'a lock that ran out is not shown');
});

t.test('a role that does not exist is refused with the allowed roles', async (t) => {
  const { app, root } = await totpServer(t);
  await createUser(app, root.token, 'bob', 'field_worker');
  const res = await patch(app, '/v1/users/bob', { role: 'god' }, root.token);
  t.equal(res.statusCode, 400);
  t.equal(json(res)['code'], 'INPUT_INVALID');
  t.match(json(res)['message'], /body\.role: must be equal to one of the allowed values: field_worker, supervisor, admin/);
  t.equal((await app.repo.getUser('bob'))?.role, 'field_worker');
  const create = await post(app, '/v1/users', { username: 'carl', role: 'god' }, root.token);
  t.match(json(create), { code: 'INPUT_INVALID', message: /field_worker, supervisor, admin/ });
});

t.test('a list cursor that this server did not issue is refused, not answered with an empty page', async (t) => {
  const { app, root } = await totpServer(t);
  await createUser(app, root.token, 'amina', 'field_worker');
  const bad = await get(app, '/v1/users?cursor=zzz', root.token);
  t.equal(bad.statusCode, 400);
  t.match(json(bad), { code: 'INPUT_INVALID', message: /query\.cursor/ });
  const first = json(await get(app, '/v1/users?limit=1', root.token)) as { users: Array<{ username: string }>; nextCursor: string };
  t.equal(first.users[0]?.username, 'amina');
  const second = json(await get(app, `/v1/users?limit=1&cursor=${first.nextCursor}`, root.token)) as { users: Array<{ username: string }> };
  t.same(second.users.map((u) => u.username), ['root'], 'an issued cursor still pages');
  const devices = await get(app, '/v1/devices?cursor=999999999999999', root.token);
  t.match(json(devices), { code: 'INPUT_INVALID', message: /query\.cursor/ });
});

t.test('console login without a code says whether to enrol or to send a code, and grants nothing', async (t) => {
  const { app, clock, root } = await totpServer(t);
  const secondPassword = await createUser(app, root.token, 'second', 'admin');
  const enrolFirst = await post(app, '/v1/admin/login', { username: 'second', password: secondPassword });
  t.equal(json(enrolFirst)['code'], 'AUTH_TOTP_ENROLMENT_REQUIRED');

  const ask = await post(app, '/v1/admin/login', { username: 'root', password: ADMIN_PASSWORD });
  t.equal(ask.statusCode, 401);
  t.equal(json(ask)['code'], 'AUTH_TOTP_REQUIRED');
  t.notOk('token' in json(ask));
  const wrong = await post(app, '/v1/admin/login', { username: 'root', password: 'not the admin password at all' });
  t.equal(json(wrong)['code'], 'AUTH_INVALID_CREDENTIALS', 'a wrong password is still a wrong password');

  clock.advance(STEP);
  const ok = await post(app, '/v1/admin/login', { username: 'root', password: ADMIN_PASSWORD, code: codeAt(root.secret, clock.now()) });
  t.equal(ok.statusCode, 200, ok.body);
  const events = (json(await get(app, '/v1/audit?username=root&limit=50', root.token))['events'] as Array<{ event: string; details: { code?: string } }>);
  t.ok(events.some((e) => e.event === 'login.code_required'), 'the code step is audited');
  t.same(events.filter((e) => e.event === 'login.failed').map((e) => e.details.code), ['AUTH_INVALID_CREDENTIALS'], 'only the wrong password is a failed login');
});
