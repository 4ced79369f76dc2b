import { createDecipheriv, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { SqlCipherStorage, type PageSize } from '../src/index.js';
import { TS_LOADER, rejection, snapshot } from './helpers.js';

const NAME = 'a'.repeat(64);
const BULK_CHILD = fileURLToPath(new URL('./fixtures/bulk-child.ts', import.meta.url));
const CANARY = 'CANARY-5f1d0c7e-plaintext-must-not-appear';

async function withTable(dir: string, key: Uint8Array, name = NAME, pageSize?: PageSize): Promise<SqlCipherStorage> {
  const storage = new SqlCipherStorage(pageSize === undefined ? { directory: dir } : { directory: dir, pageSize });
  const db = await storage.open(name, key, { create: true });
  await db.execute('CREATE TABLE t (x TEXT)');
  await db.execute('INSERT INTO t VALUES (?)', [CANARY]);
  await db.close();
  return storage;
}

t.test('a database file holds no plaintext: no SQLite header, no canary', async (t) => {
  const dir = t.testdir();
  await withTable(dir, randomBytes(32));
  const bytes = readFileSync(join(dir, `${NAME}.db`));
  t.not(bytes.subarray(0, 16).toString('latin1'), 'SQLite format 3\0');
  t.notOk(bytes.includes(Buffer.from(CANARY)), 'canary absent from the file');
});

for (const [pageSize, label] of [[undefined, 'new databases: 8192-byte pages'], [4096, 'pageSize 4096: SQLCipher 4 default pages']] as const) {
  t.test(`files are SQLCipher 4 (${label}): page 1 decrypts with AES-256-CBC under the raw key and its HMAC-SHA512 verifies`, async (t) => {
    const dir = t.testdir();
    const key = randomBytes(32);
    await withTable(dir, key, NAME, pageSize);
    const size = pageSize ?? 8192;
    const file = readFileSync(join(dir, `${NAME}.db`));
    t.equal(file.length % size, 0, 'the file is whole pages');
    const page = file.subarray(0, size);
    // SQLCipher 4 layout: 80 reserved bytes per page (16 IV + 64 HMAC), salt in bytes 0–15, HMAC
    // key = PBKDF2-HMAC-SHA512(key, salt ^ 0x3a, 2 iterations), page number little-endian. A
    // SQLCipher 4 reader opens the 8 KiB files with `PRAGMA cipher_page_size = 8192`.
    const iv = page.subarray(size - 80, size - 64);
    const decipher = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false);
    const plain = Buffer.concat([decipher.update(page.subarray(16, size - 80)), decipher.final()]);
    t.same([...plain.subarray(0, 8)], [size >> 8, 0x00, 2, 2, 80, 64, 32, 32], `SQLite header fields 16–23: ${size}-byte pages, WAL, 80 reserved`);
    const hmacKey = pbkdf2Sync(key, Buffer.from(page.subarray(0, 16).map((b) => b ^ 0x3a)), 2, 32, 'sha512');
    const pageNo = Buffer.alloc(4);
    pageNo.writeUInt32LE(1);
    const mac = createHmac('sha512', hmacKey).update(page.subarray(16, size - 64)).update(pageNo).digest();
    t.ok(mac.equals(page.subarray(size - 64)), 'HMAC verifies');
  });
}

t.test('a pageSize other than 4096 or 8192 is refused with INPUT_INVALID', async (t) => {
  for (const pageSize of [1024, 16384, 0]) {
    t.throws(() => new SqlCipherStorage({ directory: t.testdir(), pageSize: pageSize as PageSize }), { code: 'INPUT_INVALID' });
  }
});

t.test('records of ≈ 2.4 KB take less room with 8 KiB pages than with 4 KiB pages', async (t) => {
  const dir = t.testdir();
  const row = JSON.stringify({ notes: randomBytes(1_200).toString('hex') });
  const sizes: Record<string, number> = {};
  for (const pageSize of [4096, 8192] as const) {
    const storage = new SqlCipherStorage({ directory: join(dir, String(pageSize)), pageSize });
    const db = await storage.open(NAME, randomBytes(32), { create: true });
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, doc TEXT)');
    await db.transaction(async (tx) => {
      for (let i = 0; i < 400; i += 1) await tx.execute('INSERT INTO t (doc) VALUES (?)', [row]);
    });
    await db.close(); // checkpoints the WAL into the file
    sizes[pageSize] = statSync(join(dir, String(pageSize), `${NAME}.db`)).size;
  }
  t.comment(`400 rows of ${row.length} B: ${JSON.stringify(sizes)} bytes`);
  t.ok((sizes[8192] as number) < 0.8 * (sizes[4096] as number), 'at least a fifth smaller');
});

t.test('a database of either page size opens with an adapter of the other, reads, writes and keeps its page size', async (t) => {
  for (const [written, reader] of [[4096, 8192], [8192, 4096]] as const) {
    const dir = t.testdir();
    const key = randomBytes(32);
    await withTable(dir, key, NAME, written);
    const storage = new SqlCipherStorage({ directory: dir, pageSize: reader });
    const db = await storage.open(NAME, key, { create: true });
    t.same(await db.query('SELECT x FROM t'), [{ x: CANARY }], `${written}-byte file through a ${reader} adapter`);
    await db.execute('INSERT INTO t VALUES (?)', ['second']);
    t.same(await db.query('PRAGMA page_size'), [{ page_size: written }], 'its own page size');
    await db.close();
    const again = await new SqlCipherStorage({ directory: dir, pageSize: written }).open(NAME, key, { create: false });
    t.same(await again.query('SELECT x FROM t ORDER BY rowid'), [{ x: CANARY }, { x: 'second' }]);
    await again.close();
  }
});

t.test('a database reopens with its key and keeps its rows', async (t) => {
  const dir = t.testdir();
  const key = randomBytes(32);
  const storage = await withTable(dir, key);
  const db = await storage.open(NAME, key, { create: false });
  t.same(await db.query('SELECT x FROM t'), [{ x: CANARY }]);
  await db.close();
});

t.test('a wrong key fails at open with VAULT_DB_KEY_REJECTED, creates no file and leaves the old one byte-identical', async (t) => {
  for (const pageSize of [8192, 4096] as const) {
    const dir = t.testdir();
    const storage = await withTable(dir, randomBytes(32), NAME, pageSize);
    const before = snapshot(dir);
    for (const create of [false, true]) {
      // Both page sizes are tried before the key is called wrong.
      const err = await rejection(storage.open(NAME, randomBytes(32), { create }));
      t.equal(err.code, 'VAULT_DB_KEY_REJECTED', `${pageSize}-byte pages, create ${create}`);
    }
    t.same(snapshot(dir), before);
  }
});

t.test('opening a missing database without create fails with VAULT_NOT_FOUND and creates nothing', async (t) => {
  const dir = t.testdir();
  const storage = new SqlCipherStorage({ directory: dir });
  t.equal((await rejection(storage.open(NAME, randomBytes(32), { create: false }))).code, 'VAULT_NOT_FOUND');
  t.same(readdirSync(dir), []);
  t.equal(await storage.exists(NAME), false);
});

t.test('a page altered on disk fails with VAULT_DB_CORRUPT on read and the file is not rewritten', async (t) => {
  const dir = t.testdir();
  const key = randomBytes(32);
  const storage = new SqlCipherStorage({ directory: dir });
  const db = await storage.open(NAME, key, { create: true });
  await db.execute('CREATE TABLE t (x TEXT)');
  await db.transaction(async (tx) => {
    for (let i = 0; i < 400; i++) await tx.execute('INSERT INTO t VALUES (?)', [`${CANARY}-${i}-${'x'.repeat(100)}`]);
  });
  await db.close();
  const path = join(dir, `${NAME}.db`);
  const bytes = readFileSync(path);
  t.ok(bytes.length >= 4096 * 4, 'several pages');
  bytes[4096 * 3 + 100] = (bytes[4096 * 3 + 100] ?? 0) ^ 0x01;
  writeFileSync(path, bytes);
  const before = snapshot(dir);
  const reopened = await storage.open(NAME, key, { create: false });
  t.equal((await rejection(reopened.query('SELECT count(*) AS n, max(x) AS m FROM t'))).code, 'VAULT_DB_CORRUPT');
  await reopened.close();
  t.same(snapshot(dir)[`${NAME}.db`], before[`${NAME}.db`]);
});

t.test('page 1 altered on disk fails at open with VAULT_DB_KEY_REJECTED', async (t) => {
  const dir = t.testdir();
  const key = randomBytes(32);
  const storage = await withTable(dir, key);
  const path = join(dir, `${NAME}.db`);
  const bytes = readFileSync(path);
  bytes[200] = (bytes[200] ?? 0) ^ 0x80;
  writeFileSync(path, bytes);
  t.equal((await rejection(storage.open(NAME, key, { create: false }))).code, 'VAULT_DB_KEY_REJECTED');
});

t.test('attach copies rows between two files with different keys in one transaction', async (t) => {
  const dir = t.testdir();
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const storage = await withTable(dir, k1, 'b'.repeat(64));
  const target = await storage.open(NAME, k2, { create: true });
  await target.execute('CREATE TABLE t (x TEXT)');
  await target.attach('src', 'b'.repeat(64), k1);
  const n = await target.transaction((tx) => tx.execute('INSERT INTO main.t SELECT x FROM src.t'));
  await target.detach('src');
  t.equal(n, 1);
  t.same(await target.query('SELECT x FROM t'), [{ x: CANARY }]);
  await target.close();
});

t.test('attach reads a database of the other page size, and the main database reads and checks whole afterwards', async (t) => {
  for (const [mainSize, attachedSize] of [[8192, 4096], [4096, 8192]] as const) {
    const dir = t.testdir();
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    await withTable(dir, k1, 'b'.repeat(64), attachedSize);
    // A small page cache, so the reads below come from the file and not from pages cached before the ATTACH.
    const storage = new SqlCipherStorage({ directory: dir, pageSize: mainSize, cacheSizeKiB: 64 });
    const target = await storage.open(NAME, k2, { create: true });
    await target.execute('CREATE TABLE t (x TEXT)');
    const pad = 'p'.repeat(1_000);
    await target.transaction(async (tx) => {
      for (let i = 0; i < 300; i += 1) await tx.execute('INSERT INTO t VALUES (?)', [`${i}${pad}`]);
    });
    await target.attach('src', 'b'.repeat(64), k1);
    t.same(await target.query('PRAGMA src.page_size'), [{ page_size: attachedSize }], `a ${attachedSize}-byte file attached to a ${mainSize}-byte one`);
    const n = await target.transaction((tx) => tx.execute('INSERT INTO main.t SELECT x FROM src.t'));
    await target.detach('src');
    t.equal(n, 1);
    t.same(await target.query('SELECT count(*) AS c FROM t'), [{ c: 301 }]);
    t.same(await target.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    await target.close();
    const again = await new SqlCipherStorage({ directory: dir, pageSize: mainSize }).open(NAME, k2, { create: false });
    t.same(await again.query('PRAGMA page_size'), [{ page_size: mainSize }], 'the main database kept its page size');
    t.same(await again.query('SELECT count(*) AS c FROM t WHERE x = ?', [CANARY]), [{ c: 1 }]);
    await again.close();
  }
});

t.test('attach with a wrong key fails with VAULT_DB_KEY_REJECTED and leaves nothing attached', async (t) => {
  const dir = t.testdir();
  const storage = await withTable(dir, randomBytes(32), 'b'.repeat(64));
  const target = await storage.open(NAME, randomBytes(32), { create: true });
  t.equal((await rejection(target.attach('src', 'b'.repeat(64), randomBytes(32)))).code, 'VAULT_DB_KEY_REJECTED');
  t.same(await target.query("SELECT name FROM pragma_database_list WHERE name = 'src'"), []);
  await target.close();
});

t.test('attach of a missing database fails with VAULT_NOT_FOUND and does not create it', async (t) => {
  const dir = t.testdir();
  const storage = new SqlCipherStorage({ directory: dir });
  const target = await storage.open(NAME, randomBytes(32), { create: true });
  t.equal((await rejection(target.attach('src', 'c'.repeat(64), randomBytes(32)))).code, 'VAULT_NOT_FOUND');
  t.notOk(existsSync(join(dir, `${'c'.repeat(64)}.db`)));
  await target.close();
});

t.test('a transaction that throws is rolled back and its error passes through', async (t) => {
  const storage = new SqlCipherStorage({ directory: t.testdir() });
  const db = await storage.open(NAME, randomBytes(32), { create: true });
  await db.execute('CREATE TABLE t (x TEXT)');
  const boom = new Error('boom');
  t.equal(
    await rejection(
      db.transaction(async (tx) => {
        await tx.execute("INSERT INTO t VALUES ('lost')");
        throw boom;
      }),
    ),
    boom,
  );
  t.same(await db.query('SELECT count(*) AS n FROM t'), [{ n: 0 }]);
  await db.close();
});

t.test('a statement issued on the handle during a transaction waits until the transaction ends', async (t) => {
  const storage = new SqlCipherStorage({ directory: t.testdir() });
  const db = await storage.open(NAME, randomBytes(32), { create: true });
  await db.execute('CREATE TABLE t (x TEXT)');
  let outside: Promise<unknown> | undefined;
  await rejection(
    db.transaction(async (tx) => {
      await tx.execute("INSERT INTO t VALUES ('inside')");
      outside = db.execute("INSERT INTO t VALUES ('outside')");
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw new Error('roll back');
    }),
  );
  await outside;
  t.same(await db.query('SELECT x FROM t'), [{ x: 'outside' }], 'the outside write was not swallowed by the rollback');
  await db.close();
});

t.test('a closed handle fails with VAULT_LOCKED', async (t) => {
  const storage = new SqlCipherStorage({ directory: t.testdir() });
  const db = await storage.open(NAME, randomBytes(32), { create: true });
  await db.close();
  await db.close();
  t.equal((await rejection(db.query('SELECT 1'))).code, 'VAULT_LOCKED');
});

const journalMode = async (db: { query: (sql: string) => Promise<Array<Record<string, unknown>>> }): Promise<unknown> => (await db.query('PRAGMA journal_mode'))[0]?.['journal_mode'];

t.test('bulkWrites runs under a rollback journal and returns to WAL, also when its work fails', async (t) => {
  const dir = t.testdir();
  const key = randomBytes(32);
  const storage = await withTable(dir, key);
  const db = await storage.open(NAME, key, { create: false });
  t.equal(await journalMode(db), 'wal');
  const inside = await db.bulkWrites(async () => {
    await db.transaction((tx) => tx.execute('INSERT INTO t VALUES (?)', ['bulk']));
    return journalMode(db);
  });
  t.equal(inside, 'truncate', 'inside: a rollback journal');
  t.equal(await journalMode(db), 'wal', 'after: WAL again');
  const err = await rejection(db.bulkWrites(async () => Promise.reject(new Error('page refused'))));
  t.equal(err.message, 'page refused', 'the error passes through');
  t.equal(await journalMode(db), 'wal', 'WAL again after a failure');
  await db.close();
  const again = await storage.open(NAME, key, { create: false });
  t.same(await again.query('SELECT x FROM t ORDER BY x'), [{ x: CANARY }, { x: 'bulk' }], 'what was committed inside is kept');
  t.equal(await journalMode(again), 'wal');
  await again.close();
});

t.test('bulkWrites stays in WAL while another connection has the file open', async (t) => {
  const dir = t.testdir();
  const key = randomBytes(32);
  const storage = await withTable(dir, key);
  const db = await storage.open(NAME, key, { create: false });
  const other = await storage.open(NAME, key, { create: false });
  t.teardown(async () => {
    await db.close();
    await other.close();
  });
  const inside = await db.bulkWrites(async () => {
    await db.transaction((tx) => tx.execute('INSERT INTO t VALUES (?)', ['bulk']));
    return journalMode(db);
  });
  t.equal(inside, 'wal', 'SQLite refuses the switch; the work runs in WAL');
  t.same(await other.query("SELECT x FROM t WHERE x = 'bulk'"), [{ x: 'bulk' }], 'and the other connection reads it');
});

t.test('a connection opened while another is in bulkWrites opens, reads and writes; the file is in WAL again once it is alone', async (t) => {
  const dir = t.testdir();
  const key = randomBytes(32);
  const storage = await withTable(dir, key);
  const db = await storage.open(NAME, key, { create: false });
  await db.bulkWrites(async () => {
    let other: Awaited<ReturnType<typeof storage.open>> | undefined;
    await db.transaction(async (tx) => {
      await tx.execute('INSERT INTO t VALUES (?)', ['bulk']);
      // As a second process (`fieldvault list` during a long pull) would, in the middle of a
      // commit: SQLite refuses to switch the file to WAL now, and the open must not fail for it.
      other = await storage.open(NAME, key, { create: false });
    });
    if (other === undefined) throw new Error('not opened');
    t.same(await other.query("SELECT x FROM t WHERE x = 'bulk'"), [{ x: 'bulk' }]);
    await other.transaction((tx) => tx.execute('INSERT INTO t VALUES (?)', ['other']));
    t.equal(await journalMode(other), 'truncate', 'it uses the rollback journal the file is in');
    await other.close();
  });
  t.equal(await journalMode(db), 'wal', 'back to WAL');
  t.same(await db.query('SELECT x FROM t ORDER BY x'), [{ x: CANARY }, { x: 'bulk' }, { x: 'other' }]);
  await db.close();
});

for (const [childPageSize, journal] of [[undefined, 'truncate'], [4096, 'truncate'], [4096, 'wal']] as const) {
  // With 4096 the file is one from before 8 KiB pages: the default adapter first tries 8 KiB
  // pages on a file that most likely has a hot journal (or a WAL never checkpointed), then opens
  // it with its own.
  const label = childPageSize === undefined ? '' : ` (a 4 KiB-page file${journal === 'wal' ? ' in WAL' : ''}, reopened by a default adapter)`;
  const where = journal === 'wal' ? 'in WAL' : 'inside bulkWrites';
  t.test(`kill -9 ${where}: every commit that returned is there, the torn one is rolled back, the file is intact${label}`, async (t) => {
    const dir = t.testdir();
    const key = randomBytes(32);
    const args = [dir, NAME, String(childPageSize ?? 'default'), journal];
    const child = spawn(process.execPath, [...TS_LOADER, BULK_CHILD, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(key.toString('hex'));
    let out = '';
    let errText = '';
    child.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        // Killed after a few commits, wherever the next one stands.
        if ((out.match(/committed/g) ?? []).length >= 7) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('close', () => reject(new Error(`child ended early: ${out} ${errText}`)));
    });
    t.equal(await closed, 'SIGKILL');
    t.match(out, new RegExp(`^mode ${journal}$`, 'm'), `the child ran in ${journal}`);
    const acknowledged = Math.max(...[...out.matchAll(/committed (\d+)/g)].map((m) => Number(m[1])));
    for (const suffix of ['-journal', '-wal']) {
      const side = join(dir, `${NAME}.db${suffix}`);
      t.comment(`${suffix} left by the kill: ${existsSync(side) ? `${statSync(side).size} bytes` : 'none'}`);
    }
    const db = await new SqlCipherStorage({ directory: dir }).open(NAME, key, { create: false });
    t.teardown(() => db.close());
    t.same(await db.query('PRAGMA integrity_check'), [{ integrity_check: 'ok' }]);
    t.same(await db.query('PRAGMA page_size'), [{ page_size: childPageSize ?? 8192 }], 'the page size it was written with');
    const counts = await db.query<{ n: number; c: number }>('SELECT n, count(*) AS c FROM t GROUP BY n ORDER BY n');
    t.ok(counts.length >= acknowledged, `all ${acknowledged} acknowledged commits are there (${counts.length} found)`);
    t.ok(counts.every((r) => r.c === 200), 'no commit is there in part');
    t.same(counts.map((r) => r.n), counts.map((_, i) => i + 1), 'in order, none missing');
    t.equal(await journalMode(db), 'wal', 'reopened in WAL');
  });
}

t.test('remove deletes the database with its side files, list names what is there', async (t) => {
  const dir = t.testdir();
  const storage = await withTable(dir, randomBytes(32));
  await withTable(dir, randomBytes(32), 'd'.repeat(64));
  t.same(await storage.list(), ['a'.repeat(64), 'd'.repeat(64)]);
  writeFileSync(join(dir, `${NAME}.db-wal`), 'stale');
  await storage.remove(NAME);
  t.same(readdirSync(dir).sort(), [`${'d'.repeat(64)}.db`]);
  t.same(await storage.list(), ['d'.repeat(64)]);
});

t.test('removing an open database is refused', async (t) => {
  const storage = new SqlCipherStorage({ directory: t.testdir() });
  const db = await storage.open(NAME, randomBytes(32), { create: true });
  t.equal((await rejection(storage.remove(NAME))).code, 'INTERNAL_ERROR');
  await db.close();
  await storage.remove(NAME);
  t.equal(await storage.exists(NAME), false);
});
