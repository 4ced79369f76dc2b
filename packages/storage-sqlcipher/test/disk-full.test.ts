// Fault drill (issue 8): the phone's storage fills up during a pull and during photo writes. The
// phone directory lives on a small tmpfs (a real ENOSPC / SQLITE_FULL, not a simulated one), the
// server is a real process. Expected: the failing write rolls back, the user gets
// VAULT_STORAGE_FAILED ("free space, then retry"), what was committed before stays, no partial
// photo file is left behind, and once space is freed the next sync completes with every record
// exactly once.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Session } from '@fieldvault/client';
import { startServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A, jpegWithGps, newDevice, rejection } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'fieldvault-disk-full-'));
const small = join(root, 'small');
let mounted = false;
try {
  execFileSync('mkdir', ['-p', small]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', small], { stdio: 'ignore' });
  mounted = true;
} catch {
  // Mounting needs root (CI runs as root); anywhere else the drill cannot make a real full disk.
}

if (!mounted) {
  t.test('disk-full drill', { skip: 'mounting a small tmpfs needs root: the drill cannot make a real full disk here' }, () => undefined);
} else {
  const server = await startServerProcess(join(root, 'server'), 'server-disk', {
    env: { FIELDVAULT_AUTH_RATE_LIMIT: '100000', FIELDVAULT_RATE_LIMIT: '100000' },
  });
  t.teardown(async () => {
    await server.stop();
    try {
      execFileSync('umount', [small]);
    } catch {
      // already gone
    }
    rmSync(root, { recursive: true, force: true });
  });
  await server.createUser('amina', PASSWORD_A);

  /** Fills the file system of `dir` until only `leave` bytes are free; returns a function that frees it again. */
  const fill = (dir: string, leave: number): (() => void) => {
    const file = join(dir, 'filler');
    const fd = openSync(file, 'a');
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) {
        const { bavail, bsize } = statfsSync(dir);
        const free = bavail * bsize;
        if (free <= leave) break;
        writeSync(fd, chunk, 0, Math.min(chunk.length, Math.max(bsize, free - leave)));
      }
    } finally {
      closeSync(fd);
    }
    const free = (): void => rmSync(file, { force: true });
    return free;
  };

  const ids = async (s: Session): Promise<string[]> => (await s.listRecords({ limit: 1000 })).map((r) => r.id).sort();

  // The server's content: 240 records with long notes (about 0.8 MB in all) and three 1.5 MB photos,
  // from a phone on the normal disk.
  const source = await newDevice(t, { imei: '356938035646001' }, join(root, 'source'));
  const writer = await source.device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
  const photoRecords: string[] = [];
  for (let i = 0; i < 240; i++) {
    const r = await writer.createRecord({ name: `Disk ${i}`, age: i % 17, notes: `${i} `.repeat(1500).slice(0, 3000) });
    if (i < 3) {
      await writer.addPhoto(r.id, jpegWithGps(`photo-${i}`, 1_500_000));
      photoRecords.push(r.id);
    }
  }
  const pushed = await writer.sync({ transport: server.transport() });
  // (Not an assertion: the root test must not see one before its subtests are queued.)
  if (pushed.pushed !== 240 || pushed.failed.length > 0 || pushed.photos.uploaded !== 3) throw new Error(`setup push: ${JSON.stringify(pushed)}`);
  await writer.logout();
  const all = (await server.records()).map((r) => r.id).sort();

  t.test('a pull that fills the disk stops with VAULT_STORAGE_FAILED, keeps the pages committed before, and completes once space is freed', async (t: Test) => {
    const phoneDir = join(small, 'pull-phone');
    const { device } = await newDevice(t, { imei: '356938035646002' }, phoneDir);
    let s = await device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
    const free = fill(small, 256 * 1024);
    t.teardown(free);

    const err = await rejection(s.sync({ transport: server.transport(), batch: { pullRecords: 20 }, retry: { attempts: 1, baseDelayMs: 1 } }));
    t.equal(err.code, 'VAULT_STORAGE_FAILED', 'the user is told to free space');
    const partial = await ids(s);
    t.ok(partial.length < all.length, `the pull stopped part-way (${partial.length} of ${all.length})`);
    t.ok(partial.length > 0, 'the pages committed before the disk filled are kept');
    t.ok(partial.every((id) => all.includes(id)), 'and they are server records');

    // The database is intact: the session goes on reading, a new login opens it.
    await s.logout();
    free();
    s = await device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
    t.same(await ids(s), partial, 'the committed pages survived the failure and the new login');

    const again = await s.sync({ transport: server.transport(), batch: { pullRecords: 20 } });
    t.same(again.failed, []);
    const after = await ids(s);
    t.same(after, all, 'every server record exactly once');
    t.equal(new Set(after).size, after.length);
    t.same(await s.pendingCounts(server.serverId), { records: 0, photos: 0 });
  });

  t.test('a photo written or downloaded on a full disk fails cleanly and arrives once space is freed', async (t: Test) => {
    const phoneDir = join(small, 'photo-phone');
    const { device } = await newDevice(t, { imei: '356938035646003' }, phoneDir);
    const s = await device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
    const mine = await s.createRecord({ name: 'Photo on a full disk', age: 4 });
    const free = fill(small, 64 * 1024);
    t.teardown(free);
    const photosBefore = readdirSync(join(phoneDir, '.photos')).sort();

    const write = await rejection(s.addPhoto(mine.id, jpegWithGps('too-big-for-the-disk', 600_000)));
    t.equal(write.code, 'VAULT_STORAGE_FAILED');
    t.same(readdirSync(join(phoneDir, '.photos')).sort(), photosBefore, 'no partial or temporary photo file left');
    t.same((await s.getRecord(mine.id)).photos, {}, 'the record does not reference a photo it does not have');

    free();
    // Room for the records (about 3 MB with the WAL) but not for all the photos (3 × 1.5 MB).
    const freePhotos = fill(small, 4 * 1024 * 1024);
    t.teardown(freePhotos);
    // A full disk is the device's problem, not one photo's: the sync stops and says so (the
    // records, committed before the photo phase, stay).
    const first = await rejection(s.sync({ transport: server.transport(), retry: { attempts: 1, baseDelayMs: 1 } }));
    t.equal(first.code, 'VAULT_STORAGE_FAILED', 'a photo download on a full disk stops the sync with what to do');
    t.same(await ids(s), [...all, mine.id].sort(), 'the records themselves arrived');
    const stored = readdirSync(join(phoneDir, '.photos'));
    t.ok(stored.length < 3, `not every photo fitted (${stored.length} did)`);
    t.notOk(stored.some((name) => !/^[0-9a-f]{64}$/.test(name)), 'no partial or temporary photo file left');

    freePhotos();
    const second = await s.sync({ transport: server.transport() });
    t.same(second.photos.failed, []);
    t.equal(stored.length + second.photos.downloaded, 3, 'the rest downloaded once space was freed, none twice');
    t.equal(readdirSync(join(phoneDir, '.photos')).length, 3, 'one file per photo');
    for (const id of photoRecords) {
      const record = await s.getRecord(id);
      const [photoId] = Object.keys(record.photos);
      const content = await s.readPhoto(id, photoId ?? '');
      t.equal(content.type, 'image/jpeg', `photo of ${id} reads back verified`);
    }
    await s.logout();
  });
}
