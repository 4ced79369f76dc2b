import type { PhotoRef, Role } from '@fieldvault/protocol';
import { recordFromDoc } from './record-store.js';
import type { SqlExecutor, SqlValue } from './storage-adapter.js';

/*
 * The per-server sync state of one device database (schema v2, see vault-schema.ts): what each
 * server acknowledged (`server_acks`, `photo_acks`), where its pull stands (`checkpoints`) and the
 * user's role there (`server_roles`). Every query names the server: nothing acknowledged by A
 * counts for B, which is how a phone relays records between servers.
 */

/** A record this server has not acknowledged, as stored. */
export interface PendingRow {
  readonly id: string;
  readonly local_seq: number;
  readonly doc: string;
  /** 1 when this server never acknowledged any version of the record (it most likely lacks it), else 0. */
  readonly unacked: number;
}

/** A photo to upload: its file is on this device and the server is not known to hold it. */
export interface PhotoUp {
  readonly recordId: string;
  readonly photoId: string;
  readonly ref: PhotoRef;
}

/** A photo to download: a record references it and its file is not on this device. */
export type PhotoDown = PhotoUp;

/** What a server has not acknowledged yet. */
export interface PendingCounts {
  /** Records changed on this device (or received from another server) since this server last acknowledged them. */
  readonly records: number;
  /** Photos whose file is on this device and that this server is not known to hold. */
  readonly photos: number;
}

const PENDING = `FROM records r LEFT JOIN server_acks a ON a.server_id = ? AND a.record_id = r.id
  WHERE (a.local_seq_acked IS NULL OR a.local_seq_acked < r.local_seq)`;

/**
 * One page of pending records (parameters: server id, after-seq, after-id, up-to seq, limit). A
 * row-value range on the (local_seq, id) index of schema v3: each page reads its own rows only,
 * already in order. (An OR of two ranges, as before, read and sorted every row after `after`:
 * ≈ 105 000 decrypted rows for a 10 000-record push.) Exported for the query-plan test.
 */
export const PENDING_PAGE_SQL = `SELECT r.id, r.local_seq, r.doc, a.local_seq_acked IS NULL AS unacked ${PENDING} AND (r.local_seq, r.id) > (?, ?) AND r.local_seq <= ?
  ORDER BY r.local_seq, r.id LIMIT ?`;

/** The photo's current ref on a stored record, or undefined when it has none or it was removed. */
function liveRef(doc: string, photoId: string): PhotoRef | undefined {
  const record = recordFromDoc(doc);
  const ref = Object.hasOwn(record.photos, photoId) ? record.photos[photoId] : undefined;
  return ref === undefined || ref.removedAt !== undefined ? undefined : ref;
}

/** The sync state of one database with one server. */
export class ServerSyncState {
  readonly #db: SqlExecutor;
  readonly serverId: string;

  constructor(db: SqlExecutor, serverId: string) {
    this.#db = db;
    this.serverId = serverId;
  }

  /** The newest `local_seq` in the database (a push works up to it, so edits made meanwhile wait for the next sync). */
  async maxLocalSeq(): Promise<number> {
    const rows = await this.#db.query<{ n: number | null }>('SELECT max(local_seq) AS n FROM records');
    return Number(rows[0]?.n ?? 0);
  }

  /** Count and UTF-8 size of the records pending for this server, up to `upTo`. */
  async pendingTotals(upTo: number): Promise<{ records: number; bytes: number }> {
    const rows = await this.#db.query<{ n: number; bytes: number | null }>(
      `SELECT count(*) AS n, sum(length(CAST(r.doc AS BLOB))) AS bytes ${PENDING} AND r.local_seq <= ?`,
      [this.serverId, upTo],
    );
    return { records: Number(rows[0]?.n ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
  }

  /**
   * The next pending records after `after` in (`local_seq`, `id`) order, up to `upTo`. Keyed on
   * both: a migration copies many rows under one `local_seq`.
   */
  async pendingPage(after: { readonly seq: number; readonly id: string }, upTo: number, limit: number): Promise<PendingRow[]> {
    return this.#db.query<PendingRow & Record<string, SqlValue>>(PENDING_PAGE_SQL, [this.serverId, after.seq, after.id, upTo, limit]);
  }

  /** Records that the server holds the record as it was at `localSeq` (never moves an acknowledgement back). */
  async ack(tx: SqlExecutor, recordId: string, localSeq: number): Promise<void> {
    await tx.execute(
      `INSERT INTO server_acks (server_id, record_id, local_seq_acked) VALUES (?, ?, ?)
       ON CONFLICT (server_id, record_id) DO UPDATE SET local_seq_acked = max(local_seq_acked, excluded.local_seq_acked)`,
      [this.serverId, recordId, localSeq],
    );
  }

  /** True when the server acknowledged some version of the record. */
  async hasRecord(recordId: string): Promise<boolean> {
    const rows = await this.#db.query('SELECT 1 AS x FROM server_acks WHERE server_id = ? AND record_id = ?', [this.serverId, recordId]);
    return rows.length > 0;
  }

  /** Records that the server holds the photo. */
  async ackPhoto(tx: SqlExecutor, photoId: string): Promise<void> {
    await tx.execute('INSERT OR IGNORE INTO photo_acks (server_id, photo_id) VALUES (?, ?)', [this.serverId, photoId]);
  }

  /** The pull checkpoint of this server, undefined before the first committed page. */
  async checkpoint(): Promise<string | undefined> {
    const rows = await this.#db.query<{ checkpoint: string | null }>('SELECT checkpoint FROM checkpoints WHERE server_id = ?', [this.serverId]);
    return rows[0]?.checkpoint ?? undefined;
  }

  /** Moves the checkpoint; call in the transaction that commits the page it follows. */
  async setCheckpoint(tx: SqlExecutor, checkpoint: string, at: string): Promise<void> {
    await tx.execute(
      `INSERT INTO checkpoints (server_id, checkpoint, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (server_id) DO UPDATE SET checkpoint = excluded.checkpoint, updated_at = excluded.updated_at`,
      [this.serverId, checkpoint, at],
    );
  }

  /**
   * Forgets what this server acknowledged and where its pull stood (records and photos pending
   * again, the next pull from the start): for a server that no longer knows this phone's
   * checkpoint, e.g. one restored from a backup, which may lack what it acknowledged since.
   */
  async forget(tx: SqlExecutor): Promise<void> {
    await tx.execute('DELETE FROM server_acks WHERE server_id = ?', [this.serverId]);
    await tx.execute('DELETE FROM photo_acks WHERE server_id = ?', [this.serverId]);
    await tx.execute('UPDATE checkpoints SET checkpoint = NULL WHERE server_id = ?', [this.serverId]);
  }

  /** Notes a sync that ran to its end. */
  async markSynced(at: string): Promise<void> {
    await this.#db.execute(
      `INSERT INTO checkpoints (server_id, checkpoint, updated_at, last_sync_at) VALUES (?, NULL, ?, ?)
       ON CONFLICT (server_id) DO UPDATE SET last_sync_at = excluded.last_sync_at`,
      [this.serverId, at, at],
    );
  }

  /** Photos on this device that the server is not known to hold, with their current refs (removed ones left out). */
  async photosToUpload(): Promise<PhotoUp[]> {
    const rows = await this.#db.query<{ photo_id: string; record_id: string; doc: string }>(
      `SELECT f.photo_id, f.record_id, r.doc FROM photo_files f JOIN records r ON r.id = f.record_id
       WHERE NOT EXISTS (SELECT 1 FROM photo_acks p WHERE p.server_id = ? AND p.photo_id = f.photo_id)
       ORDER BY r.local_seq, f.photo_id`,
      [this.serverId],
    );
    const out: PhotoUp[] = [];
    for (const row of rows) {
      const ref = liveRef(row.doc, row.photo_id);
      if (ref !== undefined) out.push({ recordId: row.record_id, photoId: row.photo_id, ref });
    }
    return out;
  }

  /** Photos that records reference (not removed) and whose file is not on this device. */
  async photosToDownload(): Promise<PhotoDown[]> {
    const rows = await this.#db.query<{ record_id: string; photo_id: string; ref: string }>(
      `SELECT r.id AS record_id, p.key AS photo_id, p.value AS ref FROM records r, json_each(r.doc, '$.photos') p
       WHERE json_extract(p.value, '$.removedAt') IS NULL
         AND NOT EXISTS (SELECT 1 FROM photo_files f WHERE f.photo_id = p.key)
       ORDER BY r.local_seq, p.key`,
    );
    return rows.map((row) => ({ recordId: row.record_id, photoId: row.photo_id, ref: JSON.parse(row.ref) as PhotoRef }));
  }

  /** What this server has not acknowledged. */
  async pendingCounts(): Promise<PendingCounts> {
    const records = await this.#db.query<{ n: number }>(`SELECT count(*) AS n ${PENDING}`, [this.serverId]);
    return { records: Number(records[0]?.n ?? 0), photos: (await this.photosToUpload()).length };
  }

  /** When the last complete sync with this server ended (ISO), or null. */
  async lastSyncAt(): Promise<string | null> {
    const rows = await this.#db.query<{ last_sync_at: string | null }>('SELECT last_sync_at FROM checkpoints WHERE server_id = ?', [this.serverId]);
    return rows[0]?.last_sync_at ?? null;
  }
}

/** Every server this database has sync state or a remembered role for, sorted. */
export async function knownServerIds(db: SqlExecutor): Promise<string[]> {
  const rows = await db.query<{ server_id: string }>(
    `SELECT server_id FROM checkpoints UNION SELECT server_id FROM server_roles
     UNION SELECT DISTINCT server_id FROM server_acks UNION SELECT DISTINCT server_id FROM photo_acks ORDER BY server_id`,
  );
  return rows.map((r) => r.server_id);
}

/**
 * Every server this database has synced with (a checkpoint or an acknowledgement), sorted. Unlike
 * `knownServerIds`, a server the user only logged in to does not count: it never held these
 * records, so nothing is "left" for it.
 */
export async function syncedServerIds(db: SqlExecutor): Promise<string[]> {
  const rows = await db.query<{ server_id: string }>(
    `SELECT server_id FROM checkpoints UNION SELECT DISTINCT server_id FROM server_acks
     UNION SELECT DISTINCT server_id FROM photo_acks ORDER BY server_id`,
  );
  return rows.map((r) => r.server_id);
}

/** Remembers `username`'s role on `serverId` (written at each online login). */
export async function saveServerRole(db: SqlExecutor, serverId: string, username: string, role: Role, at: string): Promise<void> {
  await db.execute(
    `INSERT INTO server_roles (server_id, username, role, seen_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (server_id, username) DO UPDATE SET role = excluded.role, seen_at = excluded.seen_at`,
    [serverId, username, role, at],
  );
}

/** The roles `username` had at their last online login to each server, by server id. */
export async function serverRolesOf(db: SqlExecutor, username: string): Promise<Map<string, Role>> {
  const rows = await db.query<{ server_id: string; role: string }>('SELECT server_id, role FROM server_roles WHERE username = ?', [username]);
  return new Map(rows.map((r) => [r.server_id, r.role as Role]));
}
