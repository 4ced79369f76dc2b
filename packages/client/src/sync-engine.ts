import {
  DEFAULT_MAX_SKEW_MS,
  FieldvaultError,
  NODE_ID_PATTERN,
  PULL_DEFAULT_LIMIT,
  PULL_MAX_LIMIT,
  PUSH_MAX_RECORDS_CEILING,
  isFieldvaultError,
  mergeRecords,
  needsReview,
  photoIdOfField,
  type ChildRecord,
  type PullResponse,
  type PushResult,
  type PushResponse,
  type SyncDeviceStatus,
} from '@fieldvault/protocol';
import type { Logger } from './logger.js';
import type { PhotoStore } from './photo-store.js';
import { putRecordAt, recordFromDoc, recordTimestamps, type RecordStore } from './record-store.js';
import { DEFAULT_RETRY, throwIfCancelled, withRetry, type RetryOptions } from './retry.js';
import { withBulkWrites, type SqlExecutor, type StorageHandle } from './storage-adapter.js';
import { ServerSyncState, type PendingRow, type PhotoUp } from './sync-state.js';
import type { Transport } from './transport.js';
import { takeLocalSeqs } from './vault-schema.js';

/*
 * The sync engine (DESIGN.md §4): one run against one server, on the database the session sees.
 *
 *   push         records this server has not acknowledged (per server: `server_acks`), in
 *                batches (≤ 500 records, ≤ 4 MiB by default, the server's limits). The ok results
 *                of a batch are acknowledged in one local transaction after the answer; a record
 *                refused by the server is reported in `failed` and stays pending (it is tried
 *                again at the next sync, once per sync: the push walks `local_seq` forward).
 *                Records this server never acknowledged are named (`unacknowledged`), so the
 *                server writes them without reading first; a server that refuses the field gets
 *                the batch again without it.
 *   pull         pages from this server's checkpoint. Each page: the device clock takes in the
 *                page's newest timestamp, measured against the server's clock of the same answer
 *                (so later local edits are newer, even on a phone whose clock runs behind), then ONE transaction
 *                merges every record (protocol `mergeRecords`), acknowledges the ones the server
 *                already holds exactly, and moves the checkpoint. A crash or a cancellation
 *                leaves the checkpoint at the last committed page. Pages 2…n run in the
 *                adapter's `bulkWrites` (a cheaper journal for many large commits).
 *   photos-up    photos whose file is on the phone and whose record the server has, not yet
 *                known to the server: decrypted (verified) from the vault and uploaded as plain
 *                bytes over the verified TLS connection; resumable.
 *   photos-down  photos that records reference and the phone lacks: downloaded, checked against
 *                the ref (size, SHA-256, type), encrypted into the vault.
 *
 * Push and pull overlap their work: up to two batches are between sent and acknowledged, and the
 * next pull page is fetched while the phone commits the current one (acknowledgements, progress
 * and checkpoints still follow batch and page order, each after its own answer).
 *
 * Requests are retried with exponential backoff on network, store and rate-limit failures
 * (`retry.ts`). A failure of the connection itself (after the retries), a bad response, an
 * invalid session or a cancellation ends the run with that error; what was committed stays.
 */

/**
 * A progress report. Within one phase `recordsDone` and `bytesDone` never go down, and neither do
 * the totals of push and the photo phases; pull's totals are estimates that may go down.
 */
export interface SyncProgress {
  readonly phase: 'push' | 'pull' | 'photos-up' | 'photos-down';
  /** Records (photos, in the photo phases) done in this phase. */
  readonly recordsDone: number;
  /**
   * Records (photos) this phase will handle. Known at the start for push and the photo phases.
   * For pull: after each page, the records received so far plus the server's estimate of what
   * follows (`remaining` of the page: an upper bound, as it counts changes this user may not read),
   * so it may go down as the pull goes on; it equals `recordsDone` at the end, and all along when
   * the server gives no estimate.
   */
  readonly recordsTotal: number;
  /** Bytes done: record JSON for push and pull, photo bytes (sent or received, as they go) for photos. */
  readonly bytesDone: number;
  /** Bytes this phase will move; for pull, estimated from the average record so far. */
  readonly bytesTotal: number;
}

/** Batch sizes; the defaults are the server's default limits. */
export interface SyncBatchOptions {
  /** Most records per push (default 500). */
  readonly pushRecords?: number;
  /** Most bytes per push body (default 4 MiB less 1 KiB). */
  readonly pushBytes?: number;
  /** Records asked for per pull page (default 500). */
  readonly pullRecords?: number;
}

/**
 * At most this many push batches failed with INTERNAL_ERROR per sync before it ends with that
 * error: enough to single out a few records at fault in batches of 500 (≈ 9 failed requests each).
 */
export const MAX_INTERNAL_ERROR_BATCHES = 32;

export interface SyncOptions {
  /** The server: its `serverId` must be one the session logged in to online. */
  readonly transport: Transport;
  /** Progress of each phase (for a progress bar). Exceptions it throws are logged and ignored. */
  readonly onProgress?: (progress: SyncProgress) => void;
  /** Cancels the sync (SYNC_CANCELLED); everything committed before stays, the next sync continues. */
  readonly signal?: AbortSignal;
  /** Retry of each request on network, store and rate-limit failures; default 5 tries from 500 ms. */
  readonly retry?: RetryOptions;
  /** Batch sizes (tests, slow links); default the server's limits. */
  readonly batch?: SyncBatchOptions;
  /**
   * `'both'` (default): push, pull, photos up and down. `'send'`: only what this phone has for the
   * server — push and photo uploads — for a short or metered connection where getting the field
   * data off the phone comes first; the next full sync pulls from where the last pull stopped.
   */
  readonly direction?: 'both' | 'send';
  /**
   * The ids of the servers this app still syncs with; a retirement wipe waits only for those that
   * this database synced with, plus the retiring server. Default: every server this database ever
   * synced with. Give it when the app lets its user drop a server (or a server is decommissioned):
   * otherwise records pending for a server the phone will never reach again hold the wipe forever.
   */
  readonly servers?: readonly string[];
}

/**
 * Why a retired device was not wiped after its sync (`SyncSummary.retirementHold`). The wipe
 * happens at a later sync with the retiring server once every list here is empty.
 */
export interface RetirementHold {
  /**
   * Servers this database has synced with (the retiring one included; with `SyncOptions.servers`,
   * only those listed there) that lack some of its records or photos.
   */
  readonly servers: ReadonlyArray<{ readonly serverId: string; readonly records: number; readonly photos: number }>;
  /**
   * Other databases on the phone (another user's unverified records, a database not yet merged
   * into this one): this session cannot open them, so it cannot tell whether they hold records no
   * server has. They go when their user logs in online and syncs, or with `Device.wipe()`.
   */
  readonly otherDatabases: number;
}

/** A record the server refused in one sync (see {@link SyncSummary.failed}). */
export interface SyncFailure {
  readonly id: string;
  readonly code: string;
  /** The record's photo the refusal is about, when the server named one. */
  readonly photoId?: string;
}

/** What one sync did. */
export interface SyncSummary {
  readonly serverId: string;
  /** Records the server accepted (stored, or already held). */
  readonly pushed: number;
  /**
   * Records received from the server (merged into the phone's database), each page's records all
   * counted: this includes the phone's own pushed versions the server sends back, and records the
   * phone held already in the same (or a newer) version. For "what changed here", see `pulledChanged`.
   */
  readonly pulled: number;
  /**
   * Of the records received, how many were new on this phone or changed it: a record whose local
   * version already held everything the server sent (this phone's own push coming back, or a
   * record relayed earlier through another server) is not counted. Each record counts once, however
   * many pages named it.
   */
  readonly pulledChanged: number;
  /**
   * Records the server refused, with its code; they stay pending and are tried again next sync.
   * `photoId` names the record's photo at fault when the server said which (PHOTO_ID_TAKEN: remove
   * that photo and add the image again; PHOTO_REF_CHANGED).
   */
  readonly failed: ReadonlyArray<SyncFailure>;
  /** Records pushed or pulled in this sync that have a concurrent edit waiting for a supervisor. */
  readonly conflicts: number;
  readonly photos: {
    /** Photos this server confirmed holding in this sync (it had some of them already: see `alreadyOnServer`). */
    readonly uploaded: number;
    /**
     * Of `uploaded`, the photos the server already held whole, so no byte was sent: another phone
     * brought them, or this phone's earlier upload was stored but its answer was lost (field audit F2).
     */
    readonly alreadyOnServer: number;
    readonly downloaded: number;
    readonly failed: ReadonlyArray<{ readonly photoId: string; readonly code: string }>;
  };
  /** The device's state on the server: `retired` means this was the final sync. */
  readonly deviceStatus: SyncDeviceStatus;
  /** True when the device was retired and, everything being pushed, the SDK wiped it after this sync. */
  readonly wiped: boolean;
  /**
   * Set when the server reports the device retired but the SDK did not wipe it, because something
   * on the phone is not on a server yet: what it waits for. Absent otherwise.
   */
  readonly retirementHold?: RetirementHold;
  /**
   * Set when this device's clock was more than the allowed skew (5 minutes) behind the server's
   * (positive ms) or ahead of it (negative) at the last pull page: the app should ask the user to
   * set the date and time. Sync still works (the pulled versions are taken in relative to the
   * server's clock); a clock ahead makes the server refuse the edits it dates ahead (HLC_TOO_FAR_AHEAD).
   */
  readonly clockOffsetMs?: number;
}

/** What the engine needs from the session. */
export interface SyncContext {
  readonly db: StorageHandle;
  readonly records: RecordStore;
  readonly photos: PhotoStore;
  readonly token: string;
  readonly logger: Logger;
  readonly now: () => number;
  /** Photos larger than this are not downloaded (PHOTO_TOO_LARGE in `photos.failed`). */
  readonly photoMaxBytes: number;
}

export const DEFAULT_PUSH_RECORDS = 500;
export const DEFAULT_PUSH_BYTES = 4 * 1024 * 1024 - 1024;
/**
 * Push batches (pull pages) under way at once: one on the wire or in the server while the phone
 * commits the other. Two are enough to keep phone, server and store busy; more would only queue.
 */
const PIPELINE_DEPTH = 2;

/** Codes that end the whole sync rather than one record or photo. */
function endsSync(err: unknown): boolean {
  if (!isFieldvaultError(err)) return true;
  const code = err.code;
  return (
    code.startsWith('TRANSPORT_') ||
    code.startsWith('STORE_') ||
    (code.startsWith('VAULT_') && code !== 'VAULT_RECORD_NOT_FOUND') ||
    code.startsWith('DEVICE_') ||
    code === 'SYNC_CANCELLED' ||
    code === 'SESSION_INVALID' ||
    code === 'RATE_LIMITED' ||
    code === 'INTERNAL_ERROR'
  );
}

function codeOf(err: unknown): string {
  return isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR';
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** One turn of the event loop (pending socket writes and reads go out before more synchronous work). */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Rows read per statement (well under SQLite's limit of bound parameters). */
/** A photo's byte progress is reported in steps of at least this much (and at its end). */
const PHOTO_PROGRESS_STEP = 65_536;

/**
 * The transport's byte callback for one photo, passed on to `report` in steps of at least
 * {@link PHOTO_PROGRESS_STEP}, never going down (a resumed upload may start below what was sent
 * before the break) and never past the photo's size.
 */
function photoBytes(size: number, report: (bytes: number) => void): (bytes: number) => void {
  let told = 0;
  return (bytes) => {
    const now = Math.min(size, bytes);
    if (now <= told || (now - told < PHOTO_PROGRESS_STEP && now < size)) return;
    told = now;
    report(now);
  };
}

const ROWS_PER_READ = 500;

/** The stored `doc` and `local_seq` of each of `ids` that has a row. */
async function storedRows(tx: SqlExecutor, ids: readonly string[]): Promise<Map<string, { doc: string; local_seq: number }>> {
  const out = new Map<string, { doc: string; local_seq: number }>();
  for (let i = 0; i < ids.length; i += ROWS_PER_READ) {
    const chunk = ids.slice(i, i + ROWS_PER_READ);
    const rows = await tx.query<{ id: string; doc: string; local_seq: number }>(
      `SELECT id, doc, local_seq FROM records WHERE id IN (${chunk.map(() => '?').join(', ')})`,
      chunk,
    );
    for (const row of rows) out.set(row.id, { doc: row.doc, local_seq: row.local_seq });
  }
  return out;
}

/** The newest timestamp of a page. */
function newestTimestamp(records: readonly ChildRecord[]): string | undefined {
  let newest: string | undefined;
  for (const r of records) for (const ts of recordTimestamps(r)) if (newest === undefined || ts > newest) newest = ts;
  return newest;
}

/** Splits rows into push bodies of at most `maxBytes` (a record over the limit goes alone; the server answers for it). */
function byBytes(rows: readonly PendingRow[], maxBytes: number): PendingRow[][] {
  const out: PendingRow[][] = [];
  let current: PendingRow[] = [];
  let size = 16;
  for (const row of rows) {
    const n = utf8Length(row.doc) + 1;
    if (current.length > 0 && size + n > maxBytes) {
      out.push(current);
      current = [];
      size = 16;
    }
    current.push(row);
    size += n;
  }
  if (current.length > 0) out.push(current);
  return out;
}

function intIn(value: unknown, min: number, max: number): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/**
 * Checks sync options at the trust boundary of the public API.
 * @throws INPUT_INVALID listing every malformed option.
 */
export function checkSyncOptions(options: SyncOptions): void {
  const problems: string[] = [];
  if (typeof options !== 'object' || options === null) {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'options: { transport, … }', details: { field: 'options' } });
  }
  const t = options.transport as Partial<Transport> | undefined;
  const methods = ['push', 'pull', 'uploadPhoto', 'downloadPhoto'] as const;
  if (typeof t !== 'object' || t === null || methods.some((m) => typeof t[m] !== 'function')) {
    problems.push('transport: a Transport with push, pull, uploadPhoto and downloadPhoto (createHttpTransport)');
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') problems.push('onProgress: a function');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) problems.push('signal: an AbortSignal');
  if (options.retry !== undefined) {
    if (!intIn(options.retry.attempts, 1, 100)) problems.push('retry.attempts: an integer in 1 … 100');
    if (!intIn(options.retry.baseDelayMs, 0, 600_000)) problems.push('retry.baseDelayMs: an integer in 0 … 600000');
  }
  if (options.direction !== undefined && options.direction !== 'both' && options.direction !== 'send') problems.push("direction: 'both' or 'send'");
  if (options.servers !== undefined && (!Array.isArray(options.servers) || !options.servers.every((id) => typeof id === 'string' && NODE_ID_PATTERN.test(id)))) {
    problems.push('servers: an array of server node ids');
  }
  const b = options.batch;
  if (b !== undefined) {
    if (b.pushRecords !== undefined && !intIn(b.pushRecords, 1, PUSH_MAX_RECORDS_CEILING)) problems.push(`batch.pushRecords: an integer in 1 … ${PUSH_MAX_RECORDS_CEILING}`);
    if (b.pushBytes !== undefined && !intIn(b.pushBytes, 1_024, 67_108_864)) problems.push('batch.pushBytes: an integer in 1024 … 67108864');
    if (b.pullRecords !== undefined && !intIn(b.pullRecords, 1, PULL_MAX_LIMIT)) problems.push(`batch.pullRecords: an integer in 1 … ${PULL_MAX_LIMIT}`);
  }
  if (problems.length > 0) {
    throw new FieldvaultError('INPUT_INVALID', { detail: problems.join('; '), details: { field: problems[0]?.split(':')[0] ?? 'options' } });
  }
}

/**
 * Runs one sync (push, pull, photos up, photos down) with `options.transport`'s server. The
 * summary's `wiped` is always false here: retirement is handled by the session.
 * @throws TRANSPORT_UNREACHABLE, STORE_UNAVAILABLE, RATE_LIMITED after the retries; TRANSPORT_BAD_RESPONSE,
 * TRANSPORT_TLS_UNTRUSTED, SESSION_INVALID, DEVICE_BLACKLISTED, SYNC_CHECKPOINT_INVALID (only when even a sync from the start is refused: a refused checkpoint makes it forget the server's state and sync once more), HLC_TOO_FAR_AHEAD
 * (a pulled version dated beyond the allowed skew of both this device's clock and the server's), SYNC_CANCELLED, VAULT_*.
 */
export async function runSync(ctx: SyncContext, options: SyncOptions): Promise<SyncSummary> {
  try {
    return await syncOnce(ctx, options);
  } catch (err) {
    if (codeOf(err) !== 'SYNC_CHECKPOINT_INVALID') throw err;
    const state = new ServerSyncState(ctx.db, options.transport.serverId);
    // Refused from the start too: nothing of ours to forget, and trying again would change nothing.
    if ((await state.checkpoint()) === undefined) throw err;
    // The server does not know the checkpoint it gave this phone: it was restored from a backup,
    // or its id or secrets were reset. It may lack records and photos it acknowledged since, so
    // everything goes again (the server merges, so nothing is duplicated), and the pull restarts.
    ctx.logger.warn({ serverId: state.serverId }, 'the server refused its own checkpoint (restored or reset?): syncing everything again from the start');
    await ctx.db.transaction(async (tx) => state.forget(tx));
    return syncOnce(ctx, options);
  }
}

/** One sync as {@link runSync} describes, from this server's acknowledgements and checkpoint as they are. */
async function syncOnce(ctx: SyncContext, options: SyncOptions): Promise<SyncSummary> {
  const { transport, signal } = options;
  const serverId = transport.serverId;
  const retry = options.retry ?? DEFAULT_RETRY;
  const pushRecords = options.batch?.pushRecords ?? DEFAULT_PUSH_RECORDS;
  const pushBytes = options.batch?.pushBytes ?? DEFAULT_PUSH_BYTES;
  const pullRecords = options.batch?.pullRecords ?? PULL_DEFAULT_LIMIT;
  const receive = options.direction !== 'send';
  const state = new ServerSyncState(ctx.db, serverId);
  const log = ctx.logger;
  const started = ctx.now();
  const iso = (): string => new Date(ctx.now()).toISOString();

  let pushed = 0;
  let pulled = 0;
  /** Ids of pulled records whose merge wrote a new local version (distinct: a record may be on two pages). */
  const changedByPull = new Set<string>();
  const failed: SyncFailure[] = [];
  const failedIds = new Set<string>();
  const conflicted = new Set<string>();
  const photoFailed: Array<{ photoId: string; code: string }> = [];
  let uploaded = 0;
  let alreadyOnServer = 0;
  let downloaded = 0;
  let deviceStatus: SyncDeviceStatus = 'active';
  let clockOffsetMs: number | undefined;

  const emit = (progress: SyncProgress): void => {
    try {
      options.onProgress?.(progress);
    } catch (err) {
      log.warn({ serverId, code: codeOf(err) }, 'onProgress threw; ignored');
    }
  };
  const call = <T>(what: string, fn: () => Promise<T>, sig: AbortSignal | undefined = signal): Promise<T> =>
    withRetry(fn, retry, sig, ({ attempt, delayMs, code }) => log.info({ serverId, what, attempt, delayMs, code }, 'sync request failed; retrying'));
  const callOptions = (sig: AbortSignal | undefined): { signal?: AbortSignal } => (sig === undefined ? {} : { signal: sig });

  // ------------------------------------------------------------------------------------ push
  throwIfCancelled(signal);
  const upTo = await state.maxLocalSeq();
  const totals = await state.pendingTotals(upTo);
  let done = 0;
  let bytesDone = 0;
  emit({ phase: 'push', recordsDone: 0, recordsTotal: totals.records, bytesDone: 0, bytesTotal: totals.bytes });

  /** Commits the acknowledgements of one answered batch and counts it. */
  const acknowledge = async (batch: readonly PendingRow[], results: readonly PushResult[]): Promise<void> => {
    await ctx.db.transaction(async (tx) => {
      for (const [i, result] of results.entries()) {
        const row = batch[i] as PendingRow;
        if (result.status === 'ok') await state.ack(tx, row.id, row.local_seq);
      }
    });
    for (const [i, result] of results.entries()) {
      const row = batch[i] as PendingRow;
      if (result.status === 'ok') {
        pushed += 1;
        if ((result.conflicts ?? 0) > 0) conflicted.add(row.id);
      } else {
        const photoId = photoIdOfField(result.field);
        failed.push({ id: row.id, code: result.code ?? 'INTERNAL_ERROR', ...(photoId === undefined ? {} : { photoId }) });
        failedIds.add(row.id);
      }
    }
    done += batch.length;
    bytesDone += batch.reduce((n, row) => n + utf8Length(row.doc), 0);
    emit({ phase: 'push', recordsDone: done, recordsTotal: totals.records, bytesDone, bytesTotal: totals.bytes });
  };

  /** False once this server refused the `unacknowledged` hint (see PushBodySchema). */
  let sendHints = true;
  // Batches the server failed with INTERNAL_ERROR in this sync. Halving finds a record at fault in
  // about log2(batch) failed requests; a server that fails every push would otherwise be asked
  // about twice per pending record before the sync gives up.
  let internalErrors = 0;
  /**
   * Sends one batch, then, once the batch before it is acknowledged (`previous`), acknowledges
   * it: requests overlap, acknowledgements and progress stay in batch order and each follows its
   * own answer.
   */
  const pushBatch = async (batch: readonly PendingRow[], previous: Promise<void>, sig: AbortSignal | undefined): Promise<void> => {
    const records = batch.map((row) => recordFromDoc(row.doc));
    const unacknowledged = batch.flatMap((row, i) => (Number(row.unacked) === 1 ? [i] : []));
    const send = (hint: boolean): Promise<PushResponse> =>
      call('push', () => transport.push(ctx.token, hint ? { records, unacknowledged } : { records }, callOptions(sig)), sig);
    let res: PushResponse;
    try {
      const hint = sendHints && unacknowledged.length > 0;
      try {
        res = await send(hint);
      } catch (err) {
        // A server that predates the hint refuses the field: this batch and the rest go without it.
        if (!hint || !isFieldvaultError(err) || err.code !== 'INPUT_INVALID') throw err;
        sendHints = false;
        res = await send(false);
      }
    } catch (err) {
      // Halved until the record at fault stands alone, which then fails alone: the server's limits
      // are lower than ours (INPUT_TOO_LARGE), or one record makes the server fail the whole batch
      // (INTERNAL_ERROR, a status 500), which would otherwise end every sync before pull and photos.
      const code = isFieldvaultError(err) && (err.code === 'INPUT_TOO_LARGE' || err.code === 'INTERNAL_ERROR') ? err.code : undefined;
      if (code === undefined) throw err;
      if (code === 'INTERNAL_ERROR' && ++internalErrors > MAX_INTERNAL_ERROR_BATCHES) throw err;
      if (batch.length > 1) {
        const half = batch.length >> 1;
        await pushBatch(batch.slice(0, half), previous, sig);
        await pushBatch(batch.slice(half), Promise.resolve(), sig);
        return;
      }
      await previous;
      await acknowledge(batch, [{ id: (batch[0] as PendingRow).id, status: 'error', code }]);
      return;
    }
    // Outside the try above: a failure of the batch before this one is not this batch's to split.
    await previous;
    deviceStatus = res.deviceStatus;
    await acknowledge(batch, res.results);
  };

  {
    // Up to PIPELINE_DEPTH batches between sent and acknowledged, so the phone's SQLCipher work,
    // the server and its store overlap. On a failure the other requests are stopped and awaited:
    // the run ends with nothing of it still running.
    const stop = new AbortController();
    const sig = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
    const inFlight: Array<Promise<void>> = [];
    let previous: Promise<void> = Promise.resolve();
    let failure: { err: unknown } | undefined;
    try {
      for (let after = { seq: 0, id: '' }; ; ) {
        throwIfCancelled(signal);
        const rows = await state.pendingPage(after, upTo, pushRecords);
        const last = rows[rows.length - 1];
        if (last === undefined) break;
        after = { seq: last.local_seq, id: last.id };
        for (const batch of byBytes(rows, pushBytes)) {
          while (inFlight.length >= PIPELINE_DEPTH) await inFlight.shift();
          if (failure !== undefined) throw failure.err;
          throwIfCancelled(signal);
          const job = pushBatch(batch, previous, sig);
          // Seen at once (no unhandled rejection while an earlier batch is awaited), thrown in order.
          job.catch((err: unknown) => {
            failure ??= { err };
          });
          inFlight.push(job);
          previous = job;
          // The request goes out before the next page of pending rows is read (synchronous work).
          await yieldToIo();
        }
      }
      while (inFlight.length > 0) await inFlight.shift();
    } catch (err) {
      stop.abort();
      await Promise.allSettled(inFlight);
      throw err;
    }
  }
  if (failed.length > 0) log.warn({ serverId, failed: failed.length, codes: [...new Set(failed.map((f) => f.code))].join(',') }, 'records refused by the server');

  // ------------------------------------------------------------------------------------ pull
  let since = await state.checkpoint();
  let pullBytes = 0;
  if (receive) {
    emit({ phase: 'pull', recordsDone: 0, recordsTotal: 0, bytesDone: 0, bytesTotal: 0 });
    // Page n+1 is fetched while page n is committed. Checkpoints still move one committed page at
    // a time, in order; on a failure the request ahead is stopped and awaited, and writes nothing.
    const stop = new AbortController();
    const sig = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
    const fetchPage = (from: string | undefined): Promise<PullResponse> => {
      const page = call('pull', () => transport.pull(ctx.token, from === undefined ? { limit: pullRecords } : { since: from, limit: pullRecords }, callOptions(sig)), sig);
      page.catch(() => undefined);
      return page;
    };
    throwIfCancelled(signal);
    let next: Promise<PullResponse> | undefined = fetchPage(since);
    /** The next page, checked, with nothing written yet; the page after it is already asked for. */
    const receivePage = async (): Promise<PullResponse> => {
      const page: PullResponse = await (next as Promise<PullResponse>);
      next = undefined;
      throwIfCancelled(signal);
      deviceStatus = page.deviceStatus;
      if (page.more && page.checkpoint === since) {
        // The same position again would be asked for again, forever.
        throw new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail: 'the server announces more records but repeats its checkpoint' });
      }
      const newest = newestTimestamp(page.records);
      const offset = page.serverTime - ctx.now();
      clockOffsetMs = Math.abs(offset) > DEFAULT_MAX_SKEW_MS ? offset : undefined;
      // Before anything is written: a version too far ahead of both this device's clock and the
      // server's (a server breaking its own skew rule) stops the pull here. A device clock that runs
      // behind does not (issue 5): the server's clock vouches for the page.
      if (newest !== undefined) ctx.records.observe(newest, page.serverTime);
      if (page.more) {
        next = fetchPage(page.checkpoint);
        // Let the request leave before the commit: the commit's statements run without giving
        // the event loop a turn, so the server would otherwise wait for the commit to end.
        await yieldToIo();
      }
      return page;
    };
    /** Commits one page: its records, their acknowledgements and the checkpoint, in one transaction. */
    const commitPage = async (page: PullResponse): Promise<void> => {
      const removedFiles: string[] = [];
      let pageBytes = 0;
      let pageChanged: string[] = [];
      await ctx.db.transaction(async (tx) => {
        pageBytes = 0;
        // Reset with the transaction: an adapter may run the callback again after a rollback.
        pageChanged = [];
        // The page's stored rows in one read, and its write counter values in one take.
        const held = await storedRows(tx, page.records.map((r) => r.id));
        let nextSeq = await takeLocalSeqs(tx, page.records.length);
        for (const incoming of page.records) {
          const row = held.get(incoming.id);
          const merged = row === undefined ? incoming : mergeRecords(recordFromDoc(row.doc), incoming);
          const mergedJson = JSON.stringify(merged);
          // A new record is its own merge: one serialisation serves both comparisons and the byte count.
          const incomingJson = merged === incoming ? mergedJson : JSON.stringify(incoming);
          pageBytes += utf8Length(incomingJson);
          let seq: number;
          if (row === undefined || mergedJson !== row.doc) {
            seq = nextSeq;
            nextSeq += 1;
            await putRecordAt(tx, merged, seq, mergedJson);
            pageChanged.push(incoming.id);
            // A page naming one id twice (a server's bug) merges the second copy into the first.
            held.set(incoming.id, { doc: mergedJson, local_seq: seq });
          } else {
            seq = row.local_seq;
          }
          // The server holds exactly this: nothing of it is pending for this server.
          if (mergedJson === incomingJson) await state.ack(tx, incoming.id, seq);
          if (needsReview(merged)) conflicted.add(merged.id);
          for (const [photoId, ref] of Object.entries(merged.photos)) {
            if (ref.removedAt === undefined) continue;
            // Only this record's own photo: a record naming another record's photo id as removed
            // (a hostile or restored server) must not destroy that photo.
            if ((await tx.execute('DELETE FROM photo_files WHERE photo_id = ? AND record_id = ?', [photoId, merged.id])) > 0) {
              // Marked with the commit: a kill before the file is deleted leaves it to the next login.
              await ctx.photos.markForDeletion(tx, photoId);
              removedFiles.push(photoId);
            }
          }
        }
        await ctx.records.saveClock(tx);
        await state.setCheckpoint(tx, page.checkpoint, iso());
      });
      // After the commit: a crash before this leaves a pending row, and the next login deletes the file.
      for (const photoId of removedFiles) await ctx.photos.deleteFile(photoId);
      since = page.checkpoint;
      pulled += page.records.length;
      for (const id of pageChanged) changedByPull.add(id);
      pullBytes += pageBytes;
      // What is left is the server's estimate (an upper bound); bytes are guessed from the pages so far.
      const left = page.more ? (page.remaining ?? 0) : 0;
      emit({ phase: 'pull', recordsDone: pulled, recordsTotal: pulled + left, bytesDone: pullBytes, bytesTotal: pullBytes + Math.round(left * (pulled > 0 ? pullBytes / pulled : 0)) });
    };
    try {
      const first = await receivePage();
      await commitPage(first);
      if (first.more) {
        // Pages 2…n: many large commits, for which the adapter may use a cheaper journal
        // (StorageHandle.bulkWrites). Only for a pull of more than one page, and only once the
        // second page has passed its checks: a refused answer leaves every file as it was.
        const second = await receivePage();
        await withBulkWrites(ctx.db, async () => {
          for (let page = second; ; page = await receivePage()) {
            await commitPage(page);
            if (!page.more) break;
          }
        });
      }
    } catch (err) {
      stop.abort();
      if (next !== undefined) await next.catch(() => undefined);
      throw err;
    }
  }

  // ------------------------------------------------------------------------------- photos up
  throwIfCancelled(signal);
  const ups: PhotoUp[] = [];
  for (const p of await state.photosToUpload()) {
    // A record this server does not hold yet (refused, or never pushed) cannot take its photo.
    if (!failedIds.has(p.recordId) && (await state.hasRecord(p.recordId))) ups.push(p);
  }
  const upBytes = ups.reduce((n, p) => n + p.ref.size, 0);
  let upDone = 0;
  let upBytesDone = 0;
  emit({ phase: 'photos-up', recordsDone: 0, recordsTotal: ups.length, bytesDone: 0, bytesTotal: upBytes });
  for (const p of ups) {
    throwIfCancelled(signal);
    const onBytes = photoBytes(p.ref.size, (bytes) =>
      emit({ phase: 'photos-up', recordsDone: upDone, recordsTotal: ups.length, bytesDone: upBytesDone + bytes, bytesTotal: upBytes }),
    );
    // The transport reports the server's offset before it sends any byte; never told, nothing was sent.
    let sent = false;
    try {
      const content = await ctx.photos.read(p.recordId, p.photoId, { includeDeleted: true });
      await call('photo upload', () =>
        transport.uploadPhoto(
          ctx.token,
          { photoId: p.photoId, recordId: p.recordId, bytes: content.bytes, sha256: p.ref.sha256, type: p.ref.type },
          {
            ...(signal === undefined ? {} : { signal }),
            onBytes,
            onResume: (offset) => {
              sent = true;
              if (offset > 0) log.info({ serverId, photoId: p.photoId, offset, size: p.ref.size }, 'photo upload resumed');
            },
          },
        ),
      );
      await ctx.db.transaction((tx) => state.ackPhoto(tx, p.photoId));
      uploaded += 1;
      if (!sent) alreadyOnServer += 1;
    } catch (err) {
      // As for downloads: a photo whose upload the server answers wrongly fails alone, so it does
      // not block every later upload and all downloads at each sync.
      const alone = isFieldvaultError(err) && err.code === 'TRANSPORT_BAD_RESPONSE';
      if (endsSync(err) && !alone) throw err;
      photoFailed.push({ photoId: p.photoId, code: codeOf(err) });
      log.warn({ serverId, photoId: p.photoId, code: codeOf(err) }, 'photo upload refused');
    }
    upDone += 1;
    upBytesDone += p.ref.size;
    emit({ phase: 'photos-up', recordsDone: upDone, recordsTotal: ups.length, bytesDone: upBytesDone, bytesTotal: upBytes });
  }

  // ----------------------------------------------------------------------------- photos down
  throwIfCancelled(signal);
  const downs = receive ? await state.photosToDownload() : [];
  const downBytes = downs.reduce((n, p) => n + p.ref.size, 0);
  let downDone = 0;
  let downBytesDone = 0;
  if (receive) emit({ phase: 'photos-down', recordsDone: 0, recordsTotal: downs.length, bytesDone: 0, bytesTotal: downBytes });
  for (const p of downs) {
    throwIfCancelled(signal);
    const onBytes = photoBytes(p.ref.size, (bytes) =>
      emit({ phase: 'photos-down', recordsDone: downDone, recordsTotal: downs.length, bytesDone: downBytesDone + bytes, bytesTotal: downBytes }),
    );
    try {
      if (p.ref.size > ctx.photoMaxBytes) {
        throw new FieldvaultError('PHOTO_TOO_LARGE', { detail: `at most ${ctx.photoMaxBytes} bytes on this device`, details: { maxBytes: ctx.photoMaxBytes } });
      }
      // Stored since the list was read when another record named the same photo id (a server's
      // bug): that file stays as it is (storeDownloaded refuses it too), nothing to fetch.
      if (!(await ctx.photos.onDevice(p.photoId))) {
        const photo = await call('photo download', () =>
          transport.downloadPhoto(ctx.token, { photoId: p.photoId, size: p.ref.size, sha256: p.ref.sha256, type: p.ref.type }, { ...(signal === undefined ? {} : { signal }), onBytes }),
        );
        if (await ctx.photos.storeDownloaded(p.recordId, p.photoId, p.ref, photo.bytes)) {
          await ctx.db.transaction((tx) => state.ackPhoto(tx, p.photoId));
          downloaded += 1;
        }
      }
    } catch (err) {
      // A photo the server answers wrongly fails alone: nothing of it was written.
      const alone = isFieldvaultError(err) && err.code === 'TRANSPORT_BAD_RESPONSE';
      if (endsSync(err) && !alone) throw err;
      photoFailed.push({ photoId: p.photoId, code: codeOf(err) });
      log.warn({ serverId, photoId: p.photoId, code: codeOf(err) }, 'photo download failed');
    }
    downDone += 1;
    downBytesDone += p.ref.size;
    emit({ phase: 'photos-down', recordsDone: downDone, recordsTotal: downs.length, bytesDone: downBytesDone, bytesTotal: downBytes });
  }

  if (clockOffsetMs !== undefined) log.warn({ serverId, clockOffsetMs }, 'device clock differs from the server clock by more than the allowed skew; set the date and time');
  await state.markSynced(iso());
  log.info(
    { serverId, pushed, pulled, pulledChanged: changedByPull.size, failed: failed.length, conflicts: conflicted.size, uploaded, alreadyOnServer, downloaded, photosFailed: photoFailed.length, deviceStatus, ms: ctx.now() - started },
    'sync finished',
  );
  return {
    serverId,
    pushed,
    pulled,
    pulledChanged: changedByPull.size,
    failed,
    conflicts: conflicted.size,
    photos: { uploaded, alreadyOnServer, downloaded, failed: photoFailed },
    deviceStatus,
    wiped: false,
    ...(clockOffsetMs === undefined ? {} : { clockOffsetMs }),
  };
}
