import { mergeRecords } from '@fieldvault/protocol';
import type { FileSystem } from './file-system.js';
import type { Logger } from './logger.js';
import { orphanPendingPhotosSql, photoPath, reencryptPhoto } from './photo-store.js';
import { putRecord, recordFromDoc } from './record-store.js';
import { withBulkWrites, type SqlExecutor, type SqlValue, type StorageAdapter, type StorageHandle } from './storage-adapter.js';
import { RECORD_COLUMNS, nextLocalSeq, readMeta, writeMeta } from './vault-schema.js';

/*
 * The data steps of a migration (DESIGN.md §3). The device journals the migration in the keyring
 * first (with the source key wrapped under the target key), then runs these steps, then clears
 * the journal. Every step is idempotent, so a run killed at any point is simply run again:
 *
 *   1. photos-copied            each source photo is decrypted (fully verified) and re-encrypted
 *                               under the target key into its target file name (temp + rename).
 *   2. records-copied           ONE transaction on the target with the source ATTACHed under its
 *                               own key: records present in both are merged with the protocol's
 *                               CRDT merge (idempotent), all others copied with one
 *                               INSERT … SELECT; photo rows likewise; the source's per-server
 *                               sync state is carried (see `carrySyncState`); a marker row is
 *                               written.
 *   3. source-photos-deleted    the source's photo files of the migrated records are deleted,
 *                               and those of photo saves a kill interrupted in the source.
 *   4. source-records-deleted   (move only) the moved user's rows are deleted from the source.
 *   5. source-deleted           (merge only) the source database file is deleted.
 *
 * Until step 2 commits, the source is intact and the target may hold only re-encrypted photo
 * files (harmless, rewritten on resume). After it, the target has everything; steps 3–5 only
 * delete, and a resumed run finds missing source files and skips them. Records are keyed by
 * their UUID, so nothing is ever inserted twice.
 */

export type MigrationStep =
  | 'journal-written'
  | 'photos-copied'
  | 'records-copy-uncommitted'
  | 'records-copied'
  | 'source-photos-deleted'
  | 'source-records-deleted'
  | 'source-deleted'
  | 'journal-cleared';

export interface MigrationEvent {
  readonly op: 'merge' | 'move';
  readonly step: MigrationStep;
  readonly fromKeyId: string;
  readonly toKeyId: string;
}

/** Called after each migration step (progress, and the kill points of the crash tests). */
export type MigrationListener = (event: MigrationEvent) => void | Promise<void>;

export interface MigrationResult {
  /** Source records copied or merged into the target. */
  readonly records: number;
  /** Photo files re-encrypted under the target key. */
  readonly photos: number;
}

export interface MigrationData {
  readonly op: 'merge' | 'move';
  readonly fromKeyId: string;
  readonly toKeyId: string;
  readonly fromKey: Uint8Array;
  readonly toKey: Uint8Array;
  readonly fromName: string;
  /** For `move`: only this user's records. */
  readonly username?: string;
}

export interface MigrationContext {
  readonly storage: StorageAdapter;
  readonly fs: FileSystem;
  readonly logger: Logger;
  readonly onStep: MigrationListener | undefined;
}

const ALIAS = 'migration_source';

interface PhotoRow {
  readonly photo_id: string;
  readonly record_id: string;
}

/**
 * Runs steps 1–5 of a migration into the open `target` handle (which stays open). The source must
 * exist (the caller checks); a source created but never given a schema counts as empty. A moved
 * user's emptied source database is left for the caller to delete (other users may still use it).
 * @throws VAULT_DB_KEY_REJECTED, VAULT_DB_CORRUPT, VAULT_STORAGE_FAILED from storage; the
 * migration stays journaled and is resumed next time.
 */
export async function migrateData(ctx: MigrationContext, target: StorageHandle, m: MigrationData): Promise<MigrationResult> {
  const event = async (step: MigrationStep): Promise<void> => {
    ctx.logger.debug({ op: m.op, step, fromKeyId: m.fromKeyId, toKeyId: m.toKeyId }, 'migration step');
    await ctx.onStep?.({ op: m.op, step, fromKeyId: m.fromKeyId, toKeyId: m.toKeyId });
  };
  const byUser = m.op === 'move' && m.username !== undefined;
  const userFilter = (alias: string): { sql: string; params: SqlValue[] } =>
    byUser ? { sql: ` AND ${alias}.created_by = ?`, params: [m.username as string] } : { sql: '', params: [] };

  await target.attach(ALIAS, m.fromName, m.fromKey);
  let result: MigrationResult = { records: 0, photos: 0 };
  try {
    const version = await target.query<{ user_version: number }>(`PRAGMA ${ALIAS}.user_version`);
    const sourceVersion = Number(version[0]?.user_version ?? 0);
    const hasSchema = sourceVersion > 0;
    const photos: PhotoRow[] = [];
    if (hasSchema) {
      const f = userFilter('r');
      photos.push(
        ...(await target.query<PhotoRow & Record<string, SqlValue>>(
          // Walk the photos and probe their records (CROSS JOIN fixes the order): walking the
          // user's records instead reads the whole source when there are few or no photos.
          `SELECT p.photo_id, p.record_id FROM ${ALIAS}.photo_files p CROSS JOIN ${ALIAS}.records r ON r.id = p.record_id WHERE 1 = 1${f.sql}`,
          f.params,
        )),
      );
    }

    // Step 1: photos, before the records, so a committed photo row always has its file.
    const skipped: string[] = [];
    let copied = 0;
    for (const p of photos) {
      try {
        if (await reencryptPhoto(ctx.fs, m.fromKey, m.toKey, p.photo_id)) copied += 1;
        else if (!(await ctx.fs.exists(photoPath(m.toKey, p.photo_id)))) skipped.push(p.photo_id);
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'CRYPTO_FILE_TAMPERED') throw err;
        // Already unreadable: it cannot be rescued by copying, and must not block the records.
        // Its ref stays on the record, so a sync can fetch it again.
        ctx.logger.warn({ photoId: p.photo_id, code: 'CRYPTO_FILE_TAMPERED' }, 'photo skipped in migration');
        skipped.push(p.photo_id);
      }
    }
    await event('photos-copied');

    // Step 2: all records in one transaction, inside SQLite. It can write every page of a large
    // database, so it runs in the adapter's bulk mode (SQLCipher: a rollback journal instead of
    // WAL, which would write each page twice; measured on 100k records 7.1 → 4.5 s,
    // docs/performance.md, "Sixth round"). A crash inside it rolls the copy back as before.
    let records = 0;
    if (hasSchema) {
      await withBulkWrites(target, () => target.transaction(async (tx) => {
        const f = userFilter('s');
        // The records both databases hold, to merge. SQLite cannot know which side is smaller
        // (no statistics on an attached database), and it chose to walk the source: on a flow-1
        // move into a new, empty database that read every source page once more than the copy
        // below does (measured: the move took 1.8× a bare INSERT … SELECT). CROSS JOIN fixes the
        // loop order, so the smaller table is walked and the other probed by primary key.
        const count = async (table: string): Promise<number> => (await tx.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))[0]?.n ?? 0;
        const targetSmaller = (await count('main.records')) <= (await count(`${ALIAS}.records`));
        const both = await tx.query<{ source: string; target: string }>(
          targetSmaller
            ? `SELECT s.doc AS source, m.doc AS target FROM main.records m CROSS JOIN ${ALIAS}.records s ON s.id = m.id WHERE 1 = 1${f.sql}`
            : `SELECT s.doc AS source, m.doc AS target FROM ${ALIAS}.records s CROSS JOIN main.records m ON m.id = s.id WHERE 1 = 1${f.sql}`,
          f.params,
        );
        for (const row of both) {
          const merged = mergeRecords(recordFromDoc(row.target), recordFromDoc(row.source));
          if (JSON.stringify(merged) !== row.target) await putRecord(tx, merged);
        }
        const seq = await nextLocalSeq(tx);
        const columns = RECORD_COLUMNS.map((c) => (c === 'local_seq' ? '? AS local_seq' : `s.${c}`)).join(', ');
        const inserted = await tx.execute(
          `INSERT INTO main.records (${RECORD_COLUMNS.join(', ')}) SELECT ${columns} FROM ${ALIAS}.records s
           WHERE NOT EXISTS (SELECT 1 FROM main.records m WHERE m.id = s.id)${f.sql}`,
          [seq, ...f.params],
        );
        records = both.length + inserted;
        const fp = userFilter('r');
        await tx.execute(
          `INSERT OR IGNORE INTO main.photo_files (photo_id, record_id, sha256, size, type)
           SELECT p.photo_id, p.record_id, p.sha256, p.size, p.type FROM ${ALIAS}.photo_files p CROSS JOIN ${ALIAS}.records r ON r.id = p.record_id
           WHERE p.photo_id NOT IN (SELECT value FROM json_each(?))${fp.sql}`,
          [JSON.stringify(skipped), ...fp.params],
        );
        if (sourceVersion >= 2) await carrySyncState(tx, byUser ? (m.username as string) : undefined);
        // The device clock must stay ahead of every copied timestamp.
        const sourceClock = (await tx.query<{ value: string }>(`SELECT value FROM ${ALIAS}.meta WHERE key = 'clock'`))[0]?.value;
        const targetClock = await readMeta(tx, 'clock');
        if (sourceClock !== undefined && (targetClock === undefined || sourceClock > targetClock)) await writeMeta(tx, 'clock', sourceClock);
        await tx.execute('INSERT OR REPLACE INTO main.merged_sources (key_id, op, merged_at) VALUES (?, ?, ?)', [
          m.fromKeyId,
          byUser ? `move:${m.username as string}` : 'merge',
          new Date().toISOString(),
        ]);
        await event('records-copy-uncommitted');
      }));
    }
    await event('records-copied');
    result = { records, photos: copied };

    // Step 3: the source's photo files (all of a merged database's; the moved user's on a move).
    for (const p of photos) await ctx.fs.remove(photoPath(m.fromKey, p.photo_id));
    // And the files of photo saves a kill interrupted in the source (schema v4): once the source
    // is gone, no login could tell them from another database's files.
    if (sourceVersion >= 4) {
      const orphans = await target.query<{ photo_id: string }>(orphanPendingPhotosSql(ALIAS));
      for (const o of orphans) await ctx.fs.remove(photoPath(m.fromKey, o.photo_id));
      if (orphans.length > 0) {
        await target.transaction((tx) =>
          tx.execute(`DELETE FROM ${ALIAS}.photo_files_pending WHERE photo_id IN (SELECT value FROM json_each(?))`, [JSON.stringify(orphans.map((o) => o.photo_id))]),
        );
      }
    }
    await event('source-photos-deleted');

    // Step 4 (move): the moved rows leave the source.
    if (byUser && hasSchema) {
      await target.transaction(async (tx) => {
        const f = userFilter('r');
        await tx.execute(`DELETE FROM ${ALIAS}.photo_files WHERE record_id IN (SELECT r.id FROM ${ALIAS}.records r WHERE 1 = 1${f.sql})`, f.params);
        await tx.execute(`DELETE FROM ${ALIAS}.records WHERE created_by = ?`, [m.username as string]);
      });
      await event('source-records-deleted');
    }
  } finally {
    await target.detach(ALIAS);
  }
  // Step 5 (merge): the source database goes, with its side files.
  if (!byUser) {
    await ctx.storage.remove(m.fromName);
    await event('source-deleted');
  }
  return result;
}

/**
 * Carries the source's per-server sync state (schema v2) into the target, inside the records
 * transaction, after the records were copied or merged (issue 5: a phone whose losing database
 * was merged must not push or pull everything again).
 *
 * - `server_acks`: a server that held a source record exactly as the target now holds it (the
 *   source row was not pending there, and the merged document is the source's) acknowledges the
 *   target row at its new `local_seq`; one that held an older or different version keeps a stale
 *   acknowledgement (0: pending, but known to hold the record, so its photos may go up). Never
 *   moves an acknowledgement of the target back (max).
 * - `photo_acks`: photos of the carried records a server holds (photo ids are random and bound to
 *   their SHA-256 on the record, so "the server holds it" does not depend on the database).
 * - `checkpoints` (merge only): for a server the target never pulled from, the source's
 *   checkpoint: everything the server sent up to it is in the source, hence now in the target. A
 *   server both pulled from keeps the target's (checkpoints are opaque, so the two cannot be
 *   compared; the target's is always safe, at worst some records come again and merge to
 *   nothing). A move carries none: the source keeps the other users' records.
 * - `server_roles`: the newer of the two per server and user (a move: the moved user's only).
 *
 * Idempotent: running it again after a crash computes the same rows.
 */
async function carrySyncState(tx: SqlExecutor, username: string | undefined): Promise<void> {
  const f = username === undefined ? { sql: '', params: [] as SqlValue[] } : { sql: ' AND s.created_by = ?', params: [username] as SqlValue[] };
  // CROSS JOIN: walk the acknowledgements and probe the records by primary key; SQLite would
  // otherwise walk the user's records in the source (all of them, even with no acknowledgement).
  await tx.execute(
    `INSERT INTO main.server_acks (server_id, record_id, local_seq_acked)
     SELECT a.server_id, a.record_id, CASE WHEN a.local_seq_acked >= s.local_seq AND m.doc = s.doc THEN m.local_seq ELSE 0 END
     FROM ${ALIAS}.server_acks a CROSS JOIN ${ALIAS}.records s ON s.id = a.record_id CROSS JOIN main.records m ON m.id = s.id
     WHERE 1 = 1${f.sql}
     ON CONFLICT (server_id, record_id) DO UPDATE SET local_seq_acked = max(local_seq_acked, excluded.local_seq_acked)`,
    f.params,
  );
  await tx.execute(
    `INSERT OR IGNORE INTO main.photo_acks (server_id, photo_id)
     SELECT p.server_id, p.photo_id FROM ${ALIAS}.photo_acks p
     WHERE EXISTS (SELECT 1 FROM ${ALIAS}.photo_files pf JOIN ${ALIAS}.records s ON s.id = pf.record_id WHERE pf.photo_id = p.photo_id${f.sql})`,
    f.params,
  );
  if (username === undefined) {
    await tx.execute(
      `INSERT INTO main.checkpoints (server_id, checkpoint, updated_at, last_sync_at)
       SELECT c.server_id, c.checkpoint, c.updated_at, c.last_sync_at FROM ${ALIAS}.checkpoints c WHERE 1 = 1
       ON CONFLICT (server_id) DO UPDATE SET
         checkpoint = coalesce(checkpoint, excluded.checkpoint),
         updated_at = CASE WHEN checkpoint IS NULL THEN excluded.updated_at ELSE updated_at END`,
    );
  }
  await tx.execute(
    `INSERT INTO main.server_roles (server_id, username, role, seen_at)
     SELECT r.server_id, r.username, r.role, r.seen_at FROM ${ALIAS}.server_roles r WHERE 1 = 1${username === undefined ? '' : ' AND r.username = ?'}
     ON CONFLICT (server_id, username) DO UPDATE SET role = excluded.role, seen_at = excluded.seen_at WHERE excluded.seen_at > seen_at`,
    username === undefined ? [] : [username],
  );
}

/** Number of records left in a database (to decide whether an emptied source can be deleted). */
export async function countRecords(db: StorageHandle): Promise<number> {
  const rows = await db.query<{ n: number }>('SELECT count(*) AS n FROM records');
  return Number(rows[0]?.n ?? 0);
}
