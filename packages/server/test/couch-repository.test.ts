import t, { type Test } from 'tap';
import nano from 'nano';
import { startEmbeddedCouch } from '@fieldvault/couch-embedded';
import { createCouchRepository, type CouchRepository } from '../src/couch/index.js';
import type { DeviceRecord } from '../src/couch/records.js';
import { bearer, createUser, freshPrefix, json, login, makeApp, newDevice, setupAdmin, startStore } from './helpers.js';

// Issue 3 item 1: databases created on first start and reused; CouchDB errors never reach clients.
const couch = await startStore(t);

function repo(t: Test, prefix = freshPrefix()): CouchRepository {
  const r = createCouchRepository({ url: couch.url, dbPrefix: prefix });
  t.teardown(() => r.dropDatabases());
  return r;
}

t.test('init creates the databases once and a second start reuses them', async (t) => {
  const prefix = freshPrefix();
  const first = repo(t, prefix);
  await first.init();
  const names = (await nano(couch.url).db.list()).filter((n) => n.startsWith(prefix)).sort();
  t.same(names, ['audit', 'devices', 'pending', 'photos', 'records', 'sessions', 'users'].map((n) => `${prefix}${n}`));
  await first.appendAudit({ event: 'logout', actor: 'a', username: 'a', imei: null, ip: null, requestId: null, details: {} }, 1);
  const second = createCouchRepository({ url: couch.url, dbPrefix: prefix });
  await second.init();
  const page = await second.queryAudit({ limit: 10 });
  t.equal(page.items.length, 1, 'data from the first start is still there');
});

t.test('two concurrent writers of one device never lose an update', async (t) => {
  const r = repo(t);
  await r.init();
  const imei = '350000000000099';
  const base: DeviceRecord = {
    imei,
    status: 'active',
    publicKey: null,
    boundAt: null,
    firstSeenAt: 0,
    lastSeenAt: 0,
    usersSeen: [],
    key: null,
    epoch: 0,
    statusChangedAt: null,
    statusChangedBy: null,
  };
  const writers = Array.from({ length: 8 }, (_, i) =>
    r.modifyDevice(imei, (cur) => ({ ...(cur ?? base), usersSeen: [...(cur?.usersSeen ?? []), `user${i}`] })),
  );
  await Promise.all(writers);
  const device = await r.getDevice(imei);
  t.same([...(device?.usersSeen ?? [])].sort(), Array.from({ length: 8 }, (_, i) => `user${i}`).sort(), 'every write survived');
});

t.test('a challenge is taken by exactly one of many racing consumers', async (t) => {
  const r = repo(t);
  await r.init();
  await r.createChallenge({ hash: 'h'.repeat(64), imei: '350000000000098', expiresAt: Date.now() + 60_000 });
  const results = await Promise.all(Array.from({ length: 6 }, () => r.consumeChallenge('h'.repeat(64))));
  t.equal(results.filter((x) => x !== undefined).length, 1);
});

t.test('the sweep removes expired sessions, challenges and reset tokens only', async (t) => {
  const r = repo(t);
  await r.init();
  await r.createChallenge({ hash: 'a'.repeat(64), imei: '350000000000097', expiresAt: 1_000 });
  await r.createChallenge({ hash: 'b'.repeat(64), imei: '350000000000097', expiresAt: 5_000 });
  await r.createReset({ tokenHash: 'c'.repeat(64), username: 'x', purpose: 'reset', expiresAt: 1_000, userEpoch: 0 });
  t.equal(await r.sweepExpired(2_000), 2);
  t.ok(await r.consumeChallenge('b'.repeat(64)), 'the unexpired challenge stays');
});

t.test('a store outage gives STORE_UNAVAILABLE with nothing from CouchDB in the body', async (t) => {
  const own = await startEmbeddedCouch({ dataDir: t.testdir() });
  t.teardown(() => own.stop());
  const { app } = await makeApp(t, own);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const device = newDevice();
  await login(app, device, { username: 'alice', password });
  await own.stop();
  const res = await app.inject({ method: 'GET', url: `/v1/devices/${device.imei}`, headers: bearer(admin) });
  t.equal(res.statusCode, 503);
  t.equal(json(res)['code'], 'STORE_UNAVAILABLE');
  t.notMatch(res.body, /127\.0\.0\.1|ECONNREFUSED|fetch failed|socket|connection/i);
  t.same(Object.keys(json(res)).sort(), ['code', 'error', 'message', 'statusCode']);
});

t.test('building an app against an unreachable store fails with STORE_UNAVAILABLE', async (t) => {
  const own = await startEmbeddedCouch({ dataDir: t.testdir() });
  const url = own.url;
  await own.stop();
  // No wait at start (store-startup.test.ts covers waiting for a store that comes up late).
  await t.rejects(makeApp(t, { ...own, url }, { couch: { startupWaitMs: 0 } }), { code: 'STORE_UNAVAILABLE' });
});
