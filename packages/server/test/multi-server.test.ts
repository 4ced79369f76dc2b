import t, { type Test } from 'tap';
import { compareKeyRecords } from '@fieldvault/protocol';
import { bearer, createUser, json, login, makeApp, newDevice, setupAdmin, startStore, type TestApp } from './helpers.js';

// Issue 3: two servers issuing keys and reconciling through one device's logins (flows 2 and 4).
const couch = await startStore(t);

async function twoServers(t: Test): Promise<{ a: TestApp; b: TestApp; adminA: string; adminB: string }> {
  const a = await makeApp(t, couch, { serverId: 'server-a' });
  const b = await makeApp(t, couch, { serverId: 'server-b' });
  const adminA = (await setupAdmin(a.app)).token;
  const adminB = (await setupAdmin(b.app)).token;
  return { a, b, adminA, adminB };
}

async function deviceKeyOn(app: TestApp, adminToken: string, imei: string): Promise<unknown> {
  const res = await app.app.inject({ method: 'GET', url: `/v1/devices/${imei}`, headers: bearer(adminToken) });
  return (json(res)['device'] as { key: unknown }).key;
}

t.test('flow 2: server B adopts the key from server A and hands it to any user of the device', async (t) => {
  const { a, b, adminA, adminB } = await twoServers(t);
  const user1A = await createUser(a.app, adminA, 'user1');
  const user1B = await createUser(b.app, adminB, 'user1');
  const user3B = await createUser(b.app, adminB, 'user3');
  const phone = newDevice();

  const fromA = await login(a.app, phone, { username: 'user1', password: user1A });
  t.equal(fromA.key.record.issuer, 'server-a');
  b.clock.advance(1_000);
  const fromB = await login(b.app, phone, { username: 'user1', password: user1B, dbKey: fromA.key.dbKey, keyRecord: fromA.key.record });
  t.same(fromB.key, fromA.key, 'B adopted K_A');
  const user3 = await login(b.app, phone, { username: 'user3', password: user3B });
  t.same(user3.key, fromA.key, 'a new user on the device gets K_A from B (flow 3)');
  t.same(await deviceKeyOn(b, adminB, phone.imei), fromA.key.record);
});

t.test('flow 4: a newer key from B wins, and A converges when the device brings it', async (t) => {
  const { a, b, adminA, adminB } = await twoServers(t);
  const user1A = await createUser(a.app, adminA, 'user1');
  const user1B = await createUser(b.app, adminB, 'user1');
  const user2B = await createUser(b.app, adminB, 'user2');
  const phone = newDevice();

  const kA = await login(a.app, phone, { username: 'user1', password: user1A });
  b.clock.advance(60_000);
  const kB = await login(b.app, phone, { username: 'user2', password: user2B }); // user2 cannot unwrap K_A
  t.not(kB.key.record.keyId, kA.key.record.keyId, 'B issued its own key (temporary DB on the device)');
  t.equal(compareKeyRecords(kB.key.record, kA.key.record), 1, 'K_B is newer');

  const user1OnB = await login(b.app, phone, { username: 'user1', password: user1B, dbKey: kA.key.dbKey, keyRecord: kA.key.record });
  t.same(user1OnB.key, kB.key, 'B keeps the newest (K_B) and returns it');

  a.clock.advance(61_000);
  const user1OnA = await login(a.app, phone, { username: 'user1', password: user1A, dbKey: kB.key.dbKey, keyRecord: kB.key.record });
  t.same(user1OnA.key, kB.key, 'A replaces K_A with the newer K_B');
  t.same(await deviceKeyOn(a, adminA, phone.imei), await deviceKeyOn(b, adminB, phone.imei), 'both servers converged on one key');
});

t.test('flow 4 with B behind: the key from A wins on B, and B stores it', async (t) => {
  const { a, b, adminA, adminB } = await twoServers(t);
  const user1A = await createUser(a.app, adminA, 'user1');
  const user1B = await createUser(b.app, adminB, 'user1');
  const user2B = await createUser(b.app, adminB, 'user2');
  const phone = newDevice();

  a.clock.advance(120_000); // A's wall clock runs two minutes ahead of B's (within the skew)
  const kA = await login(a.app, phone, { username: 'user1', password: user1A });
  const kB = await login(b.app, phone, { username: 'user2', password: user2B });
  t.equal(compareKeyRecords(kA.key.record, kB.key.record), 1, 'K_A is newer by timestamp');

  const user1OnB = await login(b.app, phone, { username: 'user1', password: user1B, dbKey: kA.key.dbKey, keyRecord: kA.key.record });
  t.same(user1OnB.key, kA.key, 'B replaces K_B with K_A');
  const user2Again = await login(b.app, phone, { username: 'user2', password: user2B, dbKey: kB.key.dbKey, keyRecord: kB.key.record });
  t.same(user2Again.key, kA.key, 'the older K_B offered again loses');
  t.same(await deviceKeyOn(b, adminB, phone.imei), kA.key.record);
});

t.test('a server that has seen a key issues newer ones, even with a slower wall clock', async (t) => {
  const { a, b, adminA, adminB } = await twoServers(t);
  const user1A = await createUser(a.app, adminA, 'user1');
  const user1B = await createUser(b.app, adminB, 'user1');
  const phone = newDevice();
  a.clock.advance(240_000);
  const kA = await login(a.app, phone, { username: 'user1', password: user1A });
  await login(b.app, phone, { username: 'user1', password: user1B, dbKey: kA.key.dbKey, keyRecord: kA.key.record });
  const rekey = await b.app.inject({ method: 'POST', url: `/v1/devices/${phone.imei}/rekey`, headers: bearer(adminB), payload: {} });
  t.equal(rekey.statusCode, 200);
  const record = (json(rekey)['device'] as { key: { keyId: string; issuedAt: string; issuer: string } }).key;
  t.equal(record.issuer, 'server-b');
  t.ok(record.issuedAt > kA.key.record.issuedAt, 'the rekeyed key is newer than the one B received');
  t.notMatch(rekey.body, /dbKey|sealed/, 'no key material on admin routes');
  const after = await login(b.app, phone, { username: 'user1', password: user1B, dbKey: kA.key.dbKey, keyRecord: kA.key.record });
  t.equal(after.key.record.keyId, record.keyId, 'the device receives the new key at its next login');
});
