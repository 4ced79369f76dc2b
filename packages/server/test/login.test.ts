import t from 'tap';
import { fromBase64, generateDbKey, keyId, toBase64 } from '@fieldvault/crypto';
import { formatHlc, type KeyRecord } from '@fieldvault/protocol';
import {
  bearer,
  createUser,
  getChallenge,
  json,
  login,
  loginPayload,
  loginRaw,
  makeApp,
  newDevice,
  setupAdmin,
  startStore,
} from './helpers.js';

// Issue 3: login branches (key issue/adopt/reconcile, binding, challenge, blacklist).
const couch = await startStore(t);

t.test('first login of an IMEI with no key sent issues a new key stamped by this server', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const device = newDevice();
  const res = await login(app, device, { username: 'alice', password });
  t.equal(res.user.username, 'alice');
  t.equal(res.user.role, 'field_worker');
  t.match(res.token, /^[A-Za-z0-9_-]{43}$/);
  t.equal(res.key.record.imei, device.imei);
  t.equal(res.key.record.issuer, 'server-a');
  t.ok(res.key.record.issuedAt.startsWith(String(clock.now()).padStart(13, '0')), 'issuedAt uses the server clock');
  t.equal(keyId(fromBase64(res.key.dbKey)), res.key.record.keyId, 'the key matches its key id');
  const again = await login(app, device, { username: 'alice', password });
  t.same(again.key, res.key, 'a second login gets the same key');
});

t.test('a key sent for an IMEI the server has no key for is adopted (flow 2)', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const device = newDevice();
  const dbKey = generateDbKey();
  const record: KeyRecord = { imei: device.imei, keyId: keyId(dbKey), issuedAt: formatHlc({ wall: Date.UTC(2025, 0, 15, 11), counter: 0, node: 'server-b' }), issuer: 'server-b' };
  const res = await login(app, device, { username: 'alice', password, dbKey: toBase64(dbKey), keyRecord: record });
  t.same(res.key.record, record);
  t.equal(res.key.dbKey, toBase64(dbKey));
  const audit = await app.inject({ method: 'GET', url: `/v1/audit?imei=${device.imei}&event=key.adopted`, headers: bearer(adminToken) });
  t.equal((json(audit)['events'] as unknown[]).length, 1, 'the adoption is audited');
});

t.test('when both exist the newer key wins and an older offered key loses', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const device = newDevice();
  const issued = await login(app, device, { username: 'alice', password });

  const older = generateDbKey();
  const olderRecord: KeyRecord = { imei: device.imei, keyId: keyId(older), issuedAt: formatHlc({ wall: Date.UTC(2025, 0, 1), counter: 0, node: 'server-b' }), issuer: 'server-b' };
  const kept = await login(app, device, { username: 'alice', password, dbKey: toBase64(older), keyRecord: olderRecord });
  t.same(kept.key, issued.key, 'the stored newer key is kept and returned');

  const newer = generateDbKey();
  const newerRecord: KeyRecord = { imei: device.imei, keyId: keyId(newer), issuedAt: formatHlc({ wall: Date.UTC(2025, 0, 15, 12, 1), counter: 0, node: 'server-b' }), issuer: 'server-b' };
  const replaced = await login(app, device, { username: 'alice', password, dbKey: toBase64(newer), keyRecord: newerRecord });
  t.same(replaced.key.record, newerRecord, 'a newer offered key replaces the stored one');
  const after = await login(app, device, { username: 'alice', password });
  t.same(after.key.record, newerRecord, 'and is stored');
  const audit = await app.inject({ method: 'GET', url: `/v1/audit?imei=${device.imei}&event=key.replaced`, headers: bearer(adminToken) });
  const events = json(audit)['events'] as Array<{ details: Record<string, unknown> }>;
  t.equal(events.length, 1);
  t.equal(events[0]?.details['previousKeyId'], issued.key.record.keyId);
});

t.test('a key stamped too far in the future is rejected and nothing is stored', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const device = newDevice();
  const future = generateDbKey();
  const record: KeyRecord = { imei: device.imei, keyId: keyId(future), issuedAt: formatHlc({ wall: clock.now() + 10 * 60_000, counter: 0, node: 'server-b' }), issuer: 'server-b' };
  const res = await loginRaw(app, device, { username: 'alice', password, dbKey: toBase64(future), keyRecord: record });
  t.equal(res.statusCode, 400);
  t.equal(json(res)['code'], 'HLC_TOO_FAR_AHEAD');
  const show = await app.inject({ method: 'GET', url: `/v1/devices/${device.imei}`, headers: bearer(adminToken) });
  t.equal(show.statusCode, 404, 'no device record was written');
});

t.test('a key that does not match its key id is refused', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const device = newDevice();
  const record: KeyRecord = { imei: device.imei, keyId: keyId(generateDbKey()), issuedAt: formatHlc({ wall: Date.UTC(2025, 0, 15), counter: 0, node: 'server-b' }), issuer: 'server-b' };
  const res = await loginRaw(app, device, { username: 'alice', password, dbKey: toBase64(generateDbKey()), keyRecord: record });
  t.equal(json(res)['code'], 'KEY_MISMATCH');
});

t.test('a valid user claiming an enrolled IMEI with another device key gets no key', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const alice = await createUser(app, adminToken, 'alice');
  const mallory = await createUser(app, adminToken, 'mallory');
  const phone = newDevice();
  await login(app, phone, { username: 'alice', password: alice });

  const spoof = newDevice(phone.imei); // same IMEI, the attacker's own key pair
  const res = await loginRaw(app, spoof, { username: 'mallory', password: mallory });
  t.equal(res.statusCode, 403);
  t.equal(json(res)['code'], 'DEVICE_BINDING_MISMATCH');
  t.notMatch(res.body, /dbKey/);

  // Signing with a key that is not the one sent is refused as well.
  const forged = await loginRaw(app, phone, { username: 'mallory', password: mallory, signWith: spoof.keys });
  t.equal(json(forged)['code'], 'DEVICE_BINDING_MISMATCH', 'the public key sent is not the enrolled one');
  const badSig = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { ...loginPayload(phone, { username: 'mallory', password: mallory, signWith: spoof.keys }, await getChallenge(app, phone.imei)), devicePublicKey: phone.publicKey },
  });
  t.equal(json(badSig)['code'], 'DEVICE_SIGNATURE_INVALID', 'the enrolled public key with a signature from another key');
});

t.test('a challenge is single use, bound to its IMEI, and expires', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const device = newDevice();
  const challenge = await getChallenge(app, device.imei);
  const first = await loginRaw(app, device, { username: 'alice', password, challenge });
  t.equal(first.statusCode, 200);
  const replay = await loginRaw(app, device, { username: 'alice', password, challenge });
  t.equal(replay.statusCode, 401);
  t.equal(json(replay)['code'], 'DEVICE_SIGNATURE_INVALID', 'a replayed challenge is refused');

  const other = newDevice();
  const forOther = await getChallenge(app, other.imei);
  const wrongImei = await loginRaw(app, device, { username: 'alice', password, challenge: forOther });
  t.equal(json(wrongImei)['code'], 'DEVICE_SIGNATURE_INVALID', 'a challenge for another IMEI is refused');

  const stale = await getChallenge(app, device.imei);
  clock.advance(121_000);
  const expired = await loginRaw(app, device, { username: 'alice', password, challenge: stale });
  t.equal(json(expired)['code'], 'DEVICE_SIGNATURE_INVALID', 'an expired challenge is refused');

  const unknown = await loginRaw(app, device, { username: 'alice', password, challenge: 'A'.repeat(43) });
  t.equal(json(unknown)['code'], 'DEVICE_SIGNATURE_INVALID', 'an unknown challenge is refused');
});

t.test('unknown user and wrong password give the same error', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  await createUser(app, adminToken, 'alice');
  const device = newDevice();
  const wrong = await loginRaw(app, device, { username: 'alice', password: 'not the password of alice at all' });
  const unknown = await loginRaw(app, device, { username: 'nobody', password: 'not the password of alice at all' });
  t.equal(wrong.statusCode, 401);
  t.same(json(wrong), json(unknown), 'identical bodies');
  t.equal(json(wrong)['code'], 'AUTH_INVALID_CREDENTIALS');
});

t.test('a user who has not set a password yet cannot log in', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  await app.inject({ method: 'POST', url: '/v1/users', headers: bearer(adminToken), payload: { username: 'bob', role: 'field_worker' } });
  const res = await loginRaw(app, newDevice(), { username: 'bob', password: 'anything at all will not work here' });
  t.equal(json(res)['code'], 'AUTH_INVALID_CREDENTIALS');
});

t.test('a disabled user cannot log in', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const patch = await app.inject({ method: 'PATCH', url: '/v1/users/alice', headers: bearer(adminToken), payload: { disabled: true } });
  t.equal(patch.statusCode, 200);
  const res = await loginRaw(app, newDevice(), { username: 'alice', password });
  t.equal(res.statusCode, 403);
  t.equal(json(res)['code'], 'USER_DISABLED');
});

t.test('a blacklisted device is refused with DEVICE_BLACKLISTED, even without a password', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const device = newDevice();
  await login(app, device, { username: 'alice', password });
  const bl = await app.inject({ method: 'POST', url: `/v1/devices/${device.imei}/blacklist`, headers: bearer(adminToken), payload: { reason: 'stolen' } });
  t.equal(bl.statusCode, 200);
  const res = await loginRaw(app, device, { username: 'alice', password });
  t.equal(res.statusCode, 403);
  t.equal(json(res)['code'], 'DEVICE_BLACKLISTED');
  const thief = await loginRaw(app, device, { username: 'alice', password: 'the thief does not know this one' });
  t.equal(json(thief)['code'], 'DEVICE_BLACKLISTED', 'the enrolled device is told to wipe without the password');
});

t.test('a retired device lets its known users log in for a last sync and refuses new users', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const password = await createUser(app, adminToken, 'alice');
  const bobPassword = await createUser(app, adminToken, 'bob');
  const device = newDevice();
  const s = await login(app, device, { username: 'alice', password });
  await app.inject({ method: 'POST', url: `/v1/devices/${device.imei}/retire`, headers: bearer(adminToken), payload: {} });
  const again = await loginRaw(app, device, { username: 'alice', password });
  t.equal(again.statusCode, 200, 'alice used this phone before: she may log in for the last sync');
  const res = await loginRaw(app, device, { username: 'bob', password: bobPassword });
  t.equal(json(res)['code'], 'DEVICE_RETIRED', 'bob never used this phone: refused');
  const session = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(s.token) });
  t.equal(session.statusCode, 200, 'the existing session stays for a last sync');
});

t.test('concurrent first logins on one device end with one key for everyone', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: adminToken } = await setupAdmin(app);
  const users = ['u1', 'u2', 'u3', 'u4'];
  const passwords = await Promise.all(users.map((u) => createUser(app, adminToken, u)));
  const device = newDevice();
  const results = await Promise.all(users.map((u, i) => login(app, device, { username: u, password: passwords[i] as string })));
  const keyIds = new Set(results.map((r) => r.key.record.keyId));
  t.equal(keyIds.size, 1, 'one key id');
  t.equal(new Set(results.map((r) => r.key.dbKey)).size, 1, 'one key');
  const show = await app.inject({ method: 'GET', url: `/v1/devices/${device.imei}`, headers: bearer(adminToken) });
  const dev = json(show)['device'] as { usersSeen: string[]; key: KeyRecord };
  t.same([...dev.usersSeen].sort(), users, 'every user is recorded');
  t.equal(dev.key.keyId, [...keyIds][0]);
});
