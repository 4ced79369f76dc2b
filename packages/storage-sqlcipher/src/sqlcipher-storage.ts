import { existsSync, mkdirSync, openSync, closeSync, fsyncSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import type { OpenOptions, SqlExecutor, SqlRow, SqlValue, StorageAdapter, StorageHandle } from '@fieldvault/client';
import { FieldvaultError } from '@fieldvault/protocol';

/*
 * SQLCipher 4 files through better-sqlite3-multiple-ciphers (SQLite3 Multiple Ciphers).
 *
 * Opening: `cipher='sqlcipher'`, `legacy=4` and the page size are set BEFORE the key, or the
 * library silently uses its own ChaCha20 default; the key is the raw 32 bytes as `x'<64 hex>'` (no
 * SQLCipher KDF: the key is already random and full strength). Then one read (`PRAGMA user_version`
 * and a `sqlite_master` scan) so that a wrong key fails at open with VAULT_DB_KEY_REJECTED. The
 * cipher settings are connection defaults, so databases ATTACHed with `KEY` use the same format.
 *
 * Page size: new databases get 8 KiB pages (SQLCipher 4's `cipher_page_size = 8192`; its default
 * is 4 KiB). A record row is ≈ 2.4 KB and every page loses 80 bytes to its IV and HMAC, so a 4 KiB
 * page holds one record and wastes the rest: 10 000 records took 44 MB, with 8 KiB pages 30 MB, and
 * each pulled record costs fewer page encryptions (docs/performance.md, "Sixth round"). The page
 * size is not readable without the key (the whole first page is encrypted), and a file opened with
 * the wrong one fails exactly like a wrong key, so an existing file is tried with this adapter's
 * page size and then with the other: files written before the change (4 KiB) keep working as they
 * are, and so do ATTACHed ones.
 *
 * Crash safety: WAL journal with `synchronous=FULL` (every commit is fsynced before it returns;
 * readers never block the writer). The migration protocol does not rely on atomic commits across
 * attached files (which WAL does not give): it is journaled step by step in the keyring.
 * `temp_store=MEMORY` keeps sort and temp-table spills out of (unencrypted) temporary files.
 *
 * A wrong key never leads to a new database over an existing file: an existing file is opened with
 * `fileMustExist`, nothing is written before the key check, and a failed check closes the handle
 * without touching the file.
 */

export interface SqlCipherStorageOptions {
  /** Directory of the database files (`<name>.db`, with `-wal`/`-shm` beside them while open). */
  readonly directory: string;
  /** Page cache per connection in KiB; default 8192 (8 MiB). */
  readonly cacheSizeKiB?: number;
  /** How long a statement waits for a lock held by another connection, in ms; default 5000. */
  readonly busyTimeoutMs?: number;
  /**
   * Page size of the databases this adapter creates: 8192 (default) or 4096 (SQLCipher 4's
   * default, for files another SQLCipher 4 reader must open with default settings). Existing
   * files are opened with whichever of the two they were written with.
   */
  readonly pageSize?: PageSize;
}

/** The page sizes this adapter writes and reads. */
export type PageSize = 4096 | 8192;
const PAGE_SIZES: readonly PageSize[] = [8192, 4096];
/** The page size of new databases unless `pageSize` says otherwise. */
export const DEFAULT_PAGE_SIZE: PageSize = 8192;

type Db = InstanceType<typeof Database>;

const SIDE_FILES = ['-wal', '-shm', '-journal'];

function errCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** What a wrong key gives at the first read; a wrong page size gives the same. */
function isKeyRejection(err: unknown): boolean {
  const code = errCode(err);
  return code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code.startsWith('SQLITE_CORRUPT_');
}

/**
 * `attempt` with `preferred`, then, if its key check failed, with the other page size (an existing
 * file's page size cannot be read without the key). The last failure is reported, mapped as an
 * open error: a wrong key is VAULT_DB_KEY_REJECTED once both sizes have failed.
 */
function withEitherPageSize<T>(preferred: PageSize, attempt: (pageSize: PageSize) => T): T {
  const sizes = [preferred, ...PAGE_SIZES.filter((p) => p !== preferred)];
  for (let i = 0; ; i += 1) {
    try {
      return attempt(sizes[i] as PageSize);
    } catch (err) {
      if (!isKeyRejection(err) || i === sizes.length - 1) throw mapError(err, 'open');
    }
  }
}

/** Maps a driver error to the catalogue. SQL errors are bugs in the core: INTERNAL_ERROR, with the SQLite code only. */
function mapError(err: unknown, phase: 'open' | 'use'): FieldvaultError {
  if (err instanceof FieldvaultError) return err;
  const code = errCode(err);
  if (isKeyRejection(err)) {
    return phase === 'open'
      ? new FieldvaultError('VAULT_DB_KEY_REJECTED', { cause: err })
      : new FieldvaultError('VAULT_DB_CORRUPT', { detail: code, cause: err });
  }
  // Another connection (another process) held the file longer than the busy timeout: not the
  // disk's fault; the caller may simply retry (audit M6).
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new FieldvaultError('VAULT_BUSY', { detail: code, cause: err });
  }
  if (
    code === 'SQLITE_FULL' ||
    code === 'SQLITE_CANTOPEN' ||
    code === 'SQLITE_PERM' ||
    code.startsWith('SQLITE_IOERR') ||
    code.startsWith('SQLITE_READONLY') ||
    ['ENOSPC', 'EACCES', 'EROFS', 'EIO', 'EPERM'].includes(code)
  ) {
    return new FieldvaultError('VAULT_STORAGE_FAILED', { detail: code, cause: err });
  }
  return new FieldvaultError('INTERNAL_ERROR', { detail: code === '' ? 'storage driver error' : code, cause: err });
}

function keyLiteral(key: Uint8Array): string {
  return `x'${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}'`;
}

function toDriver(params: readonly SqlValue[]): unknown[] {
  return params.map((p) => (p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p));
}

function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/*
 * Writers of one file within this process, across every connection of every adapter: a write
 * waits here (asynchronously) for the previous one. SQLite's busy timeout alone cannot serve two
 * connections of one process (two `Device` objects on one directory): the driver is synchronous,
 * so a writer waiting in the busy handler blocks the very event loop the holder of the lock needs
 * to finish its transaction, and always fails after the timeout. Across processes, the busy
 * timeout does the waiting.
 */
const fileWriters = new Map<string, Promise<void>>();

async function withFileWriteLock<T>(path: string, fn: () => Promise<T> | T): Promise<T> {
  const previous = fileWriters.get(path) ?? Promise.resolve();
  let release = (): void => undefined;
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const tail = previous.then(() => mine);
  fileWriters.set(path, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (fileWriters.get(path) === tail) fileWriters.delete(path);
  }
}

/** One serialised statement runner over a better-sqlite3 connection. */
class Runner implements SqlExecutor {
  readonly #db: Db;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(db: Db) {
    this.#db = db;
  }

  #prepare(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      // A small cache: the core issues a few dozen distinct statements.
      if (this.#statements.size >= 200) this.#statements.clear();
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  executeSync(sql: string, params: readonly SqlValue[] = []): number {
    try {
      return this.#prepare(sql).run(...toDriver(params)).changes;
    } catch (err) {
      throw mapError(err, 'use');
    }
  }

  querySync<R extends SqlRow>(sql: string, params: readonly SqlValue[] = []): R[] {
    try {
      return this.#prepare(sql).all(...toDriver(params)) as R[];
    } catch (err) {
      throw mapError(err, 'use');
    }
  }

  clear(): void {
    this.#statements.clear();
  }

  async execute(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.executeSync(sql, params);
  }

  async query<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    return this.querySync<R>(sql, params);
  }
}

const ALIAS_PATTERN = /^[a-z_][a-z0-9_]{0,63}$/;

/** A handle of this adapter: it always has `bulkWrites`. */
export type SqlCipherStorageHandle = StorageHandle & Required<Pick<StorageHandle, 'bulkWrites'>>;

class SqlCipherHandle implements StorageHandle {
  readonly name: string;
  readonly #db: Db;
  readonly #runner: Runner;
  readonly #storage: SqlCipherStorage;
  /** The main database's page size: the connection's default, tried first for an ATTACH. */
  readonly #pageSize: PageSize;
  /** Absolute path of the main file: the key of the process-wide write lock. */
  readonly #path: string;
  // Serialises every call on this connection: a transaction spans awaits, and nothing from
  // outside may run inside it.
  #tail: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(storage: SqlCipherStorage, name: string, db: Db, pageSize: PageSize) {
    this.#storage = storage;
    this.name = name;
    this.#db = db;
    this.#pageSize = pageSize;
    this.#runner = new Runner(db);
    this.#path = resolvePath(storage.pathOf(name));
  }

  #exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.#tail.then(() => {
      if (this.#closed) throw new FieldvaultError('VAULT_LOCKED', { detail: 'the database handle is closed' });
      return fn();
    });
    this.#tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  execute(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.#exclusive(() => withFileWriteLock(this.#path, () => this.#runner.executeSync(sql, params)));
  }

  query<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    return this.#exclusive(() => this.#runner.querySync<R>(sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#exclusive(() => withFileWriteLock(this.#path, () => this.#transaction(fn)));
  }

  async #transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    let live = true;
    const guard = (): void => {
      if (!live) throw new FieldvaultError('INTERNAL_ERROR', { detail: 'a statement ran on a finished transaction' });
    };
    const tx: SqlExecutor = {
      execute: async (sql, params) => {
        guard();
        return this.#runner.executeSync(sql, params);
      },
      query: async (sql, params) => {
        guard();
        return this.#runner.querySync(sql, params);
      },
    };
    this.#runner.executeSync('BEGIN IMMEDIATE');
    try {
      const result = await fn(tx);
      this.#runner.executeSync('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.inTransaction) {
        try {
          this.#db.exec('ROLLBACK');
        } catch {
          // The original error is the one worth reporting.
        }
      }
      throw err;
    } finally {
      live = false;
    }
  }

  /**
   * Runs `fn` under a rollback journal (`TRUNCATE`) instead of WAL. With SQLCipher, WAL costs
   * every page twice: encrypted into the WAL, then decrypted and encrypted again by the
   * checkpoint; a rollback journal writes a new page once and journals only the pages that
   * existed before. Measured on a 10 000-record pull: ≈ −0.1 ms of phone CPU per record
   * (docs/performance.md, "Fifth round"). Commits stay durable: with `synchronous = FULL` the
   * journal is synced before the database is written, and truncated and synced again after, so a
   * commit that returned survives kill -9 and power loss, and a torn one is rolled back at the
   * next open. Local saves made meanwhile cost more fsyncs, which is why this is for bulk work
   * only. SQLite refuses the switch while another connection has the file open: `fn` then runs in
   * WAL, as before. Back to WAL afterwards, also when `fn` fails; if that switch fails the file
   * stays in the (equally durable) rollback journal until the next open sets WAL again.
   */
  async bulkWrites<T>(fn: () => Promise<T>): Promise<T> {
    const mode = await this.#exclusive(() => {
      try {
        return String(this.#db.pragma('main.journal_mode = TRUNCATE', { simple: true }));
      } catch {
        return 'unchanged';
      }
    });
    if (mode !== 'truncate') return fn();
    try {
      return await fn();
    } finally {
      await this.#exclusive(() => this.#db.pragma('main.journal_mode = WAL')).catch(() => undefined);
    }
  }

  attach(alias: string, name: string, key: Uint8Array): Promise<void> {
    return this.#exclusive(() => {
      if (!ALIAS_PATTERN.test(alias)) throw new FieldvaultError('INTERNAL_ERROR', { detail: 'invalid attach alias' });
      const path = this.#storage.pathOf(name);
      // ATTACH creates a missing file; a missing source is an error, never a new empty database.
      if (!existsSync(path)) throw new FieldvaultError('VAULT_NOT_FOUND', { detail: 'attached database' });
      // The attached file may have the other page size (a database from before 8 KiB pages).
      withEitherPageSize(this.#pageSize, (pageSize) => this.#attachWith(alias, path, key, pageSize));
      this.#runner.clear();
    });
  }

  /** ATTACH with a page size, checked by a first read; detached again if that read fails. */
  #attachWith(alias: string, path: string, key: Uint8Array, pageSize: PageSize): void {
    // The cipher pragmas without a schema are the connection's defaults for the next ATTACH;
    // the main database keeps the settings it was opened with.
    if (pageSize !== this.#pageSize) this.#db.pragma(`legacy_page_size = ${pageSize}`);
    try {
      this.#db.prepare(`ATTACH DATABASE ? AS ${alias} KEY ?`).run(path, keyLiteral(key));
      try {
        this.#db.prepare(`SELECT count(*) FROM ${alias}.sqlite_master`).get();
        this.#db.pragma(`${alias}.synchronous = FULL`);
      } catch (err) {
        try {
          this.#db.exec(`DETACH DATABASE ${alias}`);
        } catch {
          // The first error is the one reported.
        }
        throw err;
      }
    } finally {
      if (pageSize !== this.#pageSize) this.#db.pragma(`legacy_page_size = ${this.#pageSize}`);
    }
  }

  detach(alias: string): Promise<void> {
    return this.#exclusive(() => {
      if (!ALIAS_PATTERN.test(alias)) throw new FieldvaultError('INTERNAL_ERROR', { detail: 'invalid attach alias' });
      // Statements compiled against the attached schema must go before DETACH.
      this.#runner.clear();
      try {
        this.#db.exec(`DETACH DATABASE ${alias}`);
      } catch (err) {
        throw mapError(err, 'use');
      }
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#exclusive(() => {
      this.#closed = true;
      this.#runner.clear();
      try {
        this.#db.close();
      } finally {
        this.#storage.handleClosed(this);
      }
    }).catch((err: unknown) => {
      if ((err as { code?: unknown }).code === 'VAULT_LOCKED') return;
      throw err;
    });
  }
}

/**
 * The `StorageAdapter` for Node: SQLCipher 4 databases (raw 32-byte keys, HMAC-SHA512 per page)
 * as `<directory>/<name>.db`. The only importer of better-sqlite3-multiple-ciphers in the workspace.
 */
export class SqlCipherStorage implements StorageAdapter {
  readonly directory: string;
  readonly #cacheSizeKiB: number;
  readonly #busyTimeoutMs: number;
  readonly #pageSize: PageSize;
  readonly #open = new Map<string, Set<SqlCipherHandle>>();

  constructor(options: SqlCipherStorageOptions) {
    if (typeof options?.directory !== 'string' || options.directory === '') {
      throw new FieldvaultError('INPUT_INVALID', { detail: 'directory: a non-empty path', details: { field: 'directory' } });
    }
    this.directory = options.directory;
    this.#cacheSizeKiB = options.cacheSizeKiB ?? 8192;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    const pageSize: unknown = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!PAGE_SIZES.includes(pageSize as PageSize)) {
      throw new FieldvaultError('INPUT_INVALID', { detail: 'pageSize: 4096 or 8192', details: { field: 'pageSize' } });
    }
    this.#pageSize = pageSize as PageSize;
  }

  /** @internal The file of database `name`. Names come from the core (hex) and are trusted. */
  pathOf(name: string): string {
    return join(this.directory, `${name}.db`);
  }

  /** @internal */
  handleClosed(handle: SqlCipherHandle): void {
    const set = this.#open.get(handle.name);
    set?.delete(handle);
    if (set?.size === 0) this.#open.delete(handle.name);
  }

  async exists(name: string): Promise<boolean> {
    return existsSync(this.pathOf(name));
  }

  /** A connection to `path` with the cipher settings and `key`, checked by a first read; closed if that fails. */
  #keyed(path: string, existed: boolean, key: Uint8Array, pageSize: PageSize): Db {
    const db = new Database(path, { fileMustExist: existed, timeout: this.#busyTimeoutMs });
    try {
      db.pragma(`cipher = 'sqlcipher'`);
      db.pragma('legacy = 4');
      db.pragma(`legacy_page_size = ${pageSize}`);
      db.pragma(`key = "${keyLiteral(key)}"`);
      db.pragma('user_version');
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Opens or creates an encrypted database and checks its key with a first read.
   * @throws VAULT_NOT_FOUND when the file is missing and `create` is false.
   * @throws VAULT_DB_KEY_REJECTED when the key does not open the file (the file is left untouched).
   * @throws VAULT_STORAGE_FAILED when the file or directory cannot be created or read.
   */
  async open(name: string, key: Uint8Array, options: OpenOptions): Promise<SqlCipherStorageHandle> {
    const path = this.pathOf(name);
    const existed = existsSync(path);
    if (!existed && !options.create) throw new FieldvaultError('VAULT_NOT_FOUND', { detail: 'database' });
    if (!existed) {
      try {
        mkdirSync(this.directory, { recursive: true, mode: 0o700 });
        // Created here with mode 0600 (the driver would make it 0644 under the usual umask);
        // SQLite gives its -wal and -shm files the mode of the main file. An empty file is an
        // empty database, so a crash right after this leaves nothing the next open trips on.
        closeSync(openSync(path, 'wx', 0o600));
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EEXIST') throw mapError(err, 'open');
      }
    }
    // A new file gets this adapter's page size (the first one tried always opens an empty file).
    const { db, pageSize } = withEitherPageSize(this.#pageSize, (pageSize) => ({ db: this.#keyed(path, existed, key, pageSize), pageSize }));
    try {
      try {
        db.pragma('journal_mode = WAL');
      } catch (err) {
        // Another connection holds the file in a rollback journal for a bulk phase
        // (`bulkWrites`), and SQLite refuses to switch it meanwhile. This connection then uses a
        // rollback journal too — TRUNCATE, as durable as WAL with synchronous=FULL (DELETE is not:
        // its unlink is not synced) — and follows the file back to WAL when it switches.
        if (!errCode(err).startsWith('SQLITE_BUSY')) throw err;
        db.pragma('journal_mode = TRUNCATE');
      }
      db.pragma('synchronous = FULL');
      db.pragma('temp_store = MEMORY');
      db.pragma(`cache_size = -${this.#cacheSizeKiB}`);
      db.pragma('foreign_keys = ON');
    } catch (err) {
      db.close();
      throw mapError(err, 'use');
    }
    if (!existed) fsyncDirectory(this.directory);
    const handle = new SqlCipherHandle(this, name, db, pageSize);
    const set = this.#open.get(name) ?? new Set();
    set.add(handle);
    this.#open.set(name, set);
    return handle;
  }

  /**
   * Deletes a database and its side files (WAL and shared memory first, so a new database of the
   * same name can never pick up a stale WAL), then flushes the directory.
   * @throws INTERNAL_ERROR when the database is still open through this adapter.
   * @throws VAULT_STORAGE_FAILED when a file cannot be deleted.
   */
  async remove(name: string): Promise<void> {
    if (this.#open.has(name)) throw new FieldvaultError('INTERNAL_ERROR', { detail: 'remove of an open database' });
    const path = this.pathOf(name);
    try {
      for (const suffix of SIDE_FILES) rmSync(`${path}${suffix}`, { force: true });
      rmSync(path, { force: true });
      if (existsSync(this.directory) && statSync(this.directory).isDirectory()) fsyncDirectory(this.directory);
    } catch (err) {
      throw mapError(err, 'use');
    }
  }

  async list(): Promise<string[]> {
    if (!existsSync(this.directory)) return [];
    return readdirSync(this.directory)
      .filter((f) => f.endsWith('.db'))
      .map((f) => f.slice(0, -'.db'.length))
      .sort();
  }
}
