import t from 'tap';
import { ADMIN_PASSWORD, bearer, createUser, getChallenge, json, login, loginRaw, makeApp, newDevice, setupAdmin, startStore } from './helpers.js';

// Issue 3: per-account throttling (≤ 100 consecutive failures) and per-IP rate limits.
const couch = await startStore(t);

t.test('an account locks after N failures, with doubling lock times, for known and unknown users alike', async (t) => {
  const { app, clock } = await makeApp(t, couch, { throttle: { maxFailures: 3, lockSeconds: 60, maxLockSeconds: 600 } });
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const device = newDevice();
  for (const username of ['alice', 'ghost']) {
    for (let i = 0; i < 3; i += 1) {
      const res = await loginRaw(app, device, { username, password: 'wrong password for this account' });
      t.equal(json(res)['code'], 'AUTH_INVALID_CREDENTIALS', `${username} failure ${i + 1}`);
    }
    const locked = await loginRaw(app, device, { username, password: username === 'alice' ? password : 'wrong password for this account' });
    t.equal(locked.statusCode, 429, `${username} is locked`);
    t.equal(json(locked)['code'], 'AUTH_ACCOUNT_LOCKED');
    t.equal(locked.headers['retry-after'], '60');
  }
  clock.advance(60_000);
  const again = await loginRaw(app, device, { username: 'alice', password: 'still the wrong password here' });
  t.equal(json(again)['code'], 'AUTH_INVALID_CREDENTIALS', 'one more try after the lock');
  const doubled = await loginRaw(app, device, { username: 'alice', password });
  t.equal(doubled.headers['retry-after'], '120', 'the next lock is twice as long');
  clock.advance(120_000);
  t.equal((await loginRaw(app, device, { username: 'alice', password })).statusCode, 200, 'the right password works after the lock');
  clock.advance(1_000);
  const reset = await loginRaw(app, device, { username: 'alice', password: 'wrong once more after success' });
  t.equal(json(reset)['code'], 'AUTH_INVALID_CREDENTIALS', 'a success resets the count');
});

t.test('100 consecutive failures lock the account until a password reset', async (t) => {
  const { app, clock } = await makeApp(t, couch, { throttle: { maxFailures: 100, lockSeconds: 1, maxLockSeconds: 1 }, session: { ttlSeconds: 2_592_000 } });
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const device = newDevice();
  for (let i = 0; i < 100; i += 1) {
    await loginRaw(app, device, { username: 'alice', password: 'a wrong password, again and again' });
    clock.advance(2_000);
  }
  clock.advance(86_400_000);
  const locked = await loginRaw(app, device, { username: 'alice', password });
  t.equal(json(locked)['code'], 'AUTH_ACCOUNT_LOCKED', 'still locked a day later');
  t.equal(locked.headers['retry-after'], undefined, 'no retry time: it needs a reset');
  // Admin sessions live an hour at most (issue 7): the admin logs in again a day later.
  const { token: adminNow } = await login(app, newDevice(), { username: 'admin', password: ADMIN_PASSWORD });
  t.equal(json(await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(admin) }))['code'], 'SESSION_INVALID', 'the old admin session expired');
  const reset = json(await app.inject({ method: 'POST', url: '/v1/users/alice/password-reset', headers: bearer(adminNow) }))['reset'] as { token: string };
  const newPassword = 'a fresh start with a long sentence';
  await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken: reset.token, password: newPassword } });
  t.equal((await loginRaw(app, device, { username: 'alice', password: newPassword })).statusCode, 200);
});

t.test('per-IP rate limits refuse a flood with RATE_LIMITED', async (t) => {
  const { app } = await makeApp(t, couch, { rateLimit: { max: 1000, authMax: 3, timeWindowMs: 60_000 } });
  const device = newDevice();
  const from = (remoteAddress: string) =>
    app.inject({ method: 'POST', url: '/v1/auth/challenge', payload: { imei: device.imei }, remoteAddress });
  for (let i = 0; i < 3; i += 1) t.equal((await from('10.0.0.1')).statusCode, 200);
  const limited = await from('10.0.0.1');
  t.equal(limited.statusCode, 429);
  t.equal(json(limited)['code'], 'RATE_LIMITED');
  t.ok(Number(limited.headers['retry-after']) > 0, 'says when to retry');
  t.equal((await from('10.0.0.2')).statusCode, 200, 'another address is not affected');
  await t.resolves(getChallenge(app, device.imei, '10.0.0.3'));
});
