// Two connections on one database file (SDK audit M6, /work/notes/s9/sdk-report.md): writers in one
// process wait for each other instead of failing with SQLITE_BUSY, and a writer held up by another
// process beyond the busy timeout gets VAULT_BUSY ("retry"), not VAULT_STORAGE_FAILED ("the disk").
// And the phone's database files are created 0600 (security audit L5).
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import t from 'tap';
import { SqlCipherStorage } from '../src/index.js';
import { rejection } from './helpers.js';

const NAME = 'b'.repeat(64);

t.test('two connections of one process writing at once both commit, one after the other', async (t) => {
  const dir = t.testdir();
  const key = randomBytes(32);
  // A short busy timeout: before the fix the second writer failed after it (SQLITE_BUSY), having
  // blocked the event loop the first writer needed to finish.
  const first = await new SqlCipherStorage({ directory: dir, busyTimeoutMs: 200 }).open(NAME, key, { create: true });
  const second = await new SqlCipherStorage({ directory: dir, busyTimeoutMs: 200 }).open(NAME, key, { create: false });
  await first.execute('CREATE TABLE t (n INTEGER)');
  let letFirstFinish = (): void => undefined;
  const gate = new Promise<void>((resolve) => {
    letFirstFinish = resolve;
  });
  const one = first.transaction(async (tx) => {
    await tx.execute('INSERT INTO t VALUES (1)');
    await gate; // still inside the transaction while the second connection starts its own
    await tx.execute('INSERT INTO t VALUES (2)');
  });
  const two = second.transaction(async (tx) => {
    await tx.execute('INSERT INTO t VALUES (3)');
  });
  const three = second.execute('INSERT INTO t VALUES (4)');
  setTimeout(letFirstFinish, 50);
  await Promise.all([one, two, three]);
  t.same((await first.query<{ n: number }>('SELECT n FROM t ORDER BY n')).map((r) => r.n), [1, 2, 3, 4]);
  await first.close();
  await second.close();
});

t.test('a write held up by another process’s connection beyond the busy timeout is VAULT_BUSY, and changes nothing', async (t) => {
  const dir = t.testdir();
  const key = randomBytes(32);
  const storage = new SqlCipherStorage({ directory: dir, busyTimeoutMs: 100 });
  const db = await storage.open(NAME, key, { create: true });
  await db.execute('CREATE TABLE t (n INTEGER)');
  await db.execute('INSERT INTO t VALUES (1)');
  // Another process's writer, as the driver sees it: a connection outside this adapter holding the write lock.
  const other = new Database(join(dir, `${NAME}.db`), { fileMustExist: true, timeout: 100 });
  t.teardown(() => other.close());
  other.pragma(`cipher = 'sqlcipher'`);
  other.pragma('legacy = 4');
  other.pragma('legacy_page_size = 8192');
  other.pragma(`key = "x'${key.toString('hex')}'"`);
  other.exec('BEGIN IMMEDIATE');
  other.exec('INSERT INTO t VALUES (99)');
  const err = await rejection(db.execute('INSERT INTO t VALUES (2)'));
  t.equal(err.code, 'VAULT_BUSY');
  const inTx = await rejection(db.transaction(async (tx) => void (await tx.execute('INSERT INTO t VALUES (3)'))));
  t.equal(inTx.code, 'VAULT_BUSY');
  other.exec('ROLLBACK');
  t.same((await db.query<{ n: number }>('SELECT n FROM t')).map((r) => r.n), [1], 'nothing was written by the refused calls');
  await db.execute('INSERT INTO t VALUES (2)');
  t.same((await db.query<{ n: number }>('SELECT n FROM t ORDER BY n')).map((r) => r.n), [1, 2], 'a retry once the other writer is done works');
  await db.close();
});

t.test('a new database file and its WAL and shared-memory files are created mode 0600', async (t) => {
  const dir = t.testdir();
  const db = await new SqlCipherStorage({ directory: join(dir, 'databases') }).open(NAME, randomBytes(32), { create: true });
  await db.execute('CREATE TABLE t (x TEXT)');
  await db.execute('INSERT INTO t VALUES (?)', ['x']);
  for (const suffix of ['', '-wal', '-shm']) {
    t.equal(statSync(join(dir, 'databases', `${NAME}.db${suffix}`)).mode & 0o777, 0o600, `${NAME.slice(0, 4)}….db${suffix} is 0600`);
  }
  t.equal(statSync(join(dir, 'databases')).mode & 0o777, 0o700, 'in a 0700 directory');
  await db.close();
});
