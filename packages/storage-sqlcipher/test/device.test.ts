import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { KEYRING_FILE, createFileDeviceKeyStore, createNodeFileSystem, serializeKeyring, type KeyringContent } from '@fieldvault/client';
import { dbFileName, verifyDevice } from '@fieldvault/crypto';
import { PASSWORD_A, PASSWORD_B, PASSWORD_C, newDevice, rejection, serverKey, snapshot } from './helpers.js';

// Cross-package tests: the client's Device on real SQLCipher files. They live here because the
// client may not depend on a storage driver (that would be a cycle).

t.test('offline sign-up then offline login opens the user\'s unverified database', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const session = await device.loginOffline('amina', PASSWORD_A);
  t.equal(session.kind, 'unverified');
  t.equal(session.username, 'amina');
  const record = await session.createRecord({ name: 'Kofi', age: 7 });
  t.same((await session.getRecord(record.id)).fields['name']?.value, 'Kofi');
  await session.logout();
});

t.test('sign-up applies the server password policy', async (t) => {
  const { device } = await newDevice(t);
  t.equal((await rejection(device.signUpOffline('amina', 'short'))).code, 'PASSWORD_TOO_SHORT');
  t.equal((await rejection(device.signUpOffline('amina', 'password'.repeat(3)))).code, 'PASSWORD_TOO_COMMON');
  t.equal((await rejection(device.signUpOffline('amina', 'amina and her very long phrase'))).code, 'PASSWORD_TOO_COMMON');
  t.equal((await rejection(device.signUpOffline('Not A Username', PASSWORD_A))).code, 'INPUT_INVALID');
});

t.test('signing up a username that already has keys fails with VAULT_USER_EXISTS', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  t.equal((await rejection(device.signUpOffline('amina', PASSWORD_B))).code, 'VAULT_USER_EXISTS');
});

t.test('a wrong password fails with VAULT_WRONG_PASSWORD and leaves every file byte-identical', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const before = snapshot(dir);
  t.equal((await rejection(device.loginOffline('amina', PASSWORD_B))).code, 'VAULT_WRONG_PASSWORD');
  t.same(snapshot(dir), before);
  t.equal(device.session, undefined);
});

t.test('an unknown user gets the same VAULT_WRONG_PASSWORD', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  t.equal((await rejection(device.loginOffline('nobody', PASSWORD_A))).code, 'VAULT_WRONG_PASSWORD');
});

t.test('a tampered keyring entry reads as a wrong password', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const path = join(dir, KEYRING_FILE);
  const file = JSON.parse(readFileSync(path, 'utf8')) as { content: { entries: Array<{ keyId: string }> } };
  const entry = file.content.entries[0];
  if (entry === undefined) throw new Error('no entry');
  entry.keyId = 'f'.repeat(32);
  // Re-seal the checksum, as an attacker who knows the format would: only the entry's AEAD catches this.
  writeFileSync(path, serializeKeyring(file.content as unknown as KeyringContent));
  t.equal((await rejection(device.loginOffline('amina', PASSWORD_A))).code, 'VAULT_WRONG_PASSWORD');
});

t.test('a torn keyring is detected at login with VAULT_KEYRING_CORRUPT and never replaced', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const path = join(dir, KEYRING_FILE);
  const bytes = readFileSync(path);
  writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const before = snapshot(dir);
  t.equal((await rejection(device.loginOffline('amina', PASSWORD_A))).code, 'VAULT_KEYRING_CORRUPT');
  t.equal((await rejection(device.signUpOffline('bilal', PASSWORD_B))).code, 'VAULT_KEYRING_CORRUPT');
  t.same(snapshot(dir), before);
});

t.test('an edited keyring (checksum mismatch) is detected with VAULT_KEYRING_CORRUPT and never replaced', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const path = join(dir, KEYRING_FILE);
  writeFileSync(path, readFileSync(path, 'utf8').replace('"amina"', '"amine"'));
  const before = snapshot(dir);
  t.equal((await rejection(device.loginOffline('amina', PASSWORD_A))).code, 'VAULT_KEYRING_CORRUPT');
  t.equal((await rejection(device.changePassword('amina', PASSWORD_A, PASSWORD_B))).code, 'VAULT_KEYRING_CORRUPT');
  t.same(snapshot(dir), before);
});

t.test('the keyring holds wrapped keys only: no database key appears in it', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const { key, record } = serverKey(Date.now(), 'server-a');
  await (await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: record, key })).logout();
  const text = readFileSync(join(dir, KEYRING_FILE), 'utf8');
  for (const form of [Buffer.from(key).toString('hex'), Buffer.from(key).toString('base64')]) t.notOk(text.includes(form));
});

t.test('one session at a time: a second login fails with VAULT_SESSION_OPEN until logout', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  await device.signUpOffline('bilal', PASSWORD_B);
  const a = await device.loginOffline('amina', PASSWORD_A);
  t.equal((await rejection(device.loginOffline('bilal', PASSWORD_B))).code, 'VAULT_SESSION_OPEN');
  await a.logout();
  const b = await device.loginOffline('bilal', PASSWORD_B);
  t.equal(b.username, 'bilal');
});

t.test('after logout every session call fails with VAULT_LOCKED', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const session = await device.loginOffline('amina', PASSWORD_A);
  const record = await session.createRecord({ name: 'Kofi' });
  await device.logout();
  t.equal(session.active, false);
  t.equal((await rejection(session.getRecord(record.id))).code, 'VAULT_LOCKED');
  t.equal((await rejection(session.listRecords())).code, 'VAULT_LOCKED');
  t.equal((await rejection(session.createRecord({ name: 'x' }))).code, 'VAULT_LOCKED');
});

t.test('a password change re-wraps the keys: the old password stops working, the new one opens the same records', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const s1 = await device.loginOffline('amina', PASSWORD_A);
  const record = await s1.createRecord({ name: 'Kofi' });
  await s1.logout();
  t.equal((await rejection(device.changePassword('amina', PASSWORD_B, PASSWORD_C))).code, 'VAULT_WRONG_PASSWORD');
  t.equal((await rejection(device.changePassword('amina', PASSWORD_A, 'too short'))).code, 'PASSWORD_TOO_SHORT');
  await device.changePassword('amina', PASSWORD_A, PASSWORD_C);
  t.equal((await rejection(device.loginOffline('amina', PASSWORD_A))).code, 'VAULT_WRONG_PASSWORD');
  const s2 = await device.loginOffline('amina', PASSWORD_C);
  t.equal((await s2.getRecord(record.id)).id, record.id);
});

t.test('two unverified users on one phone cannot see each other\'s records (get, list, search)', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  await device.signUpOffline('bilal', PASSWORD_B);
  const a = await device.loginOffline('amina', PASSWORD_A);
  const ra = await a.createRecord({ name: 'Shared Name', location: 'North camp', age: 5 });
  await a.logout();
  const b = await device.loginOffline('bilal', PASSWORD_B);
  const rb = await b.createRecord({ name: 'Shared Name', location: 'North camp', age: 5 });
  t.equal((await rejection(b.getRecord(ra.id))).code, 'VAULT_RECORD_NOT_FOUND');
  t.equal((await rejection(b.updateRecord(ra.id, { age: 6 }))).code, 'VAULT_RECORD_NOT_FOUND');
  t.same((await b.listRecords()).map((r) => r.id), [rb.id]);
  t.same((await b.searchRecords({ name: 'shared', location: 'north', ageMin: 1, ageMax: 10 })).map((r) => r.id), [rb.id]);
  await b.logout();
  const a2 = await device.loginOffline('amina', PASSWORD_A);
  t.same((await a2.listRecords()).map((r) => r.id), [ra.id]);
  t.equal((await rejection(a2.getRecord(rb.id))).code, 'VAULT_RECORD_NOT_FOUND');
});

t.test('flow 1: the first server key creates the verified database and moves only that user\'s records into it', async (t) => {
  const { device, storage } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  await device.signUpOffline('bilal', PASSWORD_B);
  const a = await device.loginOffline('amina', PASSWORD_A);
  const mine = [await a.createRecord({ name: 'One' }), await a.createRecord({ name: 'Two' })];
  await a.logout();
  const b = await device.loginOffline('bilal', PASSWORD_B);
  const theirs = await b.createRecord({ name: 'Bilal record' });
  await b.logout();

  const { key, record } = serverKey(Date.now(), 'server-a');
  const session = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: record, key });
  t.equal(session.kind, 'verified');
  t.same(session.keyRecord, record);
  t.same((await session.listRecords()).map((r) => r.id).sort(), mine.map((r) => r.id).sort());
  await session.logout();
  t.same(await device.verifiedKeyRecord(), record);
  t.same(await device.users(), [
    { username: 'amina', kinds: ['verified'] },
    { username: 'bilal', kinds: ['unverified'] },
  ]);
  t.equal((await storage.list()).length, 2, 'amina\'s emptied unverified database is gone; bilal\'s and the verified one remain');

  const again = await device.loginOffline('amina', PASSWORD_A);
  t.equal(again.kind, 'verified');
  t.equal((await again.listRecords()).length, 2);
  await again.logout();
  const b2 = await device.loginOffline('bilal', PASSWORD_B);
  t.same((await b2.listRecords()).map((r) => r.id), [theirs.id]);
});

t.test('moveUnverifiedRecords is refused to an unverified session and finds nothing left after an online login', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const s = await device.loginOffline('amina', PASSWORD_A);
  await s.createRecord({ name: 'Moved by the online login' });
  t.equal((await rejection(s.moveUnverifiedRecords())).code, 'VAULT_FORBIDDEN');
  await s.logout();
  const { key, record } = serverKey(Date.now(), 'server-a');
  const v = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: record, key });
  t.same(await v.moveUnverifiedRecords(), { records: 0, photos: 0 });
  t.equal((await v.listRecords()).length, 1);
});

t.test('flow 3: a second user receiving the same key shares the verified database', async (t) => {
  const { device } = await newDevice(t);
  const { key, record } = serverKey(Date.now(), 'server-a');
  const a = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: record, key });
  const ra = await a.createRecord({ name: 'Seen by all verified users' });
  await a.logout();
  const b = await device.adoptVerifiedKey({ username: 'bilal', password: PASSWORD_B, serverId: 'server-b', keyRecord: record, key });
  t.equal(b.kind, 'verified');
  t.equal((await b.getRecord(ra.id)).id, ra.id);
  await b.logout();
  const b2 = await device.loginOffline('bilal', PASSWORD_B);
  t.equal((await b2.getRecord(ra.id)).id, ra.id, 'offline too');
});

t.test('flow 4: a user who cannot open the device key gets a temporary database, merged into the winner later', async (t) => {
  const { device, storage } = await newDevice(t);
  const t0 = Date.now();
  const ka = serverKey(t0 - 60_000, 'server-a');
  const kb = serverKey(t0 - 30_000, 'server-b');
  // User 1 has K_A (t1) from server A.
  const s1 = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: ka.record, key: ka.key });
  const r1 = await s1.createRecord({ name: 'From A' });
  await s1.logout();
  // User 2 cannot open K_A; server B issues K_B (t2): a temporary database for B.
  const s2 = await device.adoptVerifiedKey({ username: 'bilal', password: PASSWORD_B, serverId: 'server-b', keyRecord: kb.record, key: kb.key });
  t.equal(s2.kind, 'temporary:server-b');
  const r2 = await s2.createRecord({ name: 'From B' });
  t.equal((await rejection(s2.getRecord(r1.id))).code, 'VAULT_RECORD_NOT_FOUND');
  await s2.logout();
  t.same(await device.verifiedKeyRecord(), ka.record, 'the device key is still K_A');
  // User 1 logs into B sending K_A; B keeps the newest (K_B) and returns it.
  const s3 = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-b', keyRecord: kb.record, key: kb.key });
  t.equal(s3.kind, 'verified');
  t.same((await s3.listRecords()).map((r) => r.id).sort(), [r1.id, r2.id].sort(), 'nothing lost');
  await s3.logout();
  t.same(await device.verifiedKeyRecord(), kb.record);
  t.same(await storage.list(), [dbFileName(kb.key)], 'one verified database, the loser deleted');
  // Every user can still log in offline and sees the one verified database.
  for (const [user, pw] of [
    ['amina', PASSWORD_A],
    ['bilal', PASSWORD_B],
  ] as const) {
    const s = await device.loginOffline(user, pw);
    t.equal(s.kind, 'verified', `${user} is verified`);
    t.equal((await s.listRecords()).length, 2);
    await s.logout();
  }
});

t.test('a newer key offered for a device whose user holds the current one wins; an older one loses (rekey order)', async (t) => {
  const { device } = await newDevice(t);
  const t0 = Date.now();
  const k1 = serverKey(t0 - 60_000, 'server-a');
  const k0 = serverKey(t0 - 120_000, 'server-b');
  const s = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: k1.record, key: k1.key });
  await s.createRecord({ name: 'Kept' });
  await s.logout();
  const s2 = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-b', keyRecord: k0.record, key: k0.key });
  t.equal(s2.keyId, k1.record.keyId, 'the older key lost');
  t.equal((await s2.listRecords()).length, 1);
});

t.test('key succession: a user wrapped only under K1 still logs in offline after the device moved K1 → K2 → K3', async (t) => {
  const { dir, device, storage } = await newDevice(t);
  const t0 = Date.now();
  const k1 = serverKey(t0 - 90_000, 'server-a');
  const k2 = serverKey(t0 - 60_000, 'server-a');
  const k3 = serverKey(t0 - 30_000, 'server-a');
  await (await device.adoptVerifiedKey({ username: 'bilal', password: PASSWORD_B, serverId: 'server-a', keyRecord: k1.record, key: k1.key })).logout();
  const a = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: k1.record, key: k1.key });
  const record = await a.createRecord({ name: 'Survives two rekeys' });
  await a.logout();
  await (await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: k2.record, key: k2.key })).logout();
  await (await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: k3.record, key: k3.key })).logout();
  t.same(await storage.list(), [dbFileName(k3.key)]);

  const b = await device.loginOffline('bilal', PASSWORD_B);
  t.equal(b.keyId, k3.record.keyId, 'bilal followed the chain to K3');
  t.equal((await b.getRecord(record.id)).id, record.id);
  await b.logout();
  const file = JSON.parse(readFileSync(join(dir, KEYRING_FILE), 'utf8')) as {
    content: { entries: Array<{ username: string; keyId: string }>; successions: unknown[] };
  };
  t.same(
    file.content.entries.map((e) => [e.username, e.keyId]).sort(),
    [
      ['amina', k3.record.keyId],
      ['bilal', k3.record.keyId],
    ],
    'bilal was re-wrapped under K3 on the spot',
  );
  t.same(file.content.successions, [], 'successions nobody needs are pruned');
});

t.test('adoptVerifiedKey refuses a record for another IMEI or a key that does not match it', async (t) => {
  const { device } = await newDevice(t);
  const { key, record } = serverKey(Date.now(), 'server-a');
  const other = serverKey(Date.now(), 'server-a');
  t.equal(
    (await rejection(device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: { ...record, imei: '356938035643809' }, key })))
      .code,
    'KEY_MISMATCH',
  );
  t.equal(
    (await rejection(device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: record, key: other.key }))).code,
    'KEY_MISMATCH',
  );
  t.equal(
    (await rejection(device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: { ...record, keyId: 'xyz' }, key }))).code,
    'KEY_RECORD_INVALID',
  );
});

t.test('the device key pair is created once, kept in a 0600 file, and signs for every user', async (t) => {
  const { dir, device } = await newDevice(t);
  const pub = await device.publicKey();
  const message = new TextEncoder().encode('challenge');
  // Only the SDK's own logins and sign-ups sign with it: a Device has no method that signs any bytes.
  t.notOk('sign' in device, 'no Device.sign');
  t.ok(verifyDevice(pub, message, await createFileDeviceKeyStore(createNodeFileSystem(dir)).sign(message)), 'the file holds the pair of the public key');
  const { statSync } = await import('node:fs');
  t.equal(statSync(join(dir, 'device-key.json')).mode & 0o777, 0o600);
  const { device: again } = await newDevice(t, {}, dir);
  t.same(await again.publicKey(), pub);
});

t.test('wipe deletes databases, photos, keyring and device key', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  await device.publicKey();
  const s = await device.loginOffline('amina', PASSWORD_A);
  await s.createRecord({ name: 'Gone' });
  await device.wipe();
  t.equal(device.session, undefined);
  const { filesUnder } = await import('./helpers.js');
  t.same(filesUnder(dir), []);
  t.equal((await rejection(device.loginOffline('amina', PASSWORD_A))).code, 'VAULT_WRONG_PASSWORD');
});

t.test('a device does not offer its sessions\' callbacks to the app (SDK audit M10: one of them wiped the phone with no server involved)', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  for (const name of ['deviceBlacklisted', 'deviceRetired', 'sessionClosed', 'moveUnverifiedRecords', 'claimUnverifiedRecords']) {
    t.equal(typeof (device as unknown as Record<string, unknown>)[name], 'undefined', `no device.${name}`);
  }
  t.same((await device.users()).map((u) => u.username), ['amina'], 'nothing was wiped');
});
