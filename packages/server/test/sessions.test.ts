import t from 'tap';
import { bearer, createUser, json, login, loginRaw, makeApp, newDevice, setupAdmin, startStore } from './helpers.js';

// Issue 3: sessions (bearer tokens, logout, expiry, revocation by reset, disable and blacklist).
const couch = await startStore(t);

t.test('a session token works until logout, then it is refused', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const device = newDevice();
  const { token } = await login(app, device, { username: 'alice', password });
  const who = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(token) });
  t.equal(who.statusCode, 200);
  t.same(json(who)['user'], { username: 'alice', role: 'field_worker' });
  t.equal(json(who)['imei'], device.imei);
  const out = await app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(token) });
  t.equal(out.statusCode, 204);
  const after = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(token) });
  t.equal(after.statusCode, 401);
  t.equal(json(after)['code'], 'SESSION_INVALID');
});

t.test('missing, malformed and unknown tokens are refused alike', async (t) => {
  const { app } = await makeApp(t, couch);
  for (const headers of [{}, { authorization: 'Bearer short' }, { authorization: `Basic ${'A'.repeat(43)}` }, bearer('B'.repeat(43))]) {
    const res = await app.inject({ method: 'GET', url: '/v1/auth/session', headers });
    t.equal(res.statusCode, 401);
    t.equal(json(res)['code'], 'SESSION_INVALID');
  }
});

t.test('a session expires after its time to live', async (t) => {
  const { app, clock } = await makeApp(t, couch, { session: { ttlSeconds: 3600 } });
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const { token, expiresAt } = await login(app, newDevice(), { username: 'alice', password });
  t.equal(Date.parse(expiresAt), clock.now() + 3_600_000);
  clock.advance(3_599_000);
  t.equal((await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(token) })).statusCode, 200);
  clock.advance(1_000);
  const res = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(token) });
  t.equal(json(res)['code'], 'SESSION_INVALID');
});

t.test('blacklisting a device revokes its sessions at once and tells the device to wipe', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const alice = await createUser(app, admin, 'alice');
  const bob = await createUser(app, admin, 'bob');
  const stolen = newDevice();
  const other = newDevice();
  const s1 = await login(app, stolen, { username: 'alice', password: alice });
  const s2 = await login(app, stolen, { username: 'bob', password: bob });
  const s3 = await login(app, other, { username: 'alice', password: alice });
  const bl = await app.inject({ method: 'POST', url: `/v1/devices/${stolen.imei}/blacklist`, headers: bearer(admin), payload: {} });
  t.equal(bl.statusCode, 200);
  t.equal((json(bl)['device'] as { status: string }).status, 'blacklisted');
  for (const s of [s1, s2]) {
    const res = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(s.token) });
    t.equal(res.statusCode, 403);
    t.equal(json(res)['code'], 'DEVICE_BLACKLISTED');
  }
  const unaffected = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(s3.token) });
  t.equal(unaffected.statusCode, 200, 'sessions on other devices stay');

  const reinstate = await app.inject({ method: 'POST', url: `/v1/devices/${stolen.imei}/reinstate`, headers: bearer(admin), payload: {} });
  t.equal(reinstate.statusCode, 200);
  const old = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(s1.token) });
  t.equal(json(old)['code'], 'SESSION_INVALID', 'revoked sessions stay revoked after reinstatement');
  const again = await loginRaw(app, stolen, { username: 'alice', password: alice });
  t.equal(again.statusCode, 200, 'a reinstated device can log in again');
});

t.test('disabling a user revokes all their sessions; enabling does not bring them back', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const a = await login(app, newDevice(), { username: 'alice', password });
  const b = await login(app, newDevice(), { username: 'alice', password });
  await app.inject({ method: 'PATCH', url: '/v1/users/alice', headers: bearer(admin), payload: { disabled: true } });
  for (const s of [a, b]) t.equal((await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(s.token) })).statusCode, 401);
  await app.inject({ method: 'PATCH', url: '/v1/users/alice', headers: bearer(admin), payload: { disabled: false } });
  t.equal((await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(a.token) })).statusCode, 401);
  t.equal((await loginRaw(app, newDevice(), { username: 'alice', password })).statusCode, 200, 'the user can log in again');
});

t.test('an admin password reset revokes sessions and voids the old password; the user sets a new one', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const device = newDevice();
  const s = await login(app, device, { username: 'alice', password });
  const reset = await app.inject({ method: 'POST', url: '/v1/users/alice/password-reset', headers: bearer(admin) });
  t.equal(reset.statusCode, 200);
  const { token: resetToken } = json(reset)['reset'] as { token: string };
  t.equal((await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(s.token) })).statusCode, 401, 'session revoked');
  t.equal(json(await loginRaw(app, device, { username: 'alice', password }))['code'], 'AUTH_INVALID_CREDENTIALS', 'old password void');

  const weak = await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken, password: 'password1234567' } });
  t.equal(json(weak)['code'], 'PASSWORD_TOO_COMMON');
  const newPassword = 'a brand new sentence to remember forever';
  const set = await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken, password: newPassword } });
  t.equal(set.statusCode, 200, 'a refused password leaves the token usable');
  const reuse = await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken, password: `${newPassword} again` } });
  t.equal(json(reuse)['code'], 'AUTH_RESET_TOKEN_INVALID', 'the token is single use');
  t.equal((await loginRaw(app, device, { username: 'alice', password: newPassword })).statusCode, 200);
});

t.test('a newer reset voids an older reset token, and tokens expire', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  await createUser(app, admin, 'alice');
  const first = json(await app.inject({ method: 'POST', url: '/v1/users/alice/password-reset', headers: bearer(admin) }))['reset'] as { token: string };
  const second = json(await app.inject({ method: 'POST', url: '/v1/users/alice/password-reset', headers: bearer(admin) }))['reset'] as { token: string };
  const old = await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken: first.token, password: 'a long enough sentence to pass' } });
  t.equal(json(old)['code'], 'AUTH_RESET_TOKEN_INVALID');
  clock.advance(259_200_000);
  const expired = await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken: second.token, password: 'a long enough sentence to pass' } });
  t.equal(json(expired)['code'], 'AUTH_RESET_TOKEN_INVALID');
});

t.test('unbinding a device revokes its sessions and lets a new key pair enrol', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const phone = newDevice();
  const s = await login(app, phone, { username: 'alice', password });
  const reinstalled = newDevice(phone.imei);
  t.equal(json(await loginRaw(app, reinstalled, { username: 'alice', password }))['code'], 'DEVICE_BINDING_MISMATCH');
  const unbind = await app.inject({ method: 'POST', url: `/v1/devices/${phone.imei}/unbind`, headers: bearer(admin), payload: {} });
  t.equal(unbind.statusCode, 200);
  t.equal((json(unbind)['device'] as { bound: boolean }).bound, false);
  t.equal((await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(s.token) })).statusCode, 401);
  const fresh = await login(app, reinstalled, { username: 'alice', password });
  t.same(fresh.key, s.key, 'the device key survives an unbind');
});

t.test('a role change applies to existing sessions at once', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'carol', 'admin');
  const { token } = await login(app, newDevice(), { username: 'carol', password });
  t.equal((await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(token) })).statusCode, 200);
  await app.inject({ method: 'PATCH', url: '/v1/users/carol', headers: bearer(admin), payload: { role: 'supervisor' } });
  const res = await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(token) });
  t.equal(res.statusCode, 403);
  t.equal(json(res)['code'], 'AUTH_FORBIDDEN');
});
