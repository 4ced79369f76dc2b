// The short memory of authentication reads (src/couch/auth-cache.ts, FIELDVAULT_AUTH_CACHE_MS):
// a session's repeated requests read no session, user or device from the store; every change made
// through the same server is seen by the very next request; a change made by another server on
// the same store is seen once the memory is older than its lifetime. Real store, real apps.
import t from 'tap';
import { AuthCache } from '../src/couch/auth-cache.js';
import type { SessionRecord } from '../src/couch/records.js';
import { bearer, json, makeApp, setupAdmin, startStore, storeRecorder } from './helpers.js';
import { newRecord, phoneFor, pull, push } from './sync-helpers.js';

const couch = await startStore(t);

const authReads = (requests: readonly string[], names: readonly string[]): string[] =>
  requests.filter((r) => r.startsWith('GET ') && names.some((n) => r.includes(n)));

async function pushStatus(app: Awaited<ReturnType<typeof makeApp>>['app'], token: string, record: unknown): Promise<[number, unknown]> {
  const res = await app.inject({ method: 'POST', url: '/v1/sync/push', headers: bearer(token), payload: { records: [record] } });
  return [res.statusCode, res.statusCode === 200 ? 'ok' : json(res)['code']];
}

t.test('on: repeated requests of a session read nothing of it from the store', async (t) => {
  const recorder = await storeRecorder(t, couch);
  const { app, clock } = await makeApp(t, recorder, { session: { authCacheMs: 10_000 } });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  await push(app, amina.token, [newRecord(amina, { name: 'One' })]);
  clock.advance(1_000);
  const names = ['session:', 'user:amina', `device:${amina.device.imei}`];
  let mark = recorder.requests.length;
  await push(app, amina.token, [newRecord(amina, { name: 'Two' })]);
  const first = authReads(recorder.requests.slice(mark), names);
  t.ok(first.length >= 3, `the first request after the touch's write reads them (${first.length})`);
  mark = recorder.requests.length;
  await pull(app, amina.token);
  await push(app, amina.token, [newRecord(amina, { name: 'Three' })]);
  t.strictSame(authReads(recorder.requests.slice(mark), names), [], 'the next ones read none of them');
});

t.test('off (the default): every request reads its session, user and device', async (t) => {
  const recorder = await storeRecorder(t, couch);
  const { app, clock } = await makeApp(t, recorder);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  await push(app, amina.token, [newRecord(amina, { name: 'One' })]);
  clock.advance(1_000);
  const mark = recorder.requests.length;
  await pull(app, amina.token);
  await pull(app, amina.token);
  t.equal(authReads(recorder.requests.slice(mark), ['session:', 'user:amina', `device:${amina.device.imei}`]).length, 6);
});

t.test("on: a blacklisting, a disabled user and a logout through the same server are seen by the very next request", async (t) => {
  const { app, clock } = await makeApp(t, couch, { session: { authCacheMs: 10_000 } });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const chidi = await phoneFor(app, admin, clock, 'chidi');
  for (const p of [amina, bilal, chidi]) {
    await push(app, p.token, [newRecord(p, { name: `${p.username} 1` })]);
    await pull(app, p.token);
  }
  clock.advance(1_000);
  for (const p of [amina, bilal, chidi]) t.same(await pushStatus(app, p.token, newRecord(p, { name: 'remembered' })), [200, 'ok']);

  t.equal((await app.inject({ method: 'POST', url: `/v1/devices/${amina.device.imei}/blacklist`, headers: bearer(admin), payload: {} })).statusCode, 200);
  t.same(await pushStatus(app, amina.token, newRecord(amina, { name: 'after blacklist' })), [403, 'DEVICE_BLACKLISTED']);

  t.equal((await app.inject({ method: 'PATCH', url: '/v1/users/bilal', headers: bearer(admin), payload: { disabled: true } })).statusCode, 200);
  t.same(await pushStatus(app, bilal.token, newRecord(bilal, { name: 'after disable' })), [401, 'SESSION_INVALID']);

  t.equal((await app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(chidi.token), payload: {} })).statusCode, 204);
  t.same(await pushStatus(app, chidi.token, newRecord(chidi, { name: 'after logout' })), [401, 'SESSION_INVALID']);
});

t.test('on: a blacklisting through another server on the same store is seen once the memory has aged', async (t) => {
  const ta = await makeApp(t, couch, { session: { authCacheMs: 300 } });
  const { app, clock } = ta;
  const other = await makeApp(t, couch, { kek: ta.config.kek, couch: { dbPrefix: ta.config.couch.dbPrefix ?? '' }, setupToken: null });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  await push(app, amina.token, [newRecord(amina, { name: 'One' })]);
  t.equal((await other.app.inject({ method: 'POST', url: `/v1/devices/${amina.device.imei}/blacklist`, headers: bearer(admin), payload: {} })).statusCode, 200);
  // The lifetime is real time (the entry's age bounds the staleness), so the test waits it out.
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.same(await pushStatus(app, amina.token, newRecord(amina, { name: 'after' })), [403, 'DEVICE_BLACKLISTED']);
});

t.test('a read that overlapped a write is not remembered; entries expire; the table is bounded', async (t) => {
  let now = 0;
  const cache = new AuthCache({ ttlMs: 1_000, maxEntries: 2, now: () => now });
  const session = (tokenHash: string, username: string, imei: string): SessionRecord => ({
    tokenHash, username, imei, createdAt: 0, expiresAt: 1e12, userEpoch: 0, deviceEpoch: 0, revoked: null,
  });
  const docs = (s: SessionRecord) => ({ session: s, user: undefined, device: undefined });

  const started = cache.generation;
  cache.changed({ username: 'amina' });
  cache.remember('a', docs(session('a', 'amina', '1')), started);
  t.equal(cache.get('a'), undefined, 'read before the write, finished after it: not remembered');

  cache.remember('a', docs(session('a', 'amina', '1')), cache.generation);
  cache.remember('b', docs(session('b', 'bilal', '2')), cache.generation);
  t.ok(cache.get('a') && cache.get('b'), 'remembered');
  cache.changed({ imei: '2' });
  t.ok(cache.get('a') !== undefined && cache.get('b') === undefined, "a device's write drops only its sessions");
  cache.changed({ tokenHash: 'a' });
  t.equal(cache.size, 0, "a session's write drops it");

  cache.remember('a', docs(session('a', 'amina', '1')), cache.generation);
  cache.remember('b', docs(session('b', 'bilal', '2')), cache.generation);
  cache.remember('c', docs(session('c', 'chidi', '3')), cache.generation);
  t.same([cache.size, cache.get('a'), cache.get('c')?.session.username], [2, undefined, 'chidi'], 'full: the oldest goes');
  now += 1_000;
  t.equal(cache.get('c'), undefined, 'expired after its lifetime');
  cache.remember('d', docs(session('d', 'dee', '4')), cache.generation);
  cache.changed('all');
  t.equal(cache.size, 0, 'a sweep drops everything');
  const off = new AuthCache({ ttlMs: 0, maxEntries: 2, now: () => now });
  off.remember('a', docs(session('a', 'amina', '1')), off.generation);
  t.equal(off.size, 0, 'lifetime 0 remembers nothing');
});
