// A photo save killed mid-way leaves no orphan file (crash audit s16, finding 3), and a record
// created with its photos is one commit (finding 2). Real SQLCipher files, real kill -9.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PHOTO_DIRECTORY, photoPath, type Device } from '@fieldvault/client';
import { dbFileName, encryptBuffer } from '@fieldvault/crypto';
import type { SqlCipherStorage } from '../src/index.js';
import { PASSWORD_A, PASSWORD_B, TS_LOADER, contains, jpegWithGps, newDevice, rejection, serverKey } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/photo-child.ts', import.meta.url));

type T = Parameters<typeof newDevice>[0];

/** amina on a verified key of server-a, bilal on a temporary one of server-b: two databases, two keys, one photo folder. */
async function twoDatabases(t: T, extra: Parameters<typeof newDevice>[1] = {}) {
  const { dir, device, storage } = await newDevice(t, extra);
  const now = Date.now();
  const ka = serverKey(now - 60_000, 'server-a');
  const kb = serverKey(now - 30_000, 'server-b');
  await (await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: ka.record, key: ka.key })).logout();
  await (await device.adoptVerifiedKey({ username: 'bilal', password: PASSWORD_B, serverId: 'server-b', keyRecord: kb.record, key: kb.key })).logout();
  return { dir, device, storage, ka: ka.key, kb: kb.key };
}

/** One record with one photo for `user`; returns the photo's file name. */
async function onePhoto(device: Device, user: string, password: string, key: Uint8Array, label: string): Promise<{ recordId: string; photoId: string; file: string }> {
  const s = await device.loginOffline(user, password);
  const r = await s.createRecord({ name: label });
  const { photoId } = await s.addPhoto(r.id, jpegWithGps(label, 5000));
  await s.logout();
  return { recordId: r.id, photoId, file: fileOf(key, photoId) };
}

function fileOf(key: Uint8Array, photoId: string): string {
  return photoPath(key, photoId).slice(PHOTO_DIRECTORY.length + 1);
}

function photoDir(dir: string): string[] {
  return existsSync(join(dir, PHOTO_DIRECTORY)) ? readdirSync(join(dir, PHOTO_DIRECTORY)).sort() : [];
}

/** The tables of a database read directly (no login, so nothing is cleaned up). */
async function tables(storage: SqlCipherStorage, key: Uint8Array): Promise<{ files: string[]; pending: string[] }> {
  const db = await storage.open(dbFileName(key), key, { create: false });
  try {
    const files = (await db.query<{ photo_id: string }>('SELECT photo_id FROM photo_files')).map((r) => r.photo_id);
    const pending = (await db.query<{ photo_id: string }>('SELECT photo_id FROM photo_files_pending')).map((r) => r.photo_id);
    return { files, pending };
  } finally {
    await db.close();
  }
}

t.test('a save killed between its pending row and its commit: the next login deletes the file and the row, no other file', async (t) => {
  const { dir, device, storage, ka, kb } = await twoDatabases(t);
  const a = await onePhoto(device, 'amina', PASSWORD_A, ka, 'Amina child');
  const b = await onePhoto(device, 'bilal', PASSWORD_B, kb, 'Bilal child');

  // The first half of PhotoStore.add, as a kill leaves it: the pending row committed, the file written.
  const orphanId = globalThis.crypto.randomUUID();
  const db = await storage.open(dbFileName(ka), ka, { create: false });
  await db.transaction((tx) => tx.execute('INSERT INTO photo_files_pending (photo_id) VALUES (?)', [orphanId]));
  await db.close();
  writeFileSync(join(dir, photoPath(ka, orphanId)), encryptBuffer(ka, jpegWithGps('orphan', 5000)));
  const orphan = fileOf(ka, orphanId);
  t.same(photoDir(dir), [a.file, b.file, orphan].sort(), 'the interrupted save left its file');

  // Another database's login cannot tell amina's file from an orphan, and leaves it.
  await (await device.loginOffline('bilal', PASSWORD_B)).logout();
  t.same(photoDir(dir), [a.file, b.file, orphan].sort(), "bilal's login leaves amina's files alone");

  const s = await device.loginOffline('amina', PASSWORD_A);
  t.same(photoDir(dir), [a.file, b.file].sort(), "amina's login deleted the orphan, and only it");
  t.ok((await s.readPhoto(a.recordId, a.photoId)).bytes.byteLength > 0, "amina's committed photo reads");
  await s.logout();
  t.same(await tables(storage, ka), { files: [a.photoId], pending: [] }, 'the pending row is gone');
  const sb = await device.loginOffline('bilal', PASSWORD_B);
  t.ok((await sb.readPhoto(b.recordId, b.photoId)).bytes.byteLength > 0, "bilal's photo reads");
  await sb.logout();

  // The row committed but the kill came before the file was written: the row alone goes.
  const db2 = await storage.open(dbFileName(ka), ka, { create: false });
  await db2.transaction((tx) => tx.execute('INSERT INTO photo_files_pending (photo_id) VALUES (?)', [globalThis.crypto.randomUUID()]));
  await db2.close();
  await (await device.loginOffline('amina', PASSWORD_A)).logout();
  t.same(await tables(storage, ka), { files: [a.photoId], pending: [] }, 'a pending row without a file is cleared');
  t.same(photoDir(dir), [a.file, b.file].sort());
});

t.test('a removal killed after its commit: the next login deletes the file it left', async (t) => {
  const { dir, device, storage, ka, kb } = await twoDatabases(t);
  const a = await onePhoto(device, 'amina', PASSWORD_A, ka, 'Amina child');
  const b = await onePhoto(device, 'bilal', PASSWORD_B, kb, 'Bilal child');
  // What PhotoStore.remove's transaction commits, without the file deletion that follows it.
  const db = await storage.open(dbFileName(ka), ka, { create: false });
  await db.transaction(async (tx) => {
    await tx.execute('DELETE FROM photo_files WHERE photo_id = ?', [a.photoId]);
    await tx.execute('INSERT INTO photo_files_pending (photo_id) VALUES (?)', [a.photoId]);
  });
  await db.close();
  await (await device.loginOffline('amina', PASSWORD_A)).logout();
  t.same(photoDir(dir), [b.file], 'the removed photo’s file is gone, the other database’s stays');
  t.same(await tables(storage, ka), { files: [], pending: [] });
});

t.test('a database of schema version 3 gets the pending table when it is opened', async (t) => {
  const { dir, device, storage, ka } = await twoDatabases(t);
  const db = await storage.open(dbFileName(ka), ka, { create: false });
  await db.transaction(async (tx) => {
    await tx.execute('DROP TABLE photo_files_pending');
    await tx.execute('PRAGMA user_version = 3');
  });
  await db.close();
  const a = await onePhoto(device, 'amina', PASSWORD_A, ka, 'Old database');
  t.same(await tables(storage, ka), { files: [a.photoId], pending: [] });
  t.same(photoDir(dir), [a.file]);
  const check = await storage.open(dbFileName(ka), ka, { create: false });
  t.same(await check.query('PRAGMA user_version'), [{ user_version: 4 }]);
  await check.close();
});

t.test("a merge (flow 4) deletes the files of saves interrupted in the database it merges, and moves the committed photo", async (t) => {
  const { dir, device, storage } = await newDevice(t);
  const older = serverKey(Date.now() - 60_000, 'server-a');
  const ka = older.key;
  await (await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord: older.record, key: ka })).logout();
  const a = await onePhoto(device, 'amina', PASSWORD_A, ka, 'Amina child');
  // An interrupted save in amina's database, as a kill leaves it (no login of it runs again).
  const orphanId = globalThis.crypto.randomUUID();
  const db = await storage.open(dbFileName(ka), ka, { create: false });
  await db.transaction((tx) => tx.execute('INSERT INTO photo_files_pending (photo_id) VALUES (?)', [orphanId]));
  await db.close();
  writeFileSync(join(dir, photoPath(ka, orphanId)), encryptBuffer(ka, jpegWithGps('orphan', 5000)));
  t.equal(photoDir(dir).length, 2);

  // amina is issued server-b's newer key: her database is merged into it and removed.
  const newer = serverKey(Date.now() - 30_000, 'server-b');
  const kb = newer.key;
  const s = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-b', keyRecord: newer.record, key: kb });
  t.same((await s.listRecords()).map((r) => r.id), [a.recordId], 'her record came along');
  t.ok((await s.readPhoto(a.recordId, a.photoId)).bytes.byteLength > 0, 'the committed photo moved and reads');
  await s.logout();
  t.same(photoDir(dir), [fileOf(kb, a.photoId)], 'no file of the merged database is left, the orphan included');
});

interface ChildRun {
  readonly acked: Array<{ recordId: string; photoId: string; sha256: string }>;
  readonly signal: NodeJS.Signals | null;
  readonly out: string;
}

/** Runs the photo child and kills it with SIGKILL `killAfterMs` after it is ready. */
function runKilled(args: string[], killAfterMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TS_LOADER, CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (timer === undefined && out.includes('ready\n')) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      const acked = out
        .split('\n')
        .filter((l) => l.startsWith('added '))
        .map((l) => {
          const [, recordId, photoId, sha256] = l.split(' ') as [string, string, string, string];
          return { recordId, photoId, sha256 };
        });
      resolve({ acked, signal, out });
    });
  });
}

t.test('kill -9 during multi-MB photo saves, 14 times: no unreferenced file is left, every committed photo reads back', async (t) => {
  const { dir, device, storage, ka, kb } = await twoDatabases(t, { photoMaxBytes: 8 * 1024 * 1024 });
  const b = await onePhoto(device, 'bilal', PASSWORD_B, kb, 'Bilal child');
  const acked: ChildRun['acked'] = [];
  let interrupted = 0;
  // 10 kills at random times, then 4 aimed right after a photo file is in place (before its
  // commit): random kills mostly land in the file write (a temp file, removed by a later start)
  // or between saves, and only now and then in that window.
  for (let k = 0; k < 14; k++) {
    const aimed = k >= 10 ? String(1 + Math.floor(Math.random() * 4)) : '0';
    const run = await runKilled([dir, 'amina', PASSWORD_A, '4', aimed], aimed === '0' ? 100 + Math.floor(Math.random() * 900) : 60_000);
    t.equal(run.signal, 'SIGKILL', `run ${k} was killed`);
    if (run.signal !== 'SIGKILL') t.comment(run.out);
    acked.push(...run.acked);
    // Right after the kill, before any login cleans up: every file no database vouches for is
    // one amina's database has a pending row for (the mechanism, checked at each kill).
    const a = await tables(storage, ka);
    const kbTables = await tables(storage, kb);
    const vouched = new Set([...a.files.map((id) => fileOf(ka, id)), ...kbTables.files.map((id) => fileOf(kb, id))]);
    const pending = new Set(a.pending.map((id) => fileOf(ka, id)));
    const unvouched = photoDir(dir).filter((f) => !vouched.has(f) && !f.includes('.tmp-'));
    if (unvouched.length > 0) interrupted += 1;
    t.same(unvouched.filter((f) => !pending.has(f)), [], `kill ${k}: every unreferenced file has its pending row`);
  }
  t.comment(`${acked.length} photos acknowledged; ${interrupted} of 14 kills left a file between its pending row and its commit`);
  t.ok(interrupted >= 4, 'the aimed kills did leave such files');
  t.ok(acked.length > 0, 'photos were saved between the kills');

  const s = await device.loginOffline('amina', PASSWORD_A);
  let committed = 0;
  for (const record of await s.listRecords({ limit: 1000 })) {
    for (const [photoId, ref] of Object.entries(record.photos)) {
      const back = await s.readPhoto(record.id, photoId);
      t.equal(back.sha256, ref.sha256, 'a committed photo reads back with its sha256');
      committed += 1;
    }
  }
  for (const p of acked) t.equal((await s.readPhoto(p.recordId, p.photoId)).sha256, p.sha256, 'an acknowledged photo is there');
  await s.logout();
  const a = await tables(storage, ka);
  t.same(a.pending, [], 'no pending row is left');
  t.equal(a.files.length, committed, 'one row per committed photo');
  const expected = [...a.files.map((id) => fileOf(ka, id)), b.file].sort();
  t.same(
    photoDir(dir).filter((f) => !f.includes('.tmp-')),
    expected,
    'no file in the photo folder without a photo_files row of some database',
  );
});

t.test('createRecordWithPhotos: the record and all its photos in one commit, or nothing', async (t) => {
  const { dir, device, storage, ka } = await twoDatabases(t, { photoMaxBytes: 64 * 1024 });
  const s = await device.loginOffline('amina', PASSWORD_A);
  t.teardown(() => s.logout());

  const made = await s.createRecordWithPhotos({ name: 'Kofi', age: 6 }, [jpegWithGps('GPS-ONE', 3000), jpegWithGps('GPS-TWO', 4000)]);
  t.equal(made.photos.length, 2);
  t.same(Object.keys(made.record.photos).sort(), made.photos.map((p) => p.photoId).sort(), 'every photo has its ref on the record');
  const [first, second] = made.photos as [(typeof made.photos)[0], (typeof made.photos)[0]];
  t.ok(first.size + 500 < second.size, 'the photos follow the order given (the second is the larger)');
  const stored = await s.getRecord(made.record.id);
  t.same(stored, made.record, 'the record as returned is the one stored');
  for (const p of made.photos) {
    const back = await s.readPhoto(made.record.id, p.photoId);
    t.equal(back.sha256, p.sha256);
    t.notOk(contains(back.bytes, 'GPS-'), 'metadata stripped');
  }
  t.same(photoDir(dir), made.photos.map((p) => fileOf(ka, p.photoId)).sort());
  t.equal(await s.countRecords(), 1);

  const before = photoDir(dir);
  // Thunks, run one at a time: each must find the state the previous one left.
  const refused: Array<[string, () => Promise<unknown>, string]> = [
    ['a file that is not an image', () => s.createRecordWithPhotos({ name: 'Ama' }, [jpegWithGps('ok'), new TextEncoder().encode('not an image')]), 'PHOTO_TYPE_UNSUPPORTED'],
    ['a photo over the cap', () => s.createRecordWithPhotos({ name: 'Ama' }, [jpegWithGps('ok'), jpegWithGps('big', 70 * 1024)]), 'PHOTO_TOO_LARGE'],
    ['a value the form refuses', () => s.createRecordWithPhotos({ name: 'Ama', bogus: 1 }, [jpegWithGps('ok')]), 'RECORD_INVALID'],
    ['more photos than a record holds', () => s.createRecordWithPhotos({ name: 'Ama' }, Array.from({ length: 101 }, (_, i) => jpegWithGps(`n${i}`))), 'RECORD_TOO_LARGE'],
    ['photos not given as an array', () => s.createRecordWithPhotos({ name: 'Ama' }, 'x' as never), 'INPUT_INVALID'],
  ];
  for (const [what, p, code] of refused) {
    t.equal((await rejection(p())).code, code, what);
    t.equal(await s.countRecords(), 1, `${what}: no record`);
    t.same(photoDir(dir), before, `${what}: no file`);
  }
  await s.logout();
  t.same((await tables(storage, ka)).pending, [], 'no pending row');
});

t.test('a photo the record cannot take (its 101st) leaves no file behind', async (t) => {
  const { dir, device, ka } = await twoDatabases(t);
  const s = await device.loginOffline('amina', PASSWORD_A);
  t.teardown(() => s.logout());
  const made = await s.createRecordWithPhotos({ name: 'Many' }, Array.from({ length: 100 }, (_, i) => jpegWithGps(`m${i}`)));
  const before = photoDir(dir);
  t.equal(before.length, 100);
  t.equal((await rejection(s.addPhoto(made.record.id, jpegWithGps('one too many')))).code, 'RECORD_TOO_LARGE');
  t.same(photoDir(dir), before, 'the refused photo’s file was deleted');
  t.ok(before.every((f) => made.photos.some((p) => fileOf(ka, p.photoId) === f)));
});
