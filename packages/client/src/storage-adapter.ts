/**
 * The storage contract of the SDK: the small surface an encrypted SQLite driver must offer. The
 * SDK core decides names, keys, schema and SQL and validates everything it passes; adapters trust
 * their input (pouchdb's adapter split, powersync's `DBAdapter`).
 *
 * **Asynchronous on purpose.** Phone SQLite bindings and worker-backed browser storage are
 * asynchronous; a synchronous driver (better-sqlite3) wraps its calls. Because a transaction spans
 * `await`s, an adapter must serialise each handle: a call made on the handle while a transaction
 * is open waits until that transaction has committed or rolled back, and only the `tx` object
 * given to the callback runs statements inside it.
 *
 * Errors an adapter throws are catalogued `FieldvaultError`s:
 * - `VAULT_NOT_FOUND`: `open(…, { create: false })` or `attach` of a database that does not exist;
 * - `VAULT_DB_KEY_REJECTED`: the key does not open the file (wrong key, or page 1 altered). The
 *   file is left exactly as it was: an adapter never creates a new database over an existing file;
 * - `VAULT_DB_CORRUPT`: a page failed its integrity check while in use;
 * - `VAULT_STORAGE_FAILED`: disk full, read-only, I/O error, file busy;
 * - `VAULT_LOCKED`: the handle was closed;
 * - `INTERNAL_ERROR`: anything else (an SQL error is a bug in the core, never user input).
 */

/** A value bound to or read from SQL. Integers beyond 2^53 are not used by the SDK. */
export type SqlValue = string | number | null | Uint8Array;

/** One result row, by column name. */
export type SqlRow = Readonly<Record<string, SqlValue>>;

/** Runs statements: the handle itself outside a transaction, the `tx` object inside one. */
export interface SqlExecutor {
  /** Runs one statement that returns no rows; resolves to the number of rows changed. */
  execute(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** Runs one statement and returns all its rows. */
  query<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
}

/** An open, unlocked database. */
export interface StorageHandle extends SqlExecutor {
  /** The name the handle was opened with. */
  readonly name: string;
  /**
   * Runs `fn` in one write transaction (`BEGIN IMMEDIATE` … `COMMIT`). When `fn` throws or
   * rejects, the transaction is rolled back and the error passes through. Not re-entrant.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Attaches another database of this adapter, opened with its own key, under `alias` (an SQL
   * identifier chosen by the core), so that one transaction can copy rows between the two files
   * inside SQLite (`INSERT … SELECT`). A wrong key fails here, not at the first query. Must be
   * called outside a transaction.
   */
  attach(alias: string, name: string, key: Uint8Array): Promise<void>;
  /** Detaches a database attached with `attach`. */
  detach(alias: string): Promise<void>;
  /**
   * Optional. Runs `fn`, work that writes many pages (a sync's pull, a migration's copy), in
   * whatever mode the adapter finds cheaper per written page, and returns to its usual mode
   * afterwards, also when `fn` fails. Every commit inside must stay exactly as durable as outside,
   * and calls on the handle inside `fn` work as usual. Must be called outside a transaction.
   */
  bulkWrites?<T>(fn: () => Promise<T>): Promise<T>;
  /** Closes the handle; later calls fail with VAULT_LOCKED. Closing twice is a no-op. */
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * Create the database when no file of that name exists. An existing file is always opened,
   * never replaced, whatever this says.
   */
  readonly create: boolean;
}

/** An encrypted database driver. Names are chosen by the core (hex strings); keys are 32 raw bytes. */
export interface StorageAdapter {
  /** True when a database of this name exists. */
  exists(name: string): Promise<boolean>;
  /**
   * Opens (or, with `create`, creates) the database `name` under the raw 32-byte `key`, and reads
   * from it once so that a wrong key fails here.
   */
  open(name: string, key: Uint8Array, options: OpenOptions): Promise<StorageHandle>;
  /** Deletes the database and every side file (journal, WAL, shared memory). No-op when missing. */
  remove(name: string): Promise<void>;
  /** The names of every database this adapter holds (used by wipe). */
  list(): Promise<string[]>;
}

/** Runs `fn` through the handle's `bulkWrites` when the adapter has one (it is optional). */
export function withBulkWrites<T>(db: StorageHandle, fn: () => Promise<T>): Promise<T> {
  return db.bulkWrites === undefined ? fn() : db.bulkWrites(fn);
}
