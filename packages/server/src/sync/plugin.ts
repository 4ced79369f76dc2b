import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  FieldvaultError,
  PullQuerySchema,
  PullResponseSchema,
  PushBodySchema,
  PushResponseSchema,
  isFieldvaultError,
  mergeRecords,
  type ChildRecord,
  type PullResponse,
  type PushResult,
  type SyncDeviceStatus,
} from '@fieldvault/protocol';
import type { DeviceRecord, RecordEnvelope } from '../couch/records.js';
import { jsonWithArray, sendJsonText } from '../http/json-reply.js';
import { responses } from '../http/schemas.js';
import { REVIEWERS, canRead } from '../records/access.js';
import type { AuthContext } from '../sessions/plugin.js';
import { createOpaqueTokenCodec } from './opaque-token.js';
import { errorResult, isFlagged, mergePushed, outcomeResult, parsePushItem, pushItemId, relayAuthors, resolvePhotoOwners, type PushContext } from './push.js';
import { PullReadAhead } from './read-ahead.js';

/** Device `lastSeenAt` / `lastSyncAt` are written at most this often (one device write per sync, not per page). */
export const DEVICE_TOUCH_INTERVAL_MS = 10_000;

const CHECKPOINT_VERSION = 1;

/** How long a page read ahead waits for the phone's next request. */
const READ_AHEAD_TTL_MS = 30_000;

/** Most distinct deletion and resolution authors whose role one push looks up (relays, records/access.ts). */
const MAX_RELAY_AUTHOR_LOOKUPS = 32;

/**
 * Record sync (DESIGN.md §4): `POST /v1/sync/push` and `GET /v1/sync/pull`.
 *
 * Push merges each record into the server's copy with the protocol's CRDT merge, per record:
 * one bad record fails alone with its code. Pull pages through CouchDB's changes feed from an
 * opaque, signed checkpoint. Both update the device's last-seen/last-sync times, write one audit
 * event with counts (never record content), and report `deviceStatus` so a retired device wipes
 * after its final sync.
 */
export const syncPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = app.fieldvaultConfig;
  const limits = { maxHistory: config.sync.maxHistory };
  const checkpoints = createOpaqueTokenCodec(config.kek, 'checkpoint', `${config.serverId}\u0000${config.couch.dbPrefix}`);
  type Changes = Awaited<ReturnType<typeof app.repo.recordChanges>>;
  const readAhead = new PullReadAhead<Changes>({ maxHeld: config.sync.pullReadAhead, ttlMs: READ_AHEAD_TTL_MS, now: () => app.now() });

  const touchDue = (now: number, d: Pick<DeviceRecord, 'lastSeenAt' | 'lastSyncAt'>): boolean =>
    now - d.lastSeenAt >= DEVICE_TOUCH_INTERVAL_MS || now - (d.lastSyncAt ?? 0) >= DEVICE_TOUCH_INTERVAL_MS;

  /**
   * Marks the device seen and synced (throttled) and returns its status.
   *
   * Between two writes (most requests of a sync) the device as this request's authentication read
   * it decides: a second read in the same request would tell nothing new, and it queued behind the
   * store's record writes on every push and pull page (docs/performance.md, "Seventh round"). When
   * a write is due the device is read again and written; one blacklisted since the session was
   * checked is refused then, before anything is read or written.
   * @throws DEVICE_BLACKLISTED
   */
  async function touchDevice(auth: AuthContext): Promise<SyncDeviceStatus> {
    const now = app.now();
    const seen = auth.device;
    if (seen !== undefined && seen.status !== 'blacklisted' && !touchDue(now, seen)) return seen.status;
    const device = await app.repo.modifyDevice(auth.imei, (cur) => {
      if (cur === undefined || cur.status === 'blacklisted' || !touchDue(now, cur)) return undefined;
      return { ...cur, lastSeenAt: Math.max(cur.lastSeenAt, now), lastSyncAt: now };
    });
    if (device === undefined || device.status === 'blacklisted') throw new FieldvaultError('DEVICE_BLACKLISTED');
    return device.status;
  }

  // The store's generation (couch-repository.ts, storeGeneration), read once per process: a
  // checkpoint names the generation of the store whose change sequence it points into.
  let generation: Promise<string> | undefined;
  const storeGeneration = (): Promise<string> => {
    generation ??= app.repo.storeGeneration().catch((err: unknown) => {
      generation = undefined; // a store that was down is asked again by the next pull
      throw err;
    });
    return generation;
  };

  function encodeCheckpoint(seq: unknown, g: string): string {
    return checkpoints.encode({ v: CHECKPOINT_VERSION, s: seq, g });
  }

  /**
   * A checkpoint of another store generation (a store restored from a backup, or new databases)
   * points into another change sequence: refused, so the phone syncs from the start. One without
   * a generation (issued before they had one) is taken as it is; the next page's has one.
   * @throws SYNC_CHECKPOINT_INVALID
   */
  function decodeCheckpoint(token: string, g: string): unknown {
    const payload = checkpoints.decode(token) as { v?: unknown; s?: unknown; g?: unknown } | null;
    if (typeof payload !== 'object' || payload === null || payload.v !== CHECKPOINT_VERSION || !('s' in payload)) {
      throw new FieldvaultError('SYNC_CHECKPOINT_INVALID', { details: { field: 'query.since' } });
    }
    if (payload.g !== undefined && payload.g !== g) {
      throw new FieldvaultError('SYNC_CHECKPOINT_INVALID', { detail: 'query.since: issued for an earlier copy of this server\'s store (restored or replaced)', details: { field: 'query.since' } });
    }
    const seq = payload.s;
    if (typeof seq !== 'string' && typeof seq !== 'number') throw new FieldvaultError('SYNC_CHECKPOINT_INVALID', { details: { field: 'query.since' } });
    return seq;
  }

  r.post(
    '/v1/sync/push',
    {
      onRequest: app.requireAuth(),
      bodyLimit: config.sync.pushMaxBytes,
      schema: { body: PushBodySchema, response: responses({ 200: PushResponseSchema }) },
    },
    async (request) => {
      const auth = request.auth as AuthContext;
      const items = request.body.records;
      const max = config.sync.pushMaxRecords;
      if (items.length > max) {
        throw new FieldvaultError('INPUT_TOO_LARGE', { detail: `records: at most ${max} per push`, details: { field: 'records', maxRecords: max } });
      }
      const hinted = request.body.unacknowledged ?? [];
      if (hinted.some((i) => i >= items.length)) {
        throw new FieldvaultError('INPUT_INVALID', { detail: 'unacknowledged: indexes into records', details: { field: 'unacknowledged' } });
      }
      const deviceStatus = await touchDevice(auth);

      // Validate every item on its own; copies of one id in a batch are merged (merge is a join).
      const results: Array<PushResult | undefined> = new Array<PushResult | undefined>(items.length).fill(undefined);
      const byId = new Map<string, { record: ChildRecord; indexes: number[] }>();
      items.forEach((raw, i) => {
        try {
          const record = parsePushItem(raw, limits);
          const seen = byId.get(record.id);
          if (seen === undefined) byId.set(record.id, { record, indexes: [i] });
          else byId.set(record.id, { record: mergeRecords(seen.record, record), indexes: [...seen.indexes, i] });
        } catch (err) {
          results[i] = errorResult(pushItemId(raw), err);
        }
      });

      // Relayed deletions and resolutions (records/access.ts): who among their authors is a supervisor or admin here.
      const reviewers = new Set<string>();
      if (!REVIEWERS.includes(auth.role)) {
        // Bounded: a push naming many authors costs at most this many user reads (the rest count as unknown).
        const names = [...relayAuthors([...byId.values()].map((e) => e.record), auth.username)].slice(0, MAX_RELAY_AUTHOR_LOOKUPS);
        for (const name of names) {
          const user = await app.repo.getUser(name);
          if (user !== undefined && !user.disabled && REVIEWERS.includes(user.role)) reviewers.add(name);
        }
      }
      const relayedDeletions = new Set<string>();
      const relayedResolutions = new Set<string>();
      const unappliedRelays = new Set<string>();
      // Photo-id ownership (push.ts, security audit H2): a read and a write per batch at most, nothing without photos.
      const photoOwners = await resolvePhotoOwners(app.repo, [...byId.values()].map((e) => e.record), app.now());
      const ctx: PushContext = { auth, form: app.childForm, limits, now: app.now(), maxSkewMs: config.maxSkewMs, reviewers, relayedDeletions, relayedResolutions, unappliedRelays, photoOwners };
      // The phone's hint: records this server never acknowledged to it are most likely new here (no read first).
      const likelyAbsent = new Set<string>();
      for (const i of hinted) {
        const id = results[i] === undefined ? pushItemId(items[i]) : null;
        if (id !== null) likelyAbsent.add(id);
      }
      const outcomes = await app.repo.modifyRecords([...byId.keys()], (id, current): RecordEnvelope | undefined => {
        const incoming = (byId.get(id) as { record: ChildRecord }).record;
        try {
          return mergePushed(ctx, current, incoming);
        } catch (err) {
          if (isFieldvaultError(err)) throw err;
          // A bug or an unreadable stored record must not fail the rest of the batch.
          request.log.error({ recordId: id, errName: (err as Error).name, stack: String((err as Error).stack) }, 'push of one record failed');
          throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'sync.push' } });
        }
      }, likelyAbsent);

      let changed = 0;
      let flagged = 0;
      for (const [id, { indexes }] of byId) {
        const outcome = outcomes.get(id);
        if (outcome?.status === 'written') changed += 1;
        if (outcome?.status !== 'written') {
          relayedDeletions.delete(id);
          relayedResolutions.delete(id);
        }
        // Counted even when nothing else changed: the admin sees that a relay keeps carrying them.
        if (outcome === undefined || outcome.status === 'error') unappliedRelays.delete(id);
        if (isFlagged(outcome)) flagged += 1;
        for (const i of indexes) results[i] = outcomeResult(id, outcome);
      }
      const final = results.map((res) => res ?? errorResult(null, new FieldvaultError('INTERNAL_ERROR')));
      const failed = final.filter((res) => res.status === 'error');
      const codes: Record<string, number> = {};
      for (const f of failed) if (f.code !== undefined) codes[f.code] = (codes[f.code] ?? 0) + 1;
      await app.audit(request, {
        event: 'sync.push',
        username: auth.username,
        imei: auth.imei,
        details: {
          records: items.length,
          ok: final.length - failed.length,
          changed,
          failed: failed.length,
          conflicts: flagged,
          relayedDeletions: relayedDeletions.size,
          relayedResolutions: relayedResolutions.size,
          unappliedRelays: unappliedRelays.size,
          failedCodes: Object.entries(codes).map(([c, n]) => `${c}:${n}`).join(',') || null,
        },
      });
      request.log.info({ user: auth.username, imei: auth.imei, records: items.length, changed, failed: failed.length, hinted: likelyAbsent.size }, 'sync push');
      return { results: final, deviceStatus };
    },
  );

  r.get(
    '/v1/sync/pull',
    { onRequest: app.requireAuth(), schema: { querystring: PullQuerySchema, response: responses({ 200: PullResponseSchema }) } },
    async (request, reply) => {
      const auth = request.auth as AuthContext;
      const { limit } = request.query;
      const g = await storeGeneration();
      const since = request.query.since === undefined ? undefined : decodeCheckpoint(request.query.since, g);
      const deviceStatus = await touchDevice(auth);

      // One row more than asked tells whether there is more without trusting `pending`.
      const early = readAhead.take(auth.tokenHash, PullReadAhead.key(since, limit + 1));
      const fresh = (): Promise<Changes> => app.repo.recordChanges(since, limit + 1);
      // A read ahead that failed is read again here, so its error is this request's own.
      const { changes, lastSeq, pending } = early === undefined ? await fresh() : await early.catch(fresh);
      const budget = config.sync.pullMaxBytes;
      // Each record is serialised once: its text both counts against the budget and goes out as is.
      const records: string[] = [];
      let bytes = 0;
      let position: unknown = since;
      let consumed = 0;
      for (const change of changes.slice(0, limit)) {
        const record = change.envelope?.record;
        if (record !== undefined && canRead(auth, record)) {
          const text = JSON.stringify(record);
          // UTF-8 bytes, what goes on the wire: in characters, a page of names in non-Latin
          // scripts would come out up to three times the budget.
          const size = Buffer.byteLength(text, 'utf8');
          if (records.length > 0 && bytes + size > budget) break;
          records.push(text);
          bytes += size;
        }
        position = change.seq;
        consumed += 1;
      }
      const more = consumed < changes.length;
      const next = position ?? lastSeq ?? 0;
      const checkpoint = encodeCheckpoint(next, g);
      // The phone will ask for the page after this one: read it now (see read-ahead.ts).
      if (more) readAhead.start(auth.tokenHash, PullReadAhead.key(next, limit + 1), () => app.repo.recordChanges(next, limit + 1));
      await app.audit(request, {
        event: 'sync.pull',
        username: auth.username,
        imei: auth.imei,
        details: { records: records.length, bytes, more, fromStart: since === undefined },
      });
      request.log.info({ user: auth.username, imei: auth.imei, records: records.length, bytes, more, readAhead: early !== undefined }, 'sync pull');
      const rest: Omit<PullResponse, 'records'> = { checkpoint, more, deviceStatus, serverTime: app.now() };
      // For the phone's progress bar: the feed's rows read but not served, and what the store says follows them.
      if (pending !== undefined) rest.remaining = more ? pending + (changes.length - consumed) : 0;
      return sendJsonText(reply, jsonWithArray('records', records, rest));
    },
  );
};
