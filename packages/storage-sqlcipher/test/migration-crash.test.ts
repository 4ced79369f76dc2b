import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { KEYRING_FILE, RecordStore, ensureSchema, parseKeyring, type Device, type KeyringContent } from '@fieldvault/client';
import { dbFileName, keyId, toHex } from '@fieldvault/crypto';
import { createClock, createRecord, defaultChildForm, type KeyRecord } from '@fieldvault/protocol';
import { SqlCipherStorage } from '../src/index.js';
import { IMEI, PASSWORD_A, PASSWORD_B, TS_LOADER, jpegWithGps, newDevice, serverKey } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/migrate-child.ts', import.meta.url));

function runChild(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TS_LOADER, CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

function keyringOf(dir: string): KeyringContent {
  return parseKeyring(readFileSync(join(dir, KEYRING_FILE)), IMEI);
}

interface Expected {
  readonly ids: string[];
  readonly photos: Array<{ recordId: string; photoId: string }>;
}

async function addRecords(device: Device, user: string, password: string, n: number, label: string): Promise<Expected> {
  const s = await device.loginOffline(user, password);
  const ids: string[] = [];
  const photos: Expected['photos'] = [];
  for (let i = 0; i < n; i++) ids.push((await s.createRecord({ name: `${label} ${i}`, age: i % 18 })).id);
  for (let i = 0; i < 2; i++) {
    const recordId = ids[i] as string;
    photos.push({ recordId, photoId: (await s.addPhoto(recordId, jpegWithGps(`${label}-${i}`, 70_000 + i))).photoId });
  }
  await s.logout();
  return { ids, photos };
}

/** Checks the end state after resume: every record exactly once, every photo readable, one database, no journal. */
async function checkComplete(t: Parameters<typeof newDevice>[0], dir: string, expected: Expected, winner: Uint8Array, users: Array<[string, string]>): Promise<void> {
  const { device, storage } = await newDevice(t, {}, dir);
  for (const [user, pw] of users) {
    const s = await device.loginOffline(user, pw);
    t.equal(s.keyId, keyId(winner), `${user} opens the winning database`);
    const seen = (await s.listRecords({ limit: 1000 })).map((r) => r.id);
    t.equal(seen.length, new Set(seen).size, `${user}: no duplicates`);
    t.same(seen.sort(), [...expected.ids].sort(), `${user}: nothing lost`);
    for (const p of expected.photos) t.ok((await s.readPhoto(p.recordId, p.photoId)).bytes.byteLength > 0, `${user}: photo readable`);
    await s.logout();
  }
  t.same(await storage.list(), [dbFileName(winner)], 'only the winning database is left');
  t.same(keyringOf(dir).pending, [], 'the journal is clear');
}

const MERGE_STEPS = ['journal-written', 'photos-copied', 'records-copy-uncommitted', 'records-copied', 'source-photos-deleted', 'source-deleted', 'journal-cleared'];
const MOVE_STEPS = [...MERGE_STEPS.slice(0, 5), 'source-records-deleted', 'source-deleted', 'journal-cleared'];

/** Flow 4 state: amina on K_A (verified), bilal on K_B (temporary for server B), and one record in both, edited apart. */
async function mergeScenario(t: Parameters<typeof newDevice>[0]) {
  const { dir, device } = await newDevice(t);
  const now = Date.now();
  const ka = serverKey(now - 60_000, 'server-a');
  const kb = serverKey(now - 30_000, 'server-b');
  await (await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: ka.record, key: ka.key })).logout();
  await (await device.adoptVerifiedKey({ username: 'bilal', password: PASSWORD_B, serverId: 'server-b', keyRecord: kb.record, key: kb.key })).logout();
  const a = await addRecords(device, 'amina', PASSWORD_A, 25, 'A');
  const b = await addRecords(device, 'bilal', PASSWORD_B, 25, 'B');

  // The same record in both databases (as two servers would have it), edited differently in each.
  const storage = new SqlCipherStorage({ directory: join(dir, 'databases') });
  const shared = createRecord({
    id: globalThis.crypto.randomUUID(),
    createdBy: 'amina',
    device: IMEI,
    clockTs: createClock({ node: IMEI }).now(),
    fields: { name: 'Shared child' },
  });
  for (const [key, change] of [
    [ka.key, { age: 9 }],
    [kb.key, { location: 'Camp B' }],
  ] as const) {
    const db = await storage.open(dbFileName(key), key, { create: false });
    await ensureSchema(db);
    const clock = createClock({ node: IMEI });
    const store = new RecordStore(db, { username: 'amina', device: IMEI, onlyOwn: false, clock, form: defaultChildForm });
    await db.transaction((tx) => store.store(tx, shared));
    await store.update(shared.id, change);
    await db.close();
  }
  // Issue 5: per-server sync state in both. The loser (K_A) synced with server-a (everything of
  // amina's acknowledged but one record edited since, her photos uploaded) and server-c; the
  // winner (K_B) with server-b and server-c.
  const stale = a.ids[3] as string;
  const source = await storage.open(dbFileName(ka.key), ka.key, { create: false });
  await source.transaction(async (tx) => {
    await tx.execute(`INSERT INTO server_acks (server_id, record_id, local_seq_acked) SELECT 'server-a', id, local_seq - (id = ?) FROM records`, [stale]);
    for (const p of a.photos) await tx.execute(`INSERT INTO photo_acks (server_id, photo_id) VALUES ('server-a', ?)`, [p.photoId]);
    await tx.execute(`INSERT INTO checkpoints (server_id, checkpoint, updated_at) VALUES ('server-a', 'cp-a-of-loser', 'x'), ('server-c', 'cp-c-of-loser', 'x')`);
  });
  await source.close();
  const winner = await storage.open(dbFileName(kb.key), kb.key, { create: false });
  await winner.execute(`INSERT INTO checkpoints (server_id, checkpoint, updated_at) VALUES ('server-b', 'cp-b-of-winner', 'x'), ('server-c', 'cp-c-of-winner', 'x')`);
  await winner.close();
  await device.logout();
  const expected: Expected = { ids: [...a.ids, ...b.ids, shared.id], photos: [...a.photos, ...b.photos] };
  // Pending for server-a after the merge: bilal's 25 records, the stale one, and the shared record
  // (merged with K_B's edit, so no longer what server-a holds); bilal's 2 photos.
  const pendingForA = { records: b.ids.length + 2, photos: b.photos.length };
  return { dir, ka, kb, expected, sharedId: shared.id, sourceIds: [...a.ids, shared.id], pendingForA };
}

/** Issue 5: the loser's acknowledgements and checkpoints were carried into the winner. */
async function checkSyncStateCarried(t: Parameters<typeof newDevice>[0], dir: string, winner: Uint8Array, pendingForA: { records: number; photos: number }): Promise<void> {
  const { device } = await newDevice(t, {}, dir);
  const s = await device.loginOffline('amina', PASSWORD_A);
  t.same(await s.pendingCounts('server-a'), pendingForA, 'server-a: only what it does not hold is pending, not everything');
  await s.logout();
  const storage = new SqlCipherStorage({ directory: join(dir, 'databases') });
  const db = await storage.open(dbFileName(winner), winner, { create: false });
  try {
    const rows = await db.query<{ server_id: string; checkpoint: string | null }>('SELECT server_id, checkpoint FROM checkpoints ORDER BY server_id');
    t.same(
      rows.map((r) => [r.server_id, r.checkpoint]),
      [
        ['server-a', 'cp-a-of-loser'],
        ['server-b', 'cp-b-of-winner'],
        ['server-c', 'cp-c-of-winner'],
      ],
      "the loser's checkpoint for a server the winner never pulled from; the winner's own kept",
    );
  } finally {
    await db.close();
  }
}

for (const step of MERGE_STEPS) {
  t.test(`a merge killed with SIGKILL at "${step}" loses and duplicates nothing, and the next login finishes it`, async (t) => {
    const { dir, ka, kb, expected, sharedId, sourceIds, pendingForA } = await mergeScenario(t);
    const child = await runChild([dir, 'amina', PASSWORD_A, 'server-b', toHex(kb.key), JSON.stringify(kb.record as KeyRecord), step]);
    t.equal(child.signal, 'SIGKILL', `killed at ${step}${child.signal === null ? `: ${child.out}` : ''}`);
    const pending = keyringOf(dir).pending;
    t.equal(pending.length, step === 'journal-cleared' ? 0 : 1, 'journaled until the end');
    // Before anything resumes: the source is intact, or the target already holds everything.
    const raw = new SqlCipherStorage({ directory: join(dir, 'databases') });
    const idsIn = async (key: Uint8Array): Promise<string[] | undefined> => {
      if (!(await raw.exists(dbFileName(key)))) return undefined;
      const db = await raw.open(dbFileName(key), key, { create: false });
      try {
        return (await db.query<{ id: string }>('SELECT id FROM records')).map((r) => r.id).sort();
      } finally {
        await db.close();
      }
    };
    const source = await idsIn(ka.key);
    const target = (await idsIn(kb.key)) ?? [];
    const complete = JSON.stringify(target) === JSON.stringify([...expected.ids].sort());
    const intact = source !== undefined && [...sourceIds].every((id) => source.includes(id));
    t.ok(complete || intact, `source intact (${String(intact)}) or migration complete (${String(complete)})`);
    await checkComplete(t, dir, expected, kb.key, [
      ['amina', PASSWORD_A],
      ['bilal', PASSWORD_B],
    ]);
    const { device } = await newDevice(t, {}, dir);
    const s = await device.loginOffline('amina', PASSWORD_A);
    const merged = await s.getRecord(sharedId);
    t.same([merged.fields['age']?.value, merged.fields['location']?.value], [9, 'Camp B'], 'the record in both databases was merged, not duplicated');
    await s.logout();
    await checkSyncStateCarried(t, dir, kb.key, pendingForA);
  });
}

for (const step of MOVE_STEPS) {
  t.test(`a flow-1 move killed with SIGKILL at "${step}" loses and duplicates nothing, and the next login finishes it`, async (t) => {
    const { dir, device } = await newDevice(t);
    await device.signUpOffline('amina', PASSWORD_A);
    await device.signUpOffline('bilal', PASSWORD_B);
    const mine = await addRecords(device, 'amina', PASSWORD_A, 30, 'A');
    const theirs = await addRecords(device, 'bilal', PASSWORD_B, 3, 'B');
    const ka = serverKey(Date.now(), 'server-a');
    const child = await runChild([dir, 'amina', PASSWORD_A, 'server-a', toHex(ka.key), JSON.stringify(ka.record), step]);
    t.equal(child.signal, 'SIGKILL', `killed at ${step}${child.signal === null ? `: ${child.out}` : ''}`);
    const { device: after, storage } = await newDevice(t, {}, dir);
    const s = await after.loginOffline('amina', PASSWORD_A);
    t.equal(s.kind, 'verified');
    const seen = (await s.listRecords({ limit: 1000 })).map((r) => r.id);
    t.equal(seen.length, new Set(seen).size, 'no duplicates');
    t.same(seen.sort(), [...mine.ids].sort(), 'nothing lost, nothing of bilal\'s');
    for (const p of mine.photos) t.ok((await s.readPhoto(p.recordId, p.photoId)).bytes.byteLength > 0, 'photo readable');
    await s.logout();
    t.same(keyringOf(dir).pending, [], 'the journal is clear');
    t.same(await after.users(), [
      { username: 'amina', kinds: ['verified'] },
      { username: 'bilal', kinds: ['unverified'] },
    ]);
    t.equal((await storage.list()).length, 2, 'amina\'s unverified database is gone');
    const b = await after.loginOffline('bilal', PASSWORD_B);
    t.same((await b.listRecords()).map((r) => r.id).sort(), [...theirs.ids].sort(), 'bilal\'s records untouched');
    for (const p of theirs.photos) t.ok((await b.readPhoto(p.recordId, p.photoId)).bytes.byteLength > 0);
  });
}

t.test('the crash child completes a migration when it is not killed', async (t) => {
  const { dir, kb, expected, pendingForA } = await mergeScenario(t);
  const child = await runChild([dir, 'amina', PASSWORD_A, 'server-b', toHex(kb.key), JSON.stringify(kb.record), 'never']);
  t.equal(child.code, 0, child.out);
  t.match(child.out, /completed/);
  t.same(keyringOf(dir).pending, []);
  await checkComplete(t, dir, expected, kb.key, [['amina', PASSWORD_A]]);
  await checkSyncStateCarried(t, dir, kb.key, pendingForA);
});

t.test('a migration copies thousands of records in bulk into the winning database', async (t) => {
  // The copy runs in the adapter's bulk mode: a rollback journal beside the winner while it is
  // uncommitted (under WAL there is no `-journal` file), and WAL again afterwards.
  const journals: Array<number | null> = [];
  let winner = '';
  const { dir, device, storage } = await newDevice(t, {
    onMigrationStep: ({ step }) => {
      if (step !== 'records-copy-uncommitted') return;
      const journal = join(storage.directory, `${winner}.db-journal`);
      journals.push(existsSync(journal) ? statSync(journal).size : null);
    },
  });
  const now = Date.now();
  const ka = serverKey(now - 60_000, 'server-a');
  const kb = serverKey(now - 30_000, 'server-a');
  await (await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: ka.record, key: ka.key })).logout();
  const db = await storage.open(dbFileName(ka.key), ka.key, { create: false });
  const clock = createClock({ node: IMEI });
  const store = new RecordStore(db, { username: 'amina', device: IMEI, onlyOwn: false, clock, form: defaultChildForm });
  const ids = new Set<string>();
  await db.transaction(async (tx) => {
    for (let i = 0; i < 3000; i++) {
      const r = createRecord({ id: globalThis.crypto.randomUUID(), createdBy: 'amina', device: IMEI, clockTs: clock.now(), fields: { name: `Child ${i}`, age: i % 18 } });
      ids.add(r.id);
      await store.store(tx, r);
    }
  });
  await db.close();
  winner = dbFileName(kb.key);
  const s = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: kb.record, key: kb.key });
  t.equal(journals.length, 1, 'one copy');
  t.ok((journals[0] ?? 0) > 0, `a rollback journal while the copy was uncommitted (${String(journals[0])} bytes)`);
  const check = await storage.open(winner, kb.key, { create: false });
  t.same(await check.query('PRAGMA journal_mode'), [{ journal_mode: 'wal' }], 'the winner is in WAL again');
  await check.close();
  const seen = new Set<string>();
  for (let offset = 0; ; offset += 1000) {
    const page = await s.listRecords({ limit: 1000, offset });
    for (const r of page) seen.add(r.id);
    if (page.length < 1000) break;
  }
  t.same([...seen].sort(), [...ids].sort());
  t.same(await storage.list(), [dbFileName(kb.key)]);
  t.same(
    (await s.searchRecords({ name: 'child 2999' })).map((r) => r.fields['age']?.value),
    [2999 % 18],
    'the search columns came along with the bulk copy',
  );
});
