// Per-IP rate limits count every request before any store lookup: bad or missing session tokens,
// unknown routes, login-like routes (operations audit, item 1). Before the fix the limit hook ran
// after the route's `requireAuth`, so a flood of bad tokens got 401 after a store read each and
// was never refused, and 404s were not limited at all.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { bearer, json, login, makeApp, newDevice, setupAdmin, ADMIN_PASSWORD, startStore, storeRecorder } from './helpers.js';

const couch = await startStore(t);

const randomToken = (): string => randomBytes(32).toString('base64url');

t.test('requests with a bad session token are refused with RATE_LIMITED once over the limit, without a store lookup', async (t) => {
  const recorder = await storeRecorder(t, couch);
  const { app } = await makeApp(t, { url: recorder.url, crashed: false }, { rateLimit: { max: 5, authMax: 100, timeWindowMs: 60_000 } });
  const codes: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(randomToken()), remoteAddress: '10.1.0.1' });
    codes.push(String(json(res)['code']));
  }
  t.same(codes, Array(5).fill('SESSION_INVALID'), 'within the limit: the token is checked');
  const storeRequestsBefore = recorder.requests.length;
  const limited = [];
  for (let i = 0; i < 5; i++) {
    limited.push(await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(randomToken()), remoteAddress: '10.1.0.1' }));
  }
  t.same(limited.map((r) => r.statusCode), Array(5).fill(429));
  t.same(limited.map((r) => json(r)['code']), Array(5).fill('RATE_LIMITED'));
  t.ok(limited.every((r) => Number(r.headers['retry-after']) > 0), 'each says when to retry');
  t.same(recorder.requests.slice(storeRequestsBefore), [], 'refused requests cost no store lookup');
  const noToken = await app.inject({ method: 'GET', url: '/v1/users', remoteAddress: '10.1.0.1' });
  t.equal(json(noToken)['code'], 'RATE_LIMITED', 'a request without a token counts too');
  const other = await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(randomToken()), remoteAddress: '10.1.0.2' });
  t.equal(json(other)['code'], 'SESSION_INVALID', 'another address is not affected');
});

t.test('once valid-session requests reach the limit, bad-token requests from that address are refused too', async (t) => {
  const { app } = await makeApp(t, couch, { rateLimit: { max: 1000, authMax: 1000, timeWindowMs: 60_000 } });
  const { token } = await setupAdmin(app);
  // A second app on the same store with a small limit: the admin's session is valid there too.
  const { app: limitedApp } = await makeApp(t, couch, { couch: { dbPrefix: app.fieldvaultConfig.couch.dbPrefix }, kek: app.fieldvaultConfig.kek, rateLimit: { max: 3, authMax: 1000, timeWindowMs: 60_000 } });
  const ok = [];
  for (let i = 0; i < 3; i++) ok.push((await limitedApp.inject({ method: 'GET', url: '/v1/users', headers: bearer(token), remoteAddress: '10.2.0.1' })).statusCode);
  t.same(ok, [200, 200, 200]);
  const valid = await limitedApp.inject({ method: 'GET', url: '/v1/users', headers: bearer(token), remoteAddress: '10.2.0.1' });
  t.equal(json(valid)['code'], 'RATE_LIMITED');
  const bad = await limitedApp.inject({ method: 'GET', url: '/v1/users', headers: bearer(randomToken()), remoteAddress: '10.2.0.1' });
  t.equal(bad.statusCode, 429);
  t.equal(json(bad)['code'], 'RATE_LIMITED', 'not SESSION_INVALID: the token is not even looked up');
});

t.test('unknown routes count against the per-IP limit', async (t) => {
  const { app } = await makeApp(t, couch, { rateLimit: { max: 3, authMax: 100, timeWindowMs: 60_000 } });
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push(json(await app.inject({ method: 'GET', url: `/v1/nothing-${i}`, remoteAddress: '10.3.0.1' }))['code']);
  t.same(codes, ['INPUT_ROUTE_NOT_FOUND', 'INPUT_ROUTE_NOT_FOUND', 'INPUT_ROUTE_NOT_FOUND', 'RATE_LIMITED', 'RATE_LIMITED']);
});

t.test('login-like routes count against both their own limit and the per-IP one', async (t) => {
  const device = newDevice();
  const challenge = (app: Awaited<ReturnType<typeof makeApp>>['app'], ip: string) =>
    app.inject({ method: 'POST', url: '/v1/auth/challenge', payload: { imei: device.imei }, remoteAddress: ip });

  const { app: strictAuth } = await makeApp(t, couch, { rateLimit: { max: 100, authMax: 2, timeWindowMs: 60_000 } });
  const a = [];
  for (let i = 0; i < 3; i++) a.push((await challenge(strictAuth, '10.4.0.1')).statusCode);
  t.same(a, [200, 200, 429], 'the auth limit');

  const { app: strictAll } = await makeApp(t, couch, { rateLimit: { max: 2, authMax: 100, timeWindowMs: 60_000 } });
  await strictAll.inject({ method: 'GET', url: '/v1/nothing', remoteAddress: '10.4.0.2' });
  const b = [];
  for (let i = 0; i < 2; i++) b.push((await challenge(strictAll, '10.4.0.2')).statusCode);
  t.same(b, [200, 429], 'the per-IP limit, shared with the other routes');
});

t.test('within the limits a real login and an authenticated request still work', async (t) => {
  const { app } = await makeApp(t, couch, { rateLimit: { max: 50, authMax: 10, timeWindowMs: 60_000 } });
  await setupAdmin(app);
  const device = newDevice();
  const session = await login(app, device, { username: 'admin', password: ADMIN_PASSWORD, remoteAddress: '10.5.0.1' });
  const res = await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(session.token), remoteAddress: '10.5.0.1' });
  t.equal(res.statusCode, 200);
});
