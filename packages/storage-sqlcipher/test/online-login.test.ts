// Online login end to end (issue 4, item 2; issue 5, item 8): real server processes
// (apps/server on the embedded store, self-signed TLS pinned by fingerprint) and real SDK devices
// on SQLCipher files. After each step the phone's databases and keyring and the servers' key
// records (admin GET /v1/devices/:imei) are checked.
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ChildRecord, KeyRecord, LoginBody, LoginResponse } from '@fieldvault/protocol';
import { formatHlc } from '@fieldvault/protocol';
import { createHttpTransport, type Transport } from '@fieldvault/client';
import { generateDbKey, keyId, toBase64 } from '@fieldvault/crypto';
import type { ServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A, PASSWORD_B, PASSWORD_C, filesUnder, jpegWithGps, newDevice, recording, rejection, snapshot, startServers } from './helpers.js';

// The same field workers exist on both servers, with the same passwords.
const [A, B] = (await startServers(t, 'online', ['server-a', 'server-b'], [['amina', PASSWORD_A], ['bilal', PASSWORD_B]])) as [
  ServerProcess,
  ServerProcess,
];

const ids = (records: readonly ChildRecord[]): string[] => records.map((r) => r.id).sort();

/** Every file under `dir` whose bytes contain `text`. */
function filesContaining(dir: string, text: string): string[] {
  return filesUnder(dir).filter((f) => readFileSync(join(dir, f)).includes(Buffer.from(text)));
}

/** Snapshot of the files of one database (its `.db` and side files). */
function dbFiles(dir: string, name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(snapshot(dir)).filter(([f]) => f.includes(name)));
}

t.test('flows 1–3: an offline user is verified by server A, brings K_A to server B, and a new user on the phone receives K_A', async (t) => {
  const imei = '356938035643801';
  const { dir, device, storage } = await newDevice(t, { imei });

  // Offline: two unverified users, each with their own records.
  await device.signUpOffline('amina', PASSWORD_A);
  await device.signUpOffline('chidi', PASSWORD_C);
  let s = await device.loginOffline('amina', PASSWORD_A);
  const mine = [await s.createRecord({ name: 'Amina first' }), await s.createRecord({ name: 'Amina second' })];
  await s.logout();
  s = await device.loginOffline('chidi', PASSWORD_C);
  const chidis = await s.createRecord({ name: 'Chidi only' });
  await s.logout();
  const unverifiedDbs = await storage.list();
  t.equal(unverifiedDbs.length, 2, 'one unverified database per unverified user');
  const everyDbBefore = Object.fromEntries(unverifiedDbs.map((n) => [n, dbFiles(dir, n)]));

  // Flow 1: amina logs in online to A: A issues K_A, her records move into the verified database.
  const toA = recording(A.transport());
  const v1 = await device.loginOnline('amina', PASSWORD_A, { transport: toA });
  const keyA = await A.deviceKey(imei);
  if (keyA === null) throw new Error('A issued no key');
  t.equal(keyA.issuer, 'server-a', 'A issued the key');
  t.equal(v1.kind, 'verified');
  t.same(v1.keyRecord, keyA, 'the phone holds the key record A holds');
  t.same(await device.verifiedKeyRecord(), keyA);
  t.same(ids(await v1.listRecords()), ids(mine), 'amina\'s records (and only hers) are in the verified database');
  t.same(v1.serverLogins.map((l) => [l.serverId, l.role]), [['server-a', 'field_worker']]);
  const dbs1 = await storage.list();
  t.equal(dbs1.length, 2, 'the verified database and chidi\'s unverified one');
  const chidiDb = unverifiedDbs.find((n) => dbs1.includes(n));
  if (chidiDb === undefined) throw new Error('chidi\'s database is gone');
  t.same(dbFiles(dir, chidiDb), everyDbBefore[chidiDb], 'chidi\'s unverified database was not touched');
  t.same(await device.users(), [
    { username: 'amina', kinds: ['verified'] },
    { username: 'chidi', kinds: ['unverified'] },
  ]);

  // The server session is bound to this device, and its token lives in memory only.
  const [tokenA] = toA.tokens;
  if (tokenA === undefined) throw new Error('no token');
  const sessionA = await A.call('GET', '/v1/auth/session', undefined, { authorization: `Bearer ${tokenA}` });
  t.match(sessionA.body, { user: { username: 'amina' }, imei });
  t.same(filesContaining(dir, tokenA), [], 'the token is in no file on the phone');

  // Flow 2: amina (still logged in) logs in to B, which has no key for the IMEI: she offers K_A (t1).
  const v2 = await device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  t.notOk(v1.active, 'the previous session of the same user was replaced');
  t.equal(v2.kind, 'verified');
  t.equal(v2.keyId, keyA.keyId, 'still K_A');
  t.same(await B.deviceKey(imei), keyA, 'B adopted K_A with its original timestamp and issuer');
  t.same(
    v2.serverLogins.map((l) => l.serverId),
    ['server-a', 'server-b'],
    'the server sessions of the replaced session carry over',
  );
  t.same(await storage.list(), dbs1, 'no database was added or removed');

  // One user at a time: another user cannot log in online while amina's session is open.
  t.equal((await rejection(device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() }))).code, 'VAULT_SESSION_OPEN');
  await v2.logout();
  t.same(v2.serverLogins, [], 'logout forgets the server sessions');

  // Flow 3: bilal, new on this phone, logs in to B: B returns K_A to any valid user of the device.
  const v3 = await device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  t.equal(v3.kind, 'verified');
  t.equal(v3.keyId, keyA.keyId);
  t.same(ids(await v3.listRecords()), ids(mine), 'bilal sees the verified database');
  await v3.logout();
  t.match(await B.device(imei), { usersSeen: ['amina', 'bilal'], key: keyA });
  t.same(await A.deviceKey(imei), keyA);

  // Offline afterwards: every user still logs in and sees what they should.
  for (const [user, password, kind, expected] of [
    ['amina', PASSWORD_A, 'verified', ids(mine)],
    ['bilal', PASSWORD_B, 'verified', ids(mine)],
    ['chidi', PASSWORD_C, 'unverified', [chidis.id]],
  ] as const) {
    const off = await device.loginOffline(user, password);
    t.equal(off.kind, kind, `${user} offline: ${kind}`);
    t.same(ids(await off.listRecords()), expected);
    await off.logout();
  }
  t.same(await storage.list(), dbs1);
});

t.test('flow 4: two users, two servers, two keys: the newest wins everywhere, the loser is migrated, nothing is lost', async (t) => {
  const imei = '356938035643802';
  const { device, storage } = await newDevice(t, { imei });

  // User 1 gets K_A (t1) from A.
  const s1 = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const keyA = await A.deviceKey(imei);
  if (keyA === null) throw new Error('A issued no key');
  t.equal(s1.keyId, keyA.keyId);
  const fromA = await s1.createRecord({ name: 'Registered under K_A' });
  await s1.logout();

  // User 2 cannot open K_A; B has no key for the IMEI and issues K_B (t2): a temporary database for B.
  const s2 = await device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  const keyB = await B.deviceKey(imei);
  if (keyB === null) throw new Error('B issued no key');
  t.equal(keyB.issuer, 'server-b');
  t.ok(keyB.issuedAt > keyA.issuedAt, 'K_B is newer');
  t.equal(s2.kind, 'temporary:server-b');
  t.equal(s2.keyId, keyB.keyId);
  const fromB = await s2.createRecord({ name: 'Registered under K_B' });
  t.same(ids(await s2.listRecords()), [fromB.id], 'the temporary database holds only B\'s records');
  await s2.logout();
  t.same(await device.verifiedKeyRecord(), keyA, 'the device key is still K_A');
  t.equal((await storage.list()).length, 2, 'verified (K_A) and temporary (K_B) databases');
  t.same(await A.deviceKey(imei), keyA);

  // User 1 logs in to B offering K_A: B keeps the newest (K_B) and returns it; the phone migrates K_A's database into K_B's.
  const s3 = await device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  t.equal(s3.kind, 'verified');
  t.equal(s3.keyId, keyB.keyId, 'K_B won');
  t.same(ids(await s3.listRecords()), ids([fromA, fromB]), 'nothing lost');
  await s3.logout();
  t.same(await device.verifiedKeyRecord(), keyB);
  t.equal((await storage.list()).length, 1, 'one verified database left; the loser was deleted');
  t.same(await B.deviceKey(imei), keyB);
  t.same(await A.deviceKey(imei), keyA, 'A has not heard of K_B yet');

  // User 1 logs in to A offering K_B: A replaces K_A by the newer K_B. Every server now holds K_B.
  const s4 = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  t.equal(s4.keyId, keyB.keyId);
  await s4.logout();
  t.same(await A.deviceKey(imei), keyB, 'A converged to K_B');
  t.equal((await storage.list()).length, 1);

  // Every user can still log in offline and sees the one verified database.
  for (const [user, password] of [
    ['amina', PASSWORD_A],
    ['bilal', PASSWORD_B],
  ] as const) {
    const off = await device.loginOffline(user, password);
    t.equal(off.kind, 'verified', `${user} is verified`);
    t.equal(off.keyId, keyB.keyId);
    t.same(ids(await off.listRecords()), ids([fromA, fromB]));
    await off.logout();
  }
  t.same(await device.users(), [
    { username: 'amina', kinds: ['verified'] },
    { username: 'bilal', kinds: ['verified'] },
  ]);
});

t.test('flow 4, other order: user 2 carries K_B from their temporary database to server A, which converges; user 1 then reconciles the phone', async (t) => {
  const imei = '356938035643808';
  const { device, storage } = await newDevice(t, { imei });
  const s1 = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const fromA = await s1.createRecord({ name: 'Registered under K_A' });
  await s1.logout();
  const keyA = await A.deviceKey(imei);
  const s2 = await device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  const fromB = await s2.createRecord({ name: 'Registered under K_B' });
  await s2.logout();
  const keyB = await B.deviceKey(imei);
  if (keyA === null || keyB === null) throw new Error('no keys issued');

  // Bilal logs in to A offering the key he holds (K_B, B's temporary key): A replaces K_A by the newer K_B.
  const s3 = await device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  t.equal(s3.kind, 'temporary:server-a', 'the device key is still K_A, which bilal cannot open');
  t.equal(s3.keyId, keyB.keyId);
  t.same(ids(await s3.listRecords()), [fromB.id]);
  await s3.logout();
  t.same(await A.deviceKey(imei), keyB, 'A converged to K_B');
  t.same(await device.verifiedKeyRecord(), keyA);
  t.equal((await storage.list()).length, 2);

  // Amina logs in to A offering K_A: A answers K_B, and the phone migrates K_A's database into it.
  const s4 = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  t.equal(s4.kind, 'verified');
  t.equal(s4.keyId, keyB.keyId);
  t.same(ids(await s4.listRecords()), ids([fromA, fromB]), 'nothing lost');
  await s4.logout();
  t.same(await device.verifiedKeyRecord(), keyB);
  t.equal((await storage.list()).length, 1, 'one database left');
  t.same([await A.deviceKey(imei), await B.deviceKey(imei)], [keyB, keyB], 'one key for the IMEI on every server');
  for (const [user, password] of [
    ['amina', PASSWORD_A],
    ['bilal', PASSWORD_B],
  ] as const) {
    const off = await device.loginOffline(user, password);
    t.equal(off.kind, 'verified', `${user} is verified`);
    t.same(ids(await off.listRecords()), ids([fromA, fromB]));
    await off.logout();
  }
  t.same(await device.users(), [
    { username: 'amina', kinds: ['verified'] },
    { username: 'bilal', kinds: ['verified'] },
  ]);
});

t.test('a wrong password online fails with the server\'s AUTH_INVALID_CREDENTIALS and changes nothing on the phone', async (t) => {
  const imei = '356938035643803';
  const { dir, device } = await newDevice(t, { imei });
  const s = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  await s.createRecord({ name: 'Kept' });
  await s.logout();
  const before = snapshot(dir);
  t.equal((await rejection(device.loginOnline('amina', PASSWORD_B, { transport: A.transport() }))).code, 'AUTH_INVALID_CREDENTIALS');
  t.equal((await rejection(device.loginOnline('nobody', PASSWORD_B, { transport: A.transport() }))).code, 'AUTH_INVALID_CREDENTIALS');
  t.same(snapshot(dir), before, 'every file byte-identical');
  t.equal(device.session, undefined);
});

t.test('a blacklisted device is wiped at its next login: databases, photos, keyring and device key', async (t) => {
  const imei = '356938035643804';
  const { dir, device } = await newDevice(t, { imei });
  await device.signUpOffline('chidi', PASSWORD_C);
  const s = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const record = await s.createRecord({ name: 'On a stolen phone' });
  await s.addPhoto(record.id, jpegWithGps('stolen-phone-canary'));
  await s.logout();
  t.ok(filesUnder(dir).length > 3);

  const res = await A.admin('POST', `/v1/devices/${imei}/blacklist`, { reason: 'reported stolen' });
  t.equal(res.status, 200);
  const err = await rejection(device.loginOnline('amina', PASSWORD_A, { transport: A.transport() }));
  t.equal(err.code, 'DEVICE_BLACKLISTED');
  t.match((err as { details?: unknown }).details, { wiped: true, serverId: 'server-a' });
  t.same(filesUnder(dir), ['blocked.json'], 'nothing is left under the SDK directory but the mark of the blacklisting');
  t.same(await device.users(), []);
  // Offline login finds no key, and says why (blocked-mark.test.ts covers the other servers).
  for (const [user, password] of [['amina', PASSWORD_A], ['chidi', PASSWORD_C]] as const) {
    const off = await rejection(device.loginOffline(user, password));
    t.equal(off.code, 'DEVICE_BLACKLISTED');
    t.match((off as { details?: unknown }).details, { serverId: 'server-a', local: true });
  }
});

t.test('an untrusted certificate (wrong pin, unknown CA) is refused before anything is sent, and nothing is written', async (t) => {
  const imei = '356938035643805';
  const { dir, device } = await newDevice(t, { imei });
  await device.signUpOffline('amina', PASSWORD_A);
  const before = snapshot(dir);
  const untrusted = [
    A.transport({ tls: { pinSha256: B.fingerprint } }),
    A.transport({ tls: { ca: B.certPem } }),
    createHttpTransport({ baseUrl: A.url, serverId: 'server-a' }), // system CA store: the dev certificate is not in it
  ];
  for (const transport of untrusted) {
    t.equal((await rejection(device.loginOnline('amina', PASSWORD_A, { transport }))).code, 'TRANSPORT_TLS_UNTRUSTED');
  }
  t.same(snapshot(dir), before, 'every file byte-identical (not even a device key was made)');
  t.equal(await A.device(imei), undefined, 'the server never heard of this device');
  // The same server with the right CA is fine.
  const ok = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport({ tls: { ca: A.certPem } }) });
  t.equal(ok.kind, 'verified');
});

t.test('a hostile or broken server (trusted certificate, bad answers) gets TRANSPORT_BAD_RESPONSE and nothing is written', async (t) => {
  const imei = '356938035643806';
  const { dir, device } = await newDevice(t, { imei });
  await device.signUpOffline('amina', PASSWORD_A);
  await device.publicKey();
  const s = await device.loginOffline('amina', PASSWORD_A);
  await s.createRecord({ name: 'Must survive' });
  await s.logout();
  const before = snapshot(dir);

  const challenge = { challenge: 'c'.repeat(43), expiresAt: new Date(Date.now() + 60_000).toISOString() };
  const key = generateDbKey();
  const record: KeyRecord = { imei, keyId: keyId(key), issuedAt: formatHlc({ wall: Date.now(), counter: 0, node: 'server-a' }), issuer: 'server-a' };
  const valid: LoginResponse = {
    token: 't'.repeat(43),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    user: { username: 'amina', role: 'field_worker' },
    key: { record, dbKey: toBase64(key) },
  };
  const other = generateDbKey();
  const answers: Array<[string, (path: string) => { status: number; text: string; cut?: boolean }]> = [
    ['garbage to the challenge', () => ({ status: 200, text: '<html>hello</html>' })],
    ['a key that does not match its record', (p) => ({ status: 200, text: JSON.stringify(p.endsWith('challenge') ? challenge : { ...valid, key: { record, dbKey: toBase64(other) } }) })],
    [
      'a key record for another device',
      (p) => ({ status: 200, text: JSON.stringify(p.endsWith('challenge') ? challenge : { ...valid, key: { record: { ...record, imei: '356938035643899' }, dbKey: toBase64(key) } }) }),
    ],
    ['an answer for another user', (p) => ({ status: 200, text: JSON.stringify(p.endsWith('challenge') ? challenge : { ...valid, user: { username: 'admin', role: 'admin' } }) })],
    ['an extra property', (p) => ({ status: 200, text: JSON.stringify(p.endsWith('challenge') ? challenge : { ...valid, wipe: true }) })],
    // A login answer the connection cuts short is TRANSPORT_UNREACHABLE now: see the next test.
  ];
  for (const [name, answer] of answers) {
    const hostile = await hostileServer(t, answer);
    const transport = createHttpTransport({ baseUrl: hostile, serverId: 'server-a', tls: { pinSha256: A.fingerprint }, timeoutMs: 5_000 });
    t.equal((await rejection(device.loginOnline('amina', PASSWORD_A, { transport }))).code, 'TRANSPORT_BAD_RESPONSE', name);
    t.same(snapshot(dir), before, `${name}: every file byte-identical`);
  }
  t.equal(device.session, undefined);
  const off = await device.loginOffline('amina', PASSWORD_A);
  t.equal(off.kind, 'unverified', 'the user is exactly as before');
  t.equal((await off.listRecords()).length, 1);
});

t.test('a login answer the connection cuts short is TRANSPORT_UNREACHABLE, is not sent again, and nothing is written', async (t) => {
  // The server may have accepted the login (its challenge is spent, a session may exist): the SDK
  // must not send it again by itself, even with retries allowed; the user logs in again if they want.
  const imei = '356938035643808';
  const { dir, device } = await newDevice(t, { imei });
  await device.signUpOffline('amina', PASSWORD_A);
  await device.publicKey();
  const before = snapshot(dir);
  const challenge = { challenge: 'c'.repeat(43), expiresAt: new Date(Date.now() + 60_000).toISOString() };
  const key = generateDbKey();
  const record: KeyRecord = { imei, keyId: keyId(key), issuedAt: formatHlc({ wall: Date.now(), counter: 0, node: 'server-a' }), issuer: 'server-a' };
  const valid: LoginResponse = {
    token: 't'.repeat(43),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    user: { username: 'amina', role: 'field_worker' },
    key: { record, dbKey: toBase64(key) },
  };
  const seen = { challenges: 0, logins: 0 };
  const hostile = await hostileServer(t, (p) => {
    if (p.endsWith('challenge')) {
      seen.challenges += 1;
      return { status: 200, text: JSON.stringify(challenge) };
    }
    seen.logins += 1;
    return { status: 200, text: JSON.stringify(valid), cut: true };
  });
  const transport = createHttpTransport({ baseUrl: hostile, serverId: 'server-a', tls: { pinSha256: A.fingerprint }, timeoutMs: 5_000 });
  const err = await rejection(device.loginOnline('amina', PASSWORD_A, { transport, retry: { attempts: 5, baseDelayMs: 10 } }));
  t.equal(err.code, 'TRANSPORT_UNREACHABLE', 'a lost connection, not a bad answer');
  t.same(seen, { challenges: 1, logins: 1 }, 'the login was sent once');
  t.same(snapshot(dir), before, 'every file byte-identical');
  t.equal(device.session, undefined);
  transport.close();
});

/** A local HTTPS server presenting server A's own certificate (so the pin holds) with scripted answers. */
async function hostileServer(t: Test, answer: (path: string) => { status: number; text: string; cut?: boolean }): Promise<string> {
  const server = createHttpsServer({ cert: A.certPem, key: readFileSync(A.keyFile, 'utf8') }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const a = answer(req.url ?? '');
      const body = Buffer.from(a.text);
      res.writeHead(a.status, { 'content-type': 'application/json', 'content-length': String(body.byteLength) });
      if (a.cut === true) {
        res.write(body.subarray(0, body.byteLength >> 1));
        setTimeout(() => res.destroy(), 20);
      } else res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('loginOnline refuses without a transport, and checks the transport\'s server id', async (t) => {
  const { device } = await newDevice(t, { imei: '356938035643807' });
  t.equal((await rejection(device.loginOnline('amina', PASSWORD_A))).code, 'INPUT_INVALID');
  const bad = { ...A.transport(), serverId: 'Not An Id' } as Transport;
  t.equal((await rejection(device.loginOnline('amina', PASSWORD_A, { transport: bad }))).code, 'INPUT_INVALID');
  t.equal((await rejection(device.loginOnline('Not A User', PASSWORD_A, { transport: A.transport() }))).code, 'INPUT_INVALID');
});
