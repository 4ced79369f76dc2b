import { FieldvaultError } from '@fieldvault/protocol';
import type { SqlExecutor, StorageHandle } from './storage-adapter.js';

/*
 * Schema of every device database (verified, unverified, temporary), kept in
 * `PRAGMA user_version`.
 *
 * Version 1:
 * - `records`: one row per record. `doc` is the canonical ChildRecord JSON (the source of truth);
 *   the other columns are derived from it on every write, for search and visibility:
 *   `name_search`/`location_search` are NFKC + lower-cased current values, `age` and the flags
 *   are the current values, `deleted`/`needs_review` the derived states. `local_seq` grows on
 *   every write of the row (local edits, merges of pulled records, migrations).
 * - `photo_files`: photos whose encrypted file is on this device (under this database's key).
 * - `meta`: small key/value settings (`clock`: the newest HLC issued; `local_seq`: the counter).
 * - `merged_sources`: key ids of databases merged into this one (a migration marker, for support).
 *
 * Version 2 adds the sync state, kept **per server** (a phone syncs with A and B independently):
 * - `server_acks`: the `local_seq` of a record that the server acknowledged (pushed and stored,
 *   or pulled from it unchanged). A record is pending for a server when it has no row there or
 *   its `local_seq` moved past the acknowledged one.
 * - `photo_acks`: photos a server is known to hold (uploaded, or downloaded from it).
 * - `checkpoints`: the server's opaque pull checkpoint, written in the same transaction as the
 *   pulled page it follows, and the time of the last complete sync.
 * - `server_roles`: the role each user had on each server at their last online login, so the
 *   SDK can apply the server's edit rights while offline.
 * Version 3 replaces the `local_seq` index by one on (`local_seq`, `id`): the push walks pending
 * records in that order, page by page, and with the old index each page read and sorted every
 * record after its start (a 10 000-record push read ≈ 105 000 rows, decrypting each).
 *
 * Version 4 adds `photo_files_pending`: photo ids whose encrypted file is being written (or
 * deleted) outside a transaction. A photo save commits the row BEFORE it writes the file and
 * deletes it in the transaction that adds the `photo_files` row; a removal adds it with the
 * transaction that drops the `photo_files` row and deletes it once the file is gone. A row left
 * without a `photo_files` row is an interrupted save or removal: the login that opens the database
 * deletes its file (`removeInterruptedPhotoFiles`). The photo folder is shared by every database
 * on the phone and its names derive from each database's key, so only the database itself can say
 * which file is an orphan (crash audit s16, finding 3).
 *
 * An older database is migrated in place (one transaction) when it is opened.
 */
export const SCHEMA_VERSION = 4;

const CREATE_V1 = [
  `CREATE TABLE records (
    id TEXT PRIMARY KEY NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    needs_review INTEGER NOT NULL,
    name_search TEXT,
    location_search TEXT,
    age REAL,
    flagged INTEGER NOT NULL,
    reunited INTEGER NOT NULL,
    investigated INTEGER NOT NULL,
    duplicate INTEGER NOT NULL,
    verified INTEGER NOT NULL,
    local_seq INTEGER NOT NULL,
    doc TEXT NOT NULL
  ) STRICT`,
  'CREATE INDEX records_by_creator ON records (created_by, created_at)',
  'CREATE INDEX records_by_created ON records (created_at)',
  'CREATE INDEX records_by_seq ON records (local_seq)',
  `CREATE TABLE photo_files (
    photo_id TEXT PRIMARY KEY NOT NULL,
    record_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    type TEXT NOT NULL
  ) STRICT`,
  'CREATE INDEX photo_files_by_record ON photo_files (record_id)',
  'CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT',
  'CREATE TABLE merged_sources (key_id TEXT PRIMARY KEY NOT NULL, op TEXT NOT NULL, merged_at TEXT NOT NULL) STRICT',
];

/** Version 3 (see above). The new index serves everything the old one did (`max(local_seq)`, ranges). */
const CREATE_V3 = ['CREATE INDEX records_by_seq_id ON records (local_seq, id)', 'DROP INDEX records_by_seq'];

/** Version 4 (see above). */
const CREATE_V4 = ['CREATE TABLE photo_files_pending (photo_id TEXT PRIMARY KEY NOT NULL) STRICT, WITHOUT ROWID'];

const CREATE_V2 = [
  `CREATE TABLE server_acks (
    server_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    local_seq_acked INTEGER NOT NULL,
    PRIMARY KEY (server_id, record_id)
  ) STRICT, WITHOUT ROWID`,
  `CREATE TABLE photo_acks (
    server_id TEXT NOT NULL,
    photo_id TEXT NOT NULL,
    PRIMARY KEY (server_id, photo_id)
  ) STRICT, WITHOUT ROWID`,
  `CREATE TABLE checkpoints (
    server_id TEXT PRIMARY KEY NOT NULL,
    checkpoint TEXT,
    updated_at TEXT NOT NULL,
    last_sync_at TEXT
  ) STRICT`,
  `CREATE TABLE server_roles (
    server_id TEXT NOT NULL,
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (server_id, username)
  ) STRICT`,
];

/** The columns of `records`, in insert order (shared by writes and the bulk copy of migrations). */
export const RECORD_COLUMNS = [
  'id',
  'created_by',
  'created_at',
  'updated_at',
  'deleted',
  'needs_review',
  'name_search',
  'location_search',
  'age',
  'flagged',
  'reunited',
  'investigated',
  'duplicate',
  'verified',
  'local_seq',
  'doc',
] as const;

async function userVersion(db: SqlExecutor): Promise<number> {
  const rows = await db.query<{ user_version: number }>('PRAGMA user_version');
  return Number(rows[0]?.user_version ?? 0);
}

/**
 * Creates the schema in a new database, migrates an older one in place (one transaction: a crash
 * leaves the old version or the new one), or checks the version of a current one.
 * @throws VAULT_FORMAT_UNSUPPORTED when the database was written by a newer schema.
 */
export async function ensureSchema(db: StorageHandle): Promise<void> {
  const version = await userVersion(db);
  if (version === SCHEMA_VERSION) return;
  if (version > SCHEMA_VERSION) {
    throw new FieldvaultError('VAULT_FORMAT_UNSUPPORTED', { detail: `database schema version ${version}` });
  }
  await db.transaction(async (tx) => {
    // Re-checked inside the write lock: another handle may have upgraded it meanwhile.
    const current = await userVersion(tx);
    if (current >= SCHEMA_VERSION) return;
    if (current < 1) for (const sql of CREATE_V1) await tx.execute(sql);
    if (current < 2) for (const sql of CREATE_V2) await tx.execute(sql);
    if (current < 3) for (const sql of CREATE_V3) await tx.execute(sql);
    if (current < 4) for (const sql of CREATE_V4) await tx.execute(sql);
    await tx.execute(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  });
}

/** Reads a `meta` value. */
export async function readMeta(db: SqlExecutor, key: string): Promise<string | undefined> {
  const rows = await db.query<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key]);
  return rows[0]?.value;
}

/** Writes a `meta` value. */
export async function writeMeta(db: SqlExecutor, key: string, value: string): Promise<void> {
  await db.execute('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
}

/**
 * Takes `n` values of the local write counter at once (call inside a write transaction): returns
 * the first; the caller uses `first … first + n - 1`. One read and one write for a whole pulled
 * page instead of two statements per record; values left unused are gaps, which nothing minds.
 */
export async function takeLocalSeqs(db: SqlExecutor, n: number): Promise<number> {
  const first = Number((await readMeta(db, 'local_seq')) ?? '0') + 1;
  if (n > 0) await writeMeta(db, 'local_seq', String(first + n - 1));
  return first;
}

/** The next value of the database's local write counter (call inside a write transaction). */
export function nextLocalSeq(db: SqlExecutor): Promise<number> {
  return takeLocalSeqs(db, 1);
}
