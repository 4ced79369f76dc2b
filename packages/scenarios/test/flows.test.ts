// The four RapidFTR flows end to end (issue 6 §2; DESIGN.md §3), plus admin rekey, blacklist and
// retire, on real server processes and real SDK phones (SQLCipher files). After every step the
// test asserts: the key each server holds for the IMEI (id and timestamp); which databases exist
// on the phone and under which key; where each record is (phone, each server); who can log in
// offline and what each user sees. docs/scenarios.md draws these flows as sequence diagrams.
// Servers are shared by the tests of this file; each test has its own phone (IMEI) and records.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { KeyRecord } from '@fieldvault/protocol';
import { compareKeyRecords } from '@fieldvault/protocol';
import { filesContaining, filesUnder, png } from '@fieldvault/test-support';
import type { Session } from '@fieldvault/client';
import { Scenario, allRecords, idsOf, type Phone } from '../src/index.js';

const PASSWORDS = {
  amina: 'amber lantern over quiet harbour',
  bilal: 'seven copper kettles sing at dawn',
  chidi: 'granite owls measure the slow river',
} as const;

const sc = await Scenario.start({
  root: mkdtempSync(join(tmpdir(), 'fieldvault-flows-')),
  servers: ['server-a', 'server-b'],
  users: Object.entries(PASSWORDS).map(([username, password]) => ({ username, password })),
});
t.teardown(() => sc.teardown());
const A = 'server-a';
const B = 'server-b';

async function rejection(p: Promise<unknown>): Promise<{ code?: string; details?: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string };
  }
  throw new Error('expected a rejection');
}

/** The key record a server holds for the phone; fails the test when there is none. */
async function keyOn(serverId: string, phone: Phone): Promise<KeyRecord> {
  const k = await sc.server(serverId).deviceKey(phone.imei);
  if (k === null) throw new Error(`${serverId} holds no key for ${phone.imei}`);
  return k;
}

/** Which of `ids` each server holds, by server id. */
async function whereOnServers(ids: readonly string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [server, held] of Object.entries(await sc.serverRecordIds())) out[server] = ids.filter((id) => held.includes(id)).sort();
  return out;
}

/** Asserts the phone's keyring and databases: verified key, temporary keys, and the key of every database file. */
async function assertPhone(
  t: Test,
  phone: Phone,
  expected: { verified: KeyRecord | null; temporary?: Record<string, string>; databases: string[]; users: Record<string, string[]> },
  step: string,
): Promise<void> {
  const s = await phone.state();
  t.same(s.verified, expected.verified, `${step}: the phone's verified key record`);
  t.same(s.temporary, expected.temporary ?? {}, `${step}: the phone's temporary databases`);
  t.same(s.databases.map((d) => d.key), [...expected.databases].sort(), `${step}: one database file per key, under these keys`);
  t.same(Object.fromEntries(s.users.map((u) => [u.username, u.kinds])), expected.users, `${step}: users and the kinds of database they open`);
  t.equal(s.pending, 0, `${step}: no migration left half done`);
}

/**
 * Asserts who can log in offline, into which database, and which records each sees. The servers
 * are shared by this file's tests and verified phones pull everything a server holds, so a
 * verified or temporary view is compared on the records of the test (`mine`); an unverified view
 * (which never pulls) must be exactly `ids`.
 */
async function assertOffline(
  t: Test,
  phone: Phone,
  mine: ReadonlySet<string>,
  expected: Record<string, { kind: string; keyId?: string; ids: readonly string[] }>,
  step: string,
): Promise<void> {
  for (const [user, e] of Object.entries(expected)) {
    const v = await phone.offlineView(user);
    t.equal(v.kind, e.kind, `${step}: ${user} logs in offline (${e.kind})`);
    if (e.keyId !== undefined) t.equal(v.keyId, e.keyId, `${step}: ${user} opens the database under ${e.keyId}`);
    const seen = v.kind === 'unverified' ? v.ids : v.ids.filter((id) => mine.has(id));
    t.same(seen, [...e.ids].sort(), `${step}: ${user} sees exactly these records`);
  }
}

/** The ids a session sees among `mine`. */
async function visible(session: Session, mine: ReadonlySet<string>): Promise<string[]> {
  return idsOf(await allRecords(session)).filter((id) => mine.has(id));
}

t.test('flows 1 → 2 → 3 on one phone: offline users, server A verifies, server B adopts K_A, a new user receives K_A', async (t) => {
  const phone = await sc.addPhone('p123', '356938035646001');
  // Another field phone puts a record on A first, to show that A's records reach B through this phone.
  const other = await sc.addPhone('p123-other', '356938035646002');
  await other.loginOnline('bilal', A);
  const fromOtherPhone = await other.session!.createRecord({ name: 'Registered on another phone' });
  await other.sync(A);
  await other.logout();

  let aminas: string[] = [];
  let chidis: string[] = [];
  let keyA: KeyRecord | undefined;
  const mine = (): Set<string> => new Set([...aminas, ...chidis, fromOtherPhone.id]);

  await t.test('flow 1: offline login → unverified; online with A → verified under K_A, only her records moved and pushed', async (t) => {
    await phone.signUpOffline('amina');
    await phone.signUpOffline('chidi');
    let s = await phone.loginOffline('amina');
    const withPhoto = await s.createRecord({ name: 'Amina first', age: 4 });
    await s.addPhoto(withPhoto.id, png('flow1-photo-canary'));
    aminas = [withPhoto.id, (await s.createRecord({ name: 'Amina second' })).id];
    await s.logout();
    s = await phone.loginOffline('chidi');
    chidis = [(await s.createRecord({ name: 'Chidi only' })).id];
    await s.logout();

    t.same(await sc.serverKeys(phone.imei), { [A]: null, [B]: null }, 'offline: no server knows the phone');
    await assertPhone(t, phone, { verified: null, databases: ['phone-made', 'phone-made'], users: { amina: ['unverified'], chidi: ['unverified'] } }, 'offline');
    await assertOffline(t, phone, mine(), { amina: { kind: 'unverified', ids: aminas }, chidi: { kind: 'unverified', ids: chidis } }, 'offline');
    t.same(await whereOnServers([...aminas, ...chidis]), { [A]: [], [B]: [] }, 'offline: no record on any server');

    // Online with A: A authenticates amina, has no key for the IMEI and issues K_A (t1).
    s = await phone.loginOnline('amina', A);
    keyA = await keyOn(A, phone);
    t.equal(keyA.issuer, A, 'A issued K_A');
    t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: null });
    t.equal(s.kind, 'verified');
    t.equal(s.keyId, keyA.keyId);
    t.same(idsOf(await allRecords(s)), [...aminas].sort(), "amina's records (and only hers) moved into the verified database");
    await assertPhone(t, phone, { verified: keyA, databases: [keyA.keyId, 'phone-made'], users: { amina: ['verified'], chidi: ['unverified'] } }, 'flow 1 login');

    const summary = await phone.sync(A);
    t.match(summary, { pushed: 2, failed: [], photos: { uploaded: 1, failed: [] } }, 'her two records and her photo go up');
    t.ok(summary.pulled >= 3, "A's records (the other phone's too) come down");
    t.same(await whereOnServers([...aminas, ...chidis, fromOtherPhone.id]), { [A]: [...aminas, fromOtherPhone.id].sort(), [B]: [] }, "A holds amina's records, never chidi's");
    await phone.logout();
    await assertOffline(
      t,
      phone,
      mine(),
      { amina: { kind: 'verified', keyId: keyA.keyId, ids: [...aminas, fromOtherPhone.id] }, chidi: { kind: 'unverified', ids: chidis } },
      'after flow 1',
    );
    t.same(filesContaining(phone.dir, 'flow1-photo-canary'), [], 'no plaintext canary in any file of the phone');
    const chidi = await phone.loginOffline('chidi');
    t.equal((await rejection(chidi.sync({ transport: sc.transport(A) }))).code, 'SYNC_LOGIN_REQUIRED', 'an unverified user cannot sync');
    await chidi.logout();
  });

  await t.test('flow 2: the same user logs into B offering K_A (t1): B adopts it; records from A reach B through the phone', async (t) => {
    if (keyA === undefined) return t.fail('flow 1 did not finish');
    const s = await phone.loginOnline('amina', B);
    t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: keyA }, 'B holds K_A with its original timestamp and issuer');
    t.equal(s.keyId, keyA.keyId);
    await assertPhone(t, phone, { verified: keyA, databases: [keyA.keyId, 'phone-made'], users: { amina: ['verified'], chidi: ['unverified'] } }, 'flow 2 login');
    t.same(await whereOnServers([fromOtherPhone.id]), { [A]: [fromOtherPhone.id], [B]: [] }, 'before the sync B has not seen the other phone\'s record');
    const summary = await phone.sync(B);
    t.match(summary, { failed: [], photos: { uploaded: 1 } });
    t.ok(summary.pushed >= 3, "her records and the other phone's, relayed");
    t.same(
      await whereOnServers([...aminas, ...chidis, fromOtherPhone.id]),
      { [A]: [...aminas, fromOtherPhone.id].sort(), [B]: [...aminas, fromOtherPhone.id].sort() },
      "B received A's records through the phone (relayed), still never chidi's",
    );
    await phone.logout();
  });

  await t.test('flow 3: a new user on the phone logs into B and receives K_A; then chidi is verified by A and his records join', async (t) => {
    if (keyA === undefined) return t.fail('flow 1 did not finish');
    const s = await phone.loginOnline('bilal', B);
    t.equal(s.kind, 'verified');
    t.equal(s.keyId, keyA.keyId, 'B hands K_A to any valid user of the device');
    t.same(await visible(s, mine()), [...aminas, fromOtherPhone.id].sort(), 'bilal sees the verified database');
    await phone.logout();
    t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: keyA });
    t.match(await sc.server(B).device(phone.imei), { usersSeen: ['amina', 'bilal'] });
    await assertPhone(
      t,
      phone,
      { verified: keyA, databases: [keyA.keyId, 'phone-made'], users: { amina: ['verified'], bilal: ['verified'], chidi: ['unverified'] } },
      'flow 3, bilal',
    );

    // chidi, unverified until now, logs into A: he receives K_A and his records move; his unverified database goes.
    await phone.loginOnline('chidi', A);
    await assertPhone(t, phone, { verified: keyA, databases: [keyA.keyId], users: { amina: ['verified'], bilal: ['verified'], chidi: ['verified'] } }, 'flow 3, chidi');
    await phone.sync(A);
    await phone.logout();
    const all = [...aminas, ...chidis, fromOtherPhone.id];
    t.same(await whereOnServers(all), { [A]: [...all].sort(), [B]: [...aminas, fromOtherPhone.id].sort() }, "chidi's record reached A (B gets it at the next sync with B)");
    await assertOffline(
      t,
      phone,
      mine(),
      {
        amina: { kind: 'verified', keyId: keyA.keyId, ids: all },
        bilal: { kind: 'verified', keyId: keyA.keyId, ids: all },
        chidi: { kind: 'verified', keyId: keyA.keyId, ids: all },
      },
      'after flow 3',
    );
    t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: keyA }, 'one key for the IMEI on every server');
  });
});

t.test('flow 4: two users, two servers, a temporary database for B, newest key wins, the loser migrates, both servers converge, nothing lost', async (t) => {
  const phone = await sc.addPhone('p4', '356938035646004');

  // User 1 (amina) gets K_A (t1) from A and registers a record.
  let s = await phone.loginOnline('amina', A);
  const keyA = await keyOn(A, phone);
  const r1 = (await s.createRecord({ name: 'Registered under K_A' })).id;
  await s.addPhoto(r1, png('flow4-photo-canary'));
  await phone.sync(A);
  await phone.logout();
  t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: null }, 'step 1: A holds K_A');
  await assertPhone(t, phone, { verified: keyA, databases: [keyA.keyId], users: { amina: ['verified'] } }, 'step 1');

  // User 2 (bilal) cannot unwrap K_A: B has no key for the IMEI and issues K_B (t2): a temporary database for B.
  s = await phone.loginOnline('bilal', B);
  const keyB = await keyOn(B, phone);
  t.equal(keyB.issuer, B);
  t.equal(compareKeyRecords(keyB, keyA), 1, 'K_B is newer than K_A');
  t.equal(s.kind, `temporary:${B}`);
  const r2 = (await s.createRecord({ name: 'Registered under K_B' })).id;
  const mine = new Set([r1, r2]);
  await phone.sync(B);
  await phone.logout();
  t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: keyB }, 'step 2: each server holds its own key');
  await assertPhone(
    t,
    phone,
    { verified: keyA, temporary: { [B]: keyB.keyId }, databases: [keyA.keyId, keyB.keyId].sort(), users: { amina: ['verified'], bilal: [`temporary:${B}`] } },
    'step 2',
  );
  t.same(await whereOnServers([r1, r2]), { [A]: [r1], [B]: [r2] });
  await assertOffline(
    t,
    phone,
    mine,
    { amina: { kind: 'verified', keyId: keyA.keyId, ids: [r1] }, bilal: { kind: `temporary:${B}`, keyId: keyB.keyId, ids: [r2] } },
    'step 2',
  );

  // User 1 logs into B offering K_A/t1: B keeps the newest (K_B) and returns it; the phone migrates K_A's database into K_B's.
  s = await phone.loginOnline('amina', B);
  t.equal(s.kind, 'verified');
  t.equal(s.keyId, keyB.keyId, 'K_B won');
  t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: keyB }, 'step 3: B kept K_B; A has not heard of it yet');
  // bilal's keyring entry was written for the temporary database; its key is the verified one now,
  // so the device lists him as a verified user before he logs in again (field audit #18).
  await assertPhone(t, phone, { verified: keyB, databases: [keyB.keyId], users: { amina: ['verified'], bilal: ['verified'] } }, 'step 3');
  t.same(await visible(s, mine), [r1, r2].sort(), 'step 3: nothing lost in the migration');
  t.ok((await s.readPhoto(r1, Object.keys((await s.getRecord(r1)).photos)[0]!)).bytes.byteLength > 0, 'the photo moved with its record');
  await phone.sync(B);
  await phone.logout();
  t.same(await whereOnServers([r1, r2]), { [A]: [r1], [B]: [r1, r2].sort() });
  // bilal's entry still names his old kind until his next login; his key is the device's verified key now,
  // and his offline login opens the verified database.
  await assertOffline(
    t,
    phone,
    mine,
    { amina: { kind: 'verified', keyId: keyB.keyId, ids: [r1, r2] }, bilal: { kind: 'verified', keyId: keyB.keyId, ids: [r1, r2] } },
    'step 3',
  );

  // User 1 logs into A offering K_B: A replaces K_A by the newer K_B. Every server converges.
  await phone.loginOnline('amina', A);
  await phone.sync(A);
  await phone.logout();
  t.same(await sc.serverKeys(phone.imei), { [A]: keyB, [B]: keyB }, 'step 4: one key (K_B) for the IMEI on every server');
  t.same(await whereOnServers([r1, r2]), { [A]: [r1, r2].sort(), [B]: [r1, r2].sort() }, 'step 4: every record on every server');
  await assertPhone(t, phone, { verified: keyB, databases: [keyB.keyId], users: { amina: ['verified'], bilal: ['verified'] } }, 'end');
  await assertOffline(
    t,
    phone,
    mine,
    { amina: { kind: 'verified', keyId: keyB.keyId, ids: [r1, r2] }, bilal: { kind: 'verified', keyId: keyB.keyId, ids: [r1, r2] } },
    'end',
  );
  t.same(filesContaining(phone.dir, 'flow4-photo-canary'), [], 'no plaintext canary in any file of the phone');
});

t.test('flow 4 with a kill -9 of the phone mid-migration: the restart finishes it, nothing lost or duplicated', async (t) => {
  const phone = await sc.addPhone('p4-crash', '356938035646005');
  await phone.loginOnline('amina', A);
  const keyA = await keyOn(A, phone);
  const mine: string[] = [];
  for (let i = 0; i < 12; i++) mine.push((await phone.session!.createRecord({ name: `Under K_A ${i}` })).id);
  await phone.logout();
  await phone.loginOnline('bilal', B);
  const keyB = await keyOn(B, phone);
  const his = [(await phone.session!.createRecord({ name: 'Under K_B' })).id];
  const ours = new Set([...mine, ...his]);
  await phone.logout();

  // amina's login to B adopts K_B and merges K_A's database into it: killed once the records are copied, before the source is deleted.
  const run = await phone.runProcess('amina', B, { kill: { migration: 'records-copied' } });
  t.equal(run.signal, 'SIGKILL', `killed mid-migration${run.signal === null ? `: ${run.out}` : ''}`);
  t.match(run.out, /migration merge records-copied/);
  const mid = await phone.state();
  t.equal(mid.pending, 1, 'the migration is journaled as unfinished');
  t.same(mid.verified, keyB, 'the keyring already names K_B as the device key');
  t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: keyB });

  // The next login (offline, after the "restart") resumes the migration.
  await assertOffline(
    t,
    phone,
    ours,
    { amina: { kind: 'verified', keyId: keyB.keyId, ids: [...mine, ...his] }, bilal: { kind: 'verified', keyId: keyB.keyId, ids: [...mine, ...his] } },
    'after the restart',
  );
  // bilal's offline login just followed the key succession and re-wrapped his entry as verified.
  await assertPhone(t, phone, { verified: keyB, databases: [keyB.keyId], users: { amina: ['verified'], bilal: ['verified'] } }, 'after the restart');
  const s = await phone.loginOffline('amina');
  const all = await allRecords(s, true);
  t.equal(new Set(all.map((r) => r.id)).size, all.length, 'no record twice');
  await s.logout();
});

t.test('rekey by an admin: A issues a newer key, the phone migrates to it at its next login, B converges, every user still logs in offline', async (t) => {
  const phone = await sc.addPhone('p-rekey', '356938035646006');
  await phone.loginOnline('amina', A);
  const keyA = await keyOn(A, phone);
  const r1 = (await phone.session!.createRecord({ name: 'Before the rekey' })).id;
  const mine = new Set([r1]);
  await phone.sync(A);
  await phone.loginOnline('amina', B);
  await phone.sync(B);
  await phone.logout();
  await phone.loginOnline('bilal', B); // bilal holds K_A too
  await phone.logout();
  t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: keyA });

  const view = await sc.server(A).deviceAction(phone.imei, 'rekey', 'scheduled rotation');
  const keyR = await keyOn(A, phone);
  t.same(view['key'], keyR);
  t.not(keyR.keyId, keyA.keyId, 'a new key');
  t.equal(compareKeyRecords(keyR, keyA), 1, 'newer than the key it replaces');
  t.same(await sc.serverKeys(phone.imei), { [A]: keyR, [B]: keyA }, 'only A knows the new key');
  await assertPhone(t, phone, { verified: keyA, databases: [keyA.keyId], users: { amina: ['verified'], bilal: ['verified'] } }, 'after the rekey, before contact');

  // amina logs into A offering K_A: A answers K_R; the phone migrates K_A's database into K_R's.
  const s = await phone.loginOnline('amina', A);
  t.equal(s.keyId, keyR.keyId);
  t.same(await visible(s, mine), [r1]);
  await phone.logout();
  await assertPhone(t, phone, { verified: keyR, databases: [keyR.keyId], users: { amina: ['verified'], bilal: ['verified'] } }, 'after the migration');
  await assertOffline(
    t,
    phone,
    mine,
    { amina: { kind: 'verified', keyId: keyR.keyId, ids: [r1] }, bilal: { kind: 'verified', keyId: keyR.keyId, ids: [r1] } },
    'after the migration (bilal follows the key succession)',
  );

  // bilal logs into B offering K_R: B replaces K_A by the newer K_R.
  await phone.loginOnline('bilal', B);
  await phone.logout();
  t.same(await sc.serverKeys(phone.imei), { [A]: keyR, [B]: keyR }, 'every server converged to K_R');
});

t.test('blacklist: tokens die on every route of that server, and the phone is wiped at its next contact', async (t) => {
  const phone = await sc.addPhone('p-stolen', '356938035646007');
  await phone.signUpOffline('chidi');
  await phone.loginOnline('amina', A);
  const r = await phone.session!.createRecord({ name: 'On a phone that will be stolen' });
  const photo = await phone.session!.addPhoto(r.id, png('stolen-canary'));
  await phone.sync(A);
  const [login] = sc.tokens(phone.imei, A);
  if (login === undefined) throw new Error('no token seen');
  const auth = { authorization: `Bearer ${login.token}` };
  const server = sc.server(A);
  t.equal((await server.call('GET', '/v1/auth/session', undefined, auth)).status, 200, 'the token works before the blacklist');

  const view = await server.deviceAction(phone.imei, 'blacklist', 'reported stolen');
  t.equal(view['status'], 'blacklisted');
  const routes: Array<['GET' | 'POST' | 'PUT', string, unknown]> = [
    ['GET', '/v1/auth/session', undefined],
    ['GET', '/v1/sync/pull?limit=10', undefined],
    ['POST', '/v1/sync/push', { records: [] }],
    ['GET', '/v1/records/search?name=x', undefined],
    ['GET', '/v1/forms/child', undefined],
    ['GET', `/v1/photos/${photo.photoId}`, undefined],
    ['GET', `/v1/photos/${photo.photoId}/upload`, undefined],
    ['PUT', `/v1/photos/${photo.photoId}`, undefined],
    ['POST', '/v1/auth/logout', undefined],
  ];
  for (const [method, path, body] of routes) {
    const res = await server.call(method, path, body, auth);
    t.equal(res.body['code'], 'DEVICE_BLACKLISTED', `${method} ${path}: ${res.status} DEVICE_BLACKLISTED`);
  }
  t.ok(idsOf(await server.records()).includes(r.id), 'the data already on the server stays there');

  // Next contact: the open session's sync learns it, and the SDK wipes everything.
  const err = await rejection(phone.sync(A));
  t.equal(err.code, 'DEVICE_BLACKLISTED');
  t.match(err.details, { wiped: true, serverId: A });
  // Only the mark remains (not secret: which server blocked the phone, and when), so that no other
  // server is contacted until this one reinstates the phone (multi-server audit #1).
  t.same(filesUnder(phone.dir), ['blocked.json'], 'databases (chidi\'s unverified one too), photos, keyring and device key are gone');
  await assertPhone(t, phone, { verified: null, databases: [], users: {} }, 'wiped');
  for (const user of ['amina', 'chidi']) t.equal((await rejection(phone.loginOffline(user))).code, 'DEVICE_BLACKLISTED', `${user} cannot log in offline`);
  t.equal((await rejection(phone.loginOnline('amina', A))).code, 'DEVICE_BLACKLISTED', 'nor online to A');
  t.same(filesUnder(phone.dir), ['blocked.json'], 'and that refused login left nothing behind');
});

t.test('retire: the final sync delivers everything, then the phone wipes itself; new logins are refused', async (t) => {
  const phone = await sc.addPhone('p-retired', '356938035646008');
  await phone.loginOnline('amina', A);
  const keyA = await keyOn(A, phone);
  const last = (await phone.session!.createRecord({ name: 'Last record on a retired phone' })).id;
  await phone.session!.addPhoto(last, png('retired-canary'));
  await sc.server(A).deviceAction(phone.imei, 'retire', 'replaced by a new phone');
  t.same(await sc.serverKeys(phone.imei), { [A]: keyA, [B]: null });

  const summary = await phone.sync(A);
  t.match(summary, { deviceStatus: 'retired', wiped: true, pushed: 1, failed: [], photos: { uploaded: 1, failed: [] } });
  const onA = (await sc.server(A).records()).find((x) => x.id === last);
  t.ok(onA !== undefined && Object.keys(onA.photos).length === 1, 'the final sync delivered the record and its photo');
  t.same(filesUnder(phone.dir), [], 'then the phone wiped itself');
  t.equal((await rejection(phone.loginOffline('amina'))).code, 'VAULT_WRONG_PASSWORD');
  t.equal((await rejection(phone.loginOnline('bilal', A))).code, 'DEVICE_RETIRED', 'a new user of the retired device is refused');
});

t.test('teardown leaves no process behind', async (t) => {
  const scratch = await Scenario.start({
    root: mkdtempSync(join(tmpdir(), 'fieldvault-teardown-')),
    servers: ['server-x'],
    users: [{ username: 'amina', password: PASSWORDS.amina }],
  });
  const phone = await scratch.addPhone('px', '356938035646009');
  await phone.loginOnline('amina', 'server-x');
  const pids = scratch.livePids();
  t.equal(pids.length, 1, 'the server runs');
  const store = storeChildrenOf(pids);
  t.ok(store.length >= 1, 'with its embedded store as a child process');
  await scratch.teardown();
  t.same(scratch.livePids(), [], 'the server is gone');
  t.same(await gone([...pids, ...store]), [], 'and so is its store');
});

/** Child pids of `pids` (from /proc: Linux). */
function storeChildrenOf(pids: readonly number[]): number[] {
  const out: number[] = [];
  for (const pid of pids) {
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      if (children !== '') out.push(...children.split(/\s+/).map(Number));
    } catch {
      // not Linux, or already gone
    }
  }
  return out;
}

/** The pids among `pids` still alive once they had a chance to exit (a store notices its parent left within a second or so). */
async function gone(pids: readonly number[]): Promise<number[]> {
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive);
}

t.test('a scenario that fails to start (a user the servers refuse) stops every server it started', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'fieldvault-failed-start-'));
  const before = serversUnder(root);
  t.same(before, []);
  const err = await rejection(
    Scenario.start({ root, servers: ['server-y', 'server-z'], users: [{ username: 'amina', password: 'password' }] }),
  );
  t.match(String((err as { message?: string }).message), /PASSWORD_TOO/, 'the servers refused the password');
  t.same(await gone(serversUnder(root)), [], 'no server of the failed scenario is left running');
});

/** Pids of running apps/server processes whose data directory lies under `root` (Linux /proc). */
function serversUnder(root: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').some((v) => v.startsWith(`FIELDVAULT_DATA_DIR=${root}`))) out.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}
