import { randomBytes } from 'node:crypto';
import type nano from 'nano';
import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';
import {
  DESIGN_NAME,
  DESIGN_VERSION,
  UPLOAD_QUOTA_DESIGN,
  UPLOAD_QUOTA_VERSION,
  auditViews,
  devicesViews,
  pendingViews,
  photosViews,
  recordsViews,
  sessionsViews,
  uploadQuotaViews,
  usersViews,
  type DesignViews,
} from './design-docs.js';
import type {
  AuditEntry,
  AuditQuery,
  AuditRecord,
  ChallengeRecord,
  DeviceRecord,
  DeviceStatus,
  IndexRow,
  Page,
  PhotoRecord,
  RecordChange,
  RecordEnvelope,
  RecordMutation,
  RecordWriteOutcome,
  ResetRecord,
  SessionRecord,
  SessionRevocation,
  ThrottleRecord,
  UploadRecord,
  UserRecord,
} from './records.js';
import { statusOf, storeError } from './store-errors.js';
import { StoreEndpoint } from './endpoint.js';
import { AuthCache, type AuthCacheOptions, type AuthChange, type AuthDocs } from './auth-cache.js';

export interface CouchRepositoryOptions {
  /** CouchDB base URL (credentials allowed; never logged). */
  readonly url: string;
  /** Prefix of every database name. */
  readonly dbPrefix: string;
  /** The endpoint to use (the couch plugin's, shared by the app's store clients); default: a connection of its own to `url`, which does not follow a store move. */
  readonly endpoint?: StoreEndpoint;
}

type Doc = Record<string, unknown> & { _id: string; _rev?: string };
type Db = nano.DocumentScope<Doc>;

/** The first-admin setup claim: `username` is null in claims written before it was recorded. */
export interface SetupClaim {
  readonly rev: string;
  readonly username: string | null;
}

/** A mutation for {@link CouchRepository} `modify*` methods: return the new value, or undefined to write nothing. */
export type Mutation<T> = (current: T | undefined) => T | undefined | Promise<T | undefined>;

/** How often a read-modify-write is retried on a `_rev` conflict before STORE_CONFLICT. */
const MAX_WRITE_ATTEMPTS = 12;
const PAGE_SCAN_LIMIT = 2_000;
const HIGH = {}; // sorts after every string and number in CouchDB's view collation
const SETUP_ID = 'meta:setup';
/** A `_local` document: never in `_all_docs`, `_changes`, replication or backups (see storeGeneration). */
const GENERATION_ID = '_local/fieldvault-store-generation';

/** `pending`: sign-up requests and their quarantined records (signups/, couch/signup-store.ts). */
export const DATABASES = ['users', 'devices', 'sessions', 'audit', 'records', 'photos', 'pending'] as const;

/** CouchDB document ids: a fixed prefix and the (pattern-checked) UUID, so no id can be `_design/…` or `_local/…`. */
const RECORD_PREFIX = 'rec:';
const recordDocId = (id: string): string => `${RECORD_PREFIX}${id}`;
const photoDocId = (id: string): string => `photo:${id}`;
const uploadDocId = (id: string): string => `upload:${id}`;
/** Which record a photo id belongs to (security audit H2): created once, never changed. */
const ownerDocId = (id: string): string => `owner:${id}`;
const PHOTO_ATTACHMENT = 'photo';
const UPLOAD_ATTACHMENT = 'partial';

function setupRequired(detail: string): FieldvaultError {
  return new FieldvaultError('STORE_SETUP_REQUIRED', { detail });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function strip<T>(doc: Doc): T {
  const { _id: _i, _rev: _r, type: _t, ...rest } = doc;
  return rest as T;
}

function encodeCursor(key: unknown): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/**
 * Decodes a cursor and checks it has the exact shape this query produces, so a forged cursor can
 * only move within the same index range.
 * @throws INPUT_INVALID when the cursor is malformed or belongs to another query.
 */
function decodeCursor(cursor: string, prefix: readonly unknown[]): unknown[] {
  const bad = new FieldvaultError('INPUT_INVALID', { detail: 'query.cursor: not a cursor returned by this query', details: { field: 'query.cursor' } });
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad;
  }
  if (!Array.isArray(key) || key.length !== prefix.length + 2) throw bad;
  if (!prefix.every((p, i) => key[i] === p)) throw bad;
  if (typeof key[prefix.length] !== 'number' || typeof key[prefix.length + 1] !== 'string') throw bad;
  return key as unknown[];
}

/**
 * The one place that talks to CouchDB (through nano). It creates its databases on first start,
 * reuses them afterwards, returns the server's own record types and throws only catalogued
 * errors. Queries are built from typed scalars only; `seq` values are never interpreted.
 */
export class CouchRepository {
  /** Where the store is: read at each use, so a store that moved (endpoint.ts) is followed. */
  readonly endpoint: StoreEndpoint;
  private readonly names: Readonly<Record<(typeof DATABASES)[number], string>>;
  /**
   * The store generation last read or made here (undefined before the first): a store that moved
   * must still have it (store-identity.ts), since pull checkpoints handed out name it.
   */
  get seenGeneration(): string | undefined {
    return this.generationSeen;
  }
  private generationSeen: string | undefined;
  /** Off until `enableAuthCache`: library users and tests that count store reads see every read. */
  private authCache: AuthCache | undefined;

  constructor(options: CouchRepositoryOptions) {
    this.endpoint = options.endpoint ?? new StoreEndpoint(options.url);
    this.names = {
      users: `${options.dbPrefix}users`,
      devices: `${options.dbPrefix}devices`,
      sessions: `${options.dbPrefix}sessions`,
      audit: `${options.dbPrefix}audit`,
      records: `${options.dbPrefix}records`,
      photos: `${options.dbPrefix}photos`,
      pending: `${options.dbPrefix}pending`,
    };
  }

  private get server(): nano.ServerScope {
    return this.endpoint.server;
  }
  private get users(): Db {
    return this.endpoint.db(this.names.users);
  }
  private get devices(): Db {
    return this.endpoint.db(this.names.devices);
  }
  private get sessions(): Db {
    return this.endpoint.db(this.names.sessions);
  }
  private get audit(): Db {
    return this.endpoint.db(this.names.audit);
  }
  private get records(): Db {
    return this.endpoint.db(this.names.records);
  }
  private get photos(): Db {
    return this.endpoint.db(this.names.photos);
  }
  private get pending(): Db {
    return this.endpoint.db(this.names.pending);
  }

  /**
   * Turns on the short memory of authentication reads (auth-cache.ts); `ttlMs` 0 leaves it off.
   * Writes made through this repository keep it current; see the file for what another process's
   * writes mean.
   */
  enableAuthCache(options: AuthCacheOptions): void {
    this.authCache = options.ttlMs > 0 ? new AuthCache(options) : undefined;
  }

  /**
   * What authenticating a session needs: the session (undefined when there is none), its user and,
   * for a device session, its device; from the memory when it has them (see `enableAuthCache`).
   * @throws STORE_UNAVAILABLE
   */
  async authDocs(tokenHash: string): Promise<AuthDocs | undefined> {
    const cache = this.authCache;
    const known = cache?.get(tokenHash);
    if (known !== undefined) return known;
    const since = cache?.generation ?? 0;
    const session = await this.getSession(tokenHash);
    if (session === undefined) return undefined;
    const [user, device] = await Promise.all([
      this.getUser(session.username),
      session.kind === 'console' ? Promise.resolve(undefined) : this.getDevice(session.imei),
    ]);
    const docs: AuthDocs = { session, user, device };
    cache?.remember(tokenHash, docs, since);
    return docs;
  }

  /** Runs a write of sessions, users or devices, telling the authentication memory before and after. */
  private async authWrite<T>(what: AuthChange, write: () => Promise<T>): Promise<T> {
    this.authCache?.changed(what);
    try {
      return await write();
    } finally {
      this.authCache?.changed(what);
    }
  }

  /** Database names in use, e.g. for operators' `_security` setup. */
  get databaseNames(): readonly string[] {
    return Object.values(this.names);
  }

  /**
   * Creates the databases and design documents if missing; reuses existing ones.
   * @throws STORE_UNAVAILABLE when CouchDB cannot be reached or refuses.
   */
  async init(): Promise<void> {
    for (const name of Object.values(this.names)) {
      // Look before creating: on a real CouchDB the server runs as a member of its databases
      // (`fieldvault-admin setup`), which may open them but not create them.
      try {
        await this.server.db.get(name);
        continue;
      } catch (err) {
        const status = statusOf(err);
        if (status === 401 || status === 403) throw setupRequired(`the CouchDB user may not open database ${name}`);
        if (status !== 404) throw storeError(err, 'db.get');
      }
      try {
        await this.server.db.create(name);
      } catch (err) {
        const status = statusOf(err);
        if (status === 401 || status === 403) throw setupRequired(`database ${name} is missing`);
        // 412: exists already (another server sharing the store created it in between).
        if (status !== 412) throw storeError(err, 'db.create');
      }
    }
    await this.ensureDesign(this.users, usersViews);
    await this.ensureDesign(this.devices, devicesViews);
    await this.ensureDesign(this.sessions, sessionsViews);
    await this.ensureDesign(this.audit, auditViews);
    await this.ensureDesign(this.records, recordsViews);
    await this.ensureDesign(this.photos, photosViews);
    await this.ensureDesign(this.pending, pendingViews);
    await this.ensureDesign(this.photos, uploadQuotaViews, UPLOAD_QUOTA_DESIGN, UPLOAD_QUOTA_VERSION);
  }

  /** Deletes this repository's databases (tests, and an admin's explicit reset). */
  async dropDatabases(): Promise<void> {
    for (const name of Object.values(this.names)) {
      try {
        await this.server.db.destroy(name);
      } catch (err) {
        if (statusOf(err) !== 404) throw storeError(err, 'db.destroy');
      }
    }
  }

  private async ensureDesign(db: Db, views: DesignViews, name = DESIGN_NAME, version = DESIGN_VERSION): Promise<void> {
    const id = `_design/${name}`;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const existing = await this.getDoc(db, id, 'design.get');
      if (existing !== undefined && existing['version'] === version) return;
      const doc: Doc = { _id: id, language: 'javascript', version, views };
      if (existing?._rev !== undefined) doc._rev = existing._rev;
      try {
        await db.insert(doc);
        return;
      } catch (err) {
        const status = statusOf(err);
        // Only a database admin may write design documents; the least-privilege user asks for setup.
        if (status === 401 || status === 403) throw setupRequired(`the views (design documents version ${DESIGN_VERSION}) are missing or outdated`);
        if (status !== 409) throw storeError(err, 'design.put');
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Generic helpers

  private async getDoc(db: Db, id: string, op: string): Promise<Doc | undefined> {
    try {
      return await db.get(id);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw storeError(err, op);
    }
  }

  /** Creates a document; returns false when one with this id exists already. */
  private async create(db: Db, id: string, type: string, value: object, op: string): Promise<boolean> {
    try {
      await db.insert({ ...value, type, _id: id });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw storeError(err, op);
    }
  }

  /**
   * Read-modify-write with optimistic concurrency: on a `_rev` conflict the document is read
   * again and `mutate` runs again on the fresh value, so concurrent writers never lose an update.
   * `mutate` must therefore be free of side effects other than computing the new value.
   * @throws STORE_CONFLICT after {@link MAX_WRITE_ATTEMPTS} conflicts in a row.
   */
  private async modify<T extends object>(db: Db, id: string, type: string, mutate: Mutation<T>, op: string): Promise<T | undefined> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
      const doc = await this.getDoc(db, id, op);
      const current = doc === undefined ? undefined : strip<T>(doc);
      const next = await mutate(current);
      if (next === undefined) return current;
      const write: Doc = { ...next, type, _id: id };
      if (doc?._rev !== undefined) write._rev = doc._rev;
      try {
        await db.insert(write);
        return next;
      } catch (err) {
        if (statusOf(err) !== 409) throw storeError(err, op);
        // Jitter spreads out writers that collided so they do not collide again in lockstep.
        await sleep(Math.floor(Math.random() * 5 * (attempt + 1)));
      }
    }
    throw new FieldvaultError('STORE_CONFLICT', { details: { op } });
  }

  /** Deletes a document if it is still at the read revision; false when it was gone or changed. */
  private async take(db: Db, id: string, op: string): Promise<Doc | undefined> {
    const doc = await this.getDoc(db, id, op);
    if (doc?._rev === undefined) return undefined;
    try {
      await db.destroy(id, doc._rev);
      return doc;
    } catch (err) {
      const status = statusOf(err);
      if (status === 409 || status === 404) return undefined;
      throw storeError(err, op);
    }
  }

  private async remove(db: Db, id: string, op: string): Promise<boolean> {
    return (await this.take(db, id, op)) !== undefined;
  }

  private async listByIdPrefix<T>(db: Db, prefix: string, limit: number, cursor: string | undefined, op: string): Promise<Page<T>> {
    const startkey = cursor === undefined ? prefix : `${prefix}${cursor}`;
    try {
      // The cursor row itself (if it still exists) is dropped by id rather than with `skip`,
      // so a deleted cursor row cannot make the next page skip one more.
      const res = await db.list({ startkey, endkey: `${prefix}\ufff0`, include_docs: true, limit: limit + 2 });
      const rows = res.rows.filter((r) => r.doc !== undefined && r.doc !== null && (cursor === undefined || r.id !== startkey));
      const items = rows.slice(0, limit).map((r) => strip<T>(r.doc as Doc));
      const last = rows[limit - 1];
      const nextCursor = rows.length > limit && last !== undefined ? last.id.slice(prefix.length) : null;
      return { items, nextCursor };
    } catch (err) {
      throw storeError(err, op);
    }
  }

  private async viewRows(db: Db, view: string, params: nano.DocumentViewParams, op: string): Promise<nano.DocumentViewResponse<unknown, Doc>['rows']> {
    try {
      const res = await db.view<unknown>(DESIGN_NAME, view, params);
      return res.rows;
    } catch (err) {
      throw storeError(err, op);
    }
  }

  private async bulkDelete(db: Db, rows: ReadonlyArray<{ id: string; value: unknown }>, op: string): Promise<number> {
    if (rows.length === 0) return 0;
    try {
      const res = await db.bulk({ docs: rows.map((r) => ({ _id: r.id, _rev: String(r.value), _deleted: true })) });
      return res.filter((r) => r.error === undefined).length;
    } catch (err) {
      throw storeError(err, op);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Setup

  /** The setup claim (`meta:setup`), if any: written just before the first admin is created. */
  async getSetupClaim(): Promise<SetupClaim | undefined> {
    const doc = await this.getDoc(this.users, SETUP_ID, 'setup.get');
    if (doc?._rev === undefined) return undefined;
    const username = doc['username'];
    return { rev: doc._rev, username: typeof username === 'string' ? username : null };
  }

  /**
   * True once the first admin exists: a claim whose admin user is missing is what a crash
   * between setup's two writes leaves behind (crash audit s16 #1), and counts as not done.
   * Users are never deleted, so a claim with its user stays done for good.
   */
  async isSetupComplete(): Promise<boolean> {
    const claim = await this.getSetupClaim();
    if (claim === undefined) return false;
    // A claim without a username (older versions) can't be checked: taken as done, as it was.
    return claim.username === null || (await this.getUser(claim.username)) !== undefined;
  }

  /**
   * Atomically marks setup as taken by `username`; false when someone else did first. With
   * `staleRev`, replaces that stale claim (see isSetupComplete) only if it is still that
   * revision, so of two callers taking over the same stale claim exactly one wins.
   */
  async claimSetup(at: number, username: string, staleRev?: string): Promise<boolean> {
    if (staleRev === undefined) return this.create(this.users, SETUP_ID, 'meta', { at, username }, 'setup.claim');
    try {
      await this.users.insert({ at, username, type: 'meta', _id: SETUP_ID, _rev: staleRev });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw storeError(err, 'setup.claim');
    }
  }

  /** Undoes {@link claimSetup} when creating the admin failed afterwards (or drops a stale claim: only that revision). */
  async releaseSetup(rev?: string): Promise<boolean> {
    if (rev === undefined) return this.remove(this.users, SETUP_ID, 'setup.release');
    try {
      await this.users.destroy(SETUP_ID, rev);
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 409 || status === 404) return false;
      throw storeError(err, 'setup.release');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Users

  async getUser(username: string): Promise<UserRecord | undefined> {
    const doc = await this.getDoc(this.users, `user:${username}`, 'user.get');
    return doc === undefined ? undefined : strip<UserRecord>(doc);
  }

  /** @throws USER_EXISTS when the username is taken. */
  async createUser(user: UserRecord): Promise<void> {
    const created = await this.authWrite({ username: user.username }, () => this.create(this.users, `user:${user.username}`, 'user', user, 'user.create'));
    if (!created) {
      throw new FieldvaultError('USER_EXISTS');
    }
  }

  /** @throws USER_NOT_FOUND when there is no such user (and `mutate` never runs). */
  async modifyUser(username: string, mutate: (current: UserRecord) => UserRecord | undefined | Promise<UserRecord | undefined>): Promise<UserRecord> {
    const result = await this.authWrite({ username }, () =>
      this.modify<UserRecord>(
        this.users,
        `user:${username}`,
        'user',
        (cur) => {
          if (cur === undefined) throw new FieldvaultError('USER_NOT_FOUND');
          return mutate(cur);
        },
        'user.modify',
      ),
    );
    if (result === undefined) throw new FieldvaultError('USER_NOT_FOUND');
    return result;
  }

  async listUsers(limit: number, cursor: string | undefined): Promise<Page<UserRecord>> {
    return this.listByIdPrefix<UserRecord>(this.users, 'user:', limit, cursor, 'user.list');
  }

  /** The enabled admins (for the "never lock out the last usable admin" rule). */
  async listEnabledAdmins(): Promise<UserRecord[]> {
    const rows = await this.viewRows(this.users, 'enabled_by_role', { key: 'admin', include_docs: true }, 'user.list_admins');
    return rows.flatMap((r) => (r.doc ? [strip<UserRecord>(r.doc)] : []));
  }

  /** The throttle records of these keys (missing ones are left out), in one request. */
  async getThrottles(keys: readonly string[]): Promise<ThrottleRecord[]> {
    const docs = await this.fetchDocs(this.sessions, keys.map((k) => `throttle:${k}`), 'throttle.get_many');
    return [...docs.values()].filter((d) => d['type'] === 'throttle').map((d) => strip<ThrottleRecord>(d));
  }

  // ---------------------------------------------------------------------------------------------
  // Devices

  async getDevice(imei: string): Promise<DeviceRecord | undefined> {
    const doc = await this.getDoc(this.devices, `device:${imei}`, 'device.get');
    return doc === undefined ? undefined : strip<DeviceRecord>(doc);
  }

  /**
   * Read-modify-write of a device under `_rev` concurrency: two logins on one device at once
   * cannot lose a key update; the loser re-reads and reconciles against the winner's key.
   */
  async modifyDevice(imei: string, mutate: Mutation<DeviceRecord>): Promise<DeviceRecord | undefined> {
    return this.authWrite({ imei }, () => this.modify<DeviceRecord>(this.devices, `device:${imei}`, 'device', mutate, 'device.modify'));
  }

  async listDevices(status: DeviceStatus | undefined, limit: number, cursor: string | undefined): Promise<Page<DeviceRecord>> {
    if (status === undefined) return this.listByIdPrefix<DeviceRecord>(this.devices, 'device:', limit, cursor, 'device.list');
    const found = await this.viewRows(
      this.devices,
      'by_status',
      { startkey: [status, cursor ?? ''], endkey: [status, HIGH], include_docs: true, limit: limit + 2 },
      'device.list',
    );
    const rows = found.filter((r) => cursor === undefined || (r.key as unknown as unknown[])[1] !== cursor);
    const items = rows.slice(0, limit).flatMap((r) => (r.doc ? [strip<DeviceRecord>(r.doc)] : []));
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last !== undefined ? last.imei : null };
  }

  // ---------------------------------------------------------------------------------------------
  // Sessions, challenges, reset tokens, throttles (all short-lived, in the sessions database)

  async createSession(session: SessionRecord): Promise<void> {
    const created = await this.authWrite({ tokenHash: session.tokenHash }, () =>
      this.create(this.sessions, `session:${session.tokenHash}`, 'session', session, 'session.create'),
    );
    if (!created) {
      throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'session.create' } });
    }
  }

  async getSession(tokenHash: string): Promise<SessionRecord | undefined> {
    const doc = await this.getDoc(this.sessions, `session:${tokenHash}`, 'session.get');
    return doc === undefined || doc['type'] !== 'session' ? undefined : strip<SessionRecord>(doc);
  }

  async deleteSession(tokenHash: string): Promise<boolean> {
    return this.authWrite({ tokenHash }, () => this.remove(this.sessions, `session:${tokenHash}`, 'session.delete'));
  }

  /** Deletes every session of a user; returns how many. */
  async deleteSessionsOfUser(username: string): Promise<number> {
    return this.authWrite({ username }, () => this.deleteSessionsBy('sessions_by_user', username));
  }

  /** Deletes every session on a device; returns how many. */
  async deleteSessionsOfDevice(imei: string): Promise<number> {
    return this.authWrite({ imei }, () => this.deleteSessionsBy('sessions_by_device', imei));
  }

  private async deleteSessionsBy(view: string, key: string): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.viewRows(this.sessions, view, { key, limit: 500 }, 'session.revoke');
      const deleted = await this.bulkDelete(this.sessions, rows, 'session.revoke');
      total += deleted;
      if (rows.length < 500 || deleted === 0) return total;
    }
  }

  /**
   * Marks every session on a device as revoked (kept until it expires, so the device's next
   * request learns why and wipes); returns how many.
   */
  async revokeSessionsOfDevice(imei: string, reason: SessionRevocation): Promise<number> {
    return this.authWrite({ imei }, () => this.revokeSessionsOfDeviceNow(imei, reason));
  }

  private async revokeSessionsOfDeviceNow(imei: string, reason: SessionRevocation): Promise<number> {
    const rows = await this.viewRows(this.sessions, 'sessions_by_device', { key: imei, include_docs: true }, 'session.revoke');
    const docs = rows.flatMap((r) => (r.doc && r.doc['revoked'] !== reason ? [{ ...r.doc, revoked: reason }] : []));
    if (docs.length === 0) return 0;
    try {
      const res = await this.sessions.bulk({ docs });
      return res.filter((r) => r.error === undefined).length;
    } catch (err) {
      throw storeError(err, 'session.revoke');
    }
  }

  async createChallenge(challenge: ChallengeRecord): Promise<void> {
    if (!(await this.create(this.sessions, `challenge:${challenge.hash}`, 'challenge', challenge, 'challenge.create'))) {
      throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'challenge.create' } });
    }
  }

  /**
   * Takes a challenge out of the store: at most one caller gets it, however many race (the
   * delete is conditional on the revision read).
   */
  async consumeChallenge(hash: string): Promise<ChallengeRecord | undefined> {
    const doc = await this.take(this.sessions, `challenge:${hash}`, 'challenge.consume');
    return doc === undefined || doc['type'] !== 'challenge' ? undefined : strip<ChallengeRecord>(doc);
  }

  async createReset(reset: ResetRecord): Promise<void> {
    if (!(await this.create(this.sessions, `reset:${reset.tokenHash}`, 'reset', reset, 'reset.create'))) {
      throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'reset.create' } });
    }
  }

  async getReset(tokenHash: string): Promise<ResetRecord | undefined> {
    const doc = await this.getDoc(this.sessions, `reset:${tokenHash}`, 'reset.get');
    return doc === undefined || doc['type'] !== 'reset' ? undefined : strip<ResetRecord>(doc);
  }

  /** Single use: true for exactly one caller. */
  async consumeReset(tokenHash: string): Promise<boolean> {
    return this.remove(this.sessions, `reset:${tokenHash}`, 'reset.consume');
  }

  async getThrottle(key: string): Promise<ThrottleRecord | undefined> {
    const doc = await this.getDoc(this.sessions, `throttle:${key}`, 'throttle.get');
    return doc === undefined ? undefined : strip<ThrottleRecord>(doc);
  }

  async modifyThrottle(key: string, mutate: Mutation<ThrottleRecord>): Promise<ThrottleRecord | undefined> {
    return this.modify<ThrottleRecord>(this.sessions, `throttle:${key}`, 'throttle', mutate, 'throttle.modify');
  }

  async deleteThrottle(key: string): Promise<void> {
    await this.remove(this.sessions, `throttle:${key}`, 'throttle.delete');
  }

  /** Removes expired sessions, challenges, reset tokens, throttles and unfinished photo uploads; returns how many. */
  async sweepExpired(now: number): Promise<number> {
    return this.authWrite('all', () => this.sweepExpiredNow(now));
  }

  private async sweepExpiredNow(now: number): Promise<number> {
    let total = 0;
    for (const [db, view] of [[this.sessions, 'by_expiry'], [this.photos, 'uploads_by_expiry']] as const) {
      for (;;) {
        const rows = await this.viewRows(db, view, { endkey: now, limit: 500 }, 'sweep');
        const deleted = await this.bulkDelete(db, rows, 'sweep');
        total += deleted;
        if (rows.length < 500 || deleted === 0) break;
      }
    }
    return total;
  }

  // ---------------------------------------------------------------------------------------------
  // Records (one document per record: `rec:<uuid>` holding a RecordEnvelope)

  private envelopeOf(doc: Doc | null | undefined): RecordEnvelope | undefined {
    if (doc === null || doc === undefined || doc['type'] !== 'record') return undefined;
    const record = doc['record'];
    if (typeof record !== 'object' || record === null) return undefined;
    return strip<RecordEnvelope>(doc);
  }

  /**
   * A random id of this store's records database, made the first time it is asked for (servers
   * sharing the databases agree on the first one written). Kept in a `_local` document, which is
   * never listed, replicated or backed up: a store restored from a backup, or new databases, get
   * one of their own, and pull checkpoints name it (sync/plugin.ts), because the sequence a
   * checkpoint points into belongs to one copy of the database.
   * @throws STORE_UNAVAILABLE
   */
  async storeGeneration(): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const doc = await this.getDoc(this.records, GENERATION_ID, 'generation.get');
      if (typeof doc?.['generation'] === 'string') return (this.generationSeen = doc['generation']);
      const generation = randomBytes(12).toString('base64url');
      try {
        await this.records.insert({ generation } as unknown as Doc, GENERATION_ID);
        return (this.generationSeen = generation);
      } catch (err) {
        // 409: another server sharing the databases wrote it first; read theirs.
        if (statusOf(err) !== 409) throw storeError(err, 'generation.create');
      }
    }
    throw new FieldvaultError('STORE_CONFLICT', { details: { op: 'generation.create' } });
  }

  /** The stored record `id` (a UUID), or undefined. */
  async getRecord(id: string): Promise<RecordEnvelope | undefined> {
    return this.envelopeOf(await this.getDoc(this.records, recordDocId(id), 'record.get'));
  }

  /** Live documents by id, one `_all_docs?keys=` request; missing and deleted ids are absent. */
  private async fetchDocs(db: Db, ids: readonly string[], op: string): Promise<Map<string, Doc>> {
    const out = new Map<string, Doc>();
    if (ids.length === 0) return out;
    try {
      const res = await db.fetch({ keys: [...ids] });
      for (const row of res.rows) {
        if ('doc' in row && row.doc !== undefined && row.doc !== null) out.set(row.id, row.doc);
      }
      return out;
    } catch (err) {
      throw storeError(err, op);
    }
  }

  /**
   * Read-modify-write of many records at once with optimistic concurrency: one `_all_docs`
   * read and one `_bulk_docs` write per round; the records whose write hit a `_rev` conflict
   * (another push of the same record landed in between) are read and mutated again, so
   * concurrent pushes of one record from two phones both end up merged. `mutate` decides per
   * record (see {@link RecordMutation}); a FieldvaultError it throws refuses that record alone.
   * A document under a record id that is not a record is never overwritten.
   *
   * `likelyAbsent` names records the caller believes the store does not hold (a phone's hint,
   * never trusted): the first round skips their read and writes them without `_rev`, which the
   * store accepts only for a document it does not hold. A record it holds after all answers
   * `conflict` and goes through the read path like any other; so does one that `mutate` refused
   * as new (its rights may differ once the stored copy is known). Such a record gets one round
   * more, so a wrong hint never uses up the attempts of a real race.
   * @throws STORE_UNAVAILABLE when the store cannot be reached (the whole batch: nothing is known).
   */
  async modifyRecords(ids: readonly string[], mutate: RecordMutation, likelyAbsent: ReadonlySet<string> = new Set()): Promise<Map<string, RecordWriteOutcome>> {
    const out = new Map<string, RecordWriteOutcome>();
    let pending = [...new Set(ids)];
    let guessed = new Set(pending.filter((id) => likelyAbsent.has(id)));
    // The hinted round is extra: the rounds after it back off as the rounds after a first read do.
    const extra = guessed.size > 0 ? 1 : 0;
    for (let attempt = 0; pending.length > 0 && attempt < MAX_WRITE_ATTEMPTS + extra; attempt += 1) {
      if (attempt > extra) await sleep(Math.floor(Math.random() * 5 * (attempt - extra)));
      const docs = await this.fetchDocs(this.records, pending.filter((id) => !guessed.has(id)).map(recordDocId), 'record.fetch');
      const writes: Doc[] = [];
      const writeIds: string[] = [];
      const again: string[] = [];
      for (const id of pending) {
        const guess = guessed.has(id);
        const doc = docs.get(recordDocId(id));
        const current = this.envelopeOf(doc);
        if (doc !== undefined && current === undefined) {
          out.set(id, { status: 'error', error: new FieldvaultError('INTERNAL_ERROR', { details: { op: 'record.not_a_record' } }) });
          continue;
        }
        let next: RecordEnvelope | undefined;
        try {
          next = mutate(id, current);
        } catch (err) {
          if (!isFieldvaultError(err)) throw err;
          if (guess) again.push(id);
          else out.set(id, { status: 'error', error: err });
          continue;
        }
        if (next === undefined) {
          // "Unchanged" is only known against the stored copy: a guessed record is read first.
          if (guess) again.push(id);
          else out.set(id, { status: 'unchanged', envelope: current });
          continue;
        }
        const write: Doc = { ...next, type: 'record', _id: recordDocId(id) };
        if (doc?._rev !== undefined) write._rev = doc._rev;
        writes.push(write);
        writeIds.push(id);
        out.set(id, { status: 'written', envelope: next });
      }
      guessed = new Set();
      if (writes.length === 0 && again.length === 0) return out;
      let res: nano.DocumentBulkResponse[] = [];
      if (writes.length > 0) {
        try {
          // The body is serialised here with a plain JSON.stringify: nano's own passes a replacer
          // function (for design-document functions), ≈ 1.6× the cost on a 500-record body, and
          // record documents hold no functions.
          const body = JSON.stringify({ docs: writes });
          res = (await this.server.relax({ db: this.names.records, path: '_bulk_docs', method: 'POST', body, dontStringify: true } as nano.RequestOptions)) as nano.DocumentBulkResponse[];
        } catch (err) {
          throw storeError(err, 'record.write');
        }
      }
      writeIds.forEach((id, i) => {
        const r = res[i];
        if (r === undefined || r.error === undefined) return;
        if (r.error === 'conflict') again.push(id);
        else out.set(id, { status: 'error', error: new FieldvaultError('INTERNAL_ERROR', { details: { op: 'record.write' } }) });
      });
      pending = again;
    }
    for (const id of pending) out.set(id, { status: 'error', error: new FieldvaultError('STORE_CONFLICT', { details: { op: 'record.write' } }) });
    return out;
  }

  /**
   * Up to `limit` rows of the records changes feed after `since` (normal feed, current document
   * of each change). `seq` values are passed through untouched (opaque). Rows that are not a
   * record (design documents, deletions of whole documents) come back without an envelope so
   * the caller can still move its checkpoint past them.
   */
  /**
   * Up to `limit` rows of the records changes feed after `since`. `pending` is the store's count of
   * changes after `lastSeq` when it gives one (CouchDB 3 does; the embedded store estimates it).
   */
  async recordChanges(since: unknown, limit: number): Promise<{ changes: RecordChange[]; lastSeq: unknown; pending?: number }> {
    try {
      const params: nano.DatabaseChangesParams = { limit, include_docs: true };
      if (since !== undefined) params.since = since as string;
      const res = await this.records.changes(params);
      const rows = res.results as Array<nano.DatabaseChangesResultItem & { doc?: Doc | null }>;
      const changes = rows.map((row) => ({
        seq: row.seq as unknown,
        envelope: row.deleted === true || row.id.startsWith('_') ? undefined : this.envelopeOf(row.doc),
      }));
      const pending = (res as { pending?: unknown }).pending;
      return typeof pending === 'number' && Number.isSafeInteger(pending) && pending >= 0
        ? { changes, lastSeq: res.last_seq as unknown, pending }
        : { changes, lastSeq: res.last_seq as unknown };
    } catch (err) {
      throw storeError(err, 'record.changes');
    }
  }

  /**
   * Rows of the record search index in `[startkey, endkey]`, with their records, at most `limit`.
   * When `after` is given the scan starts at that key and leaves it out (keys are unique).
   */
  async scanRecordIndex(startkey: readonly unknown[], endkey: readonly unknown[], after: readonly unknown[] | undefined, limit: number): Promise<IndexRow[]> {
    const rows = await this.viewRows(
      this.records,
      'search',
      { startkey: after ?? startkey, endkey, include_docs: true, limit: after === undefined ? limit : limit + 1 },
      'record.search',
    );
    const afterJson = after === undefined ? undefined : JSON.stringify(after);
    return rows
      .filter((r) => afterJson === undefined || JSON.stringify(r.key) !== afterJson)
      .slice(0, limit)
      .map((r) => ({ key: r.key as unknown as unknown[], value: r.value, envelope: this.envelopeOf(r.doc) }));
  }

  /** Every record in id order, `limit` at a time, starting after record id `after`; keys are `[id]`. */
  async scanAllRecords(after: string | undefined, limit: number): Promise<IndexRow[]> {
    const startkey = after === undefined ? RECORD_PREFIX : recordDocId(after);
    try {
      const res = await this.records.list({ startkey, endkey: `${RECORD_PREFIX}\ufff0`, include_docs: true, limit: limit + 1 });
      return res.rows
        .filter((r) => after === undefined || r.id !== startkey)
        .slice(0, limit)
        .map((r) => ({ key: [r.id.slice(RECORD_PREFIX.length)], value: null, envelope: this.envelopeOf(r.doc) }));
    } catch (err) {
      throw storeError(err, 'record.list');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Photos (`photo:<uuid>` with the bytes as attachment; `upload:<uuid>` while an upload is unfinished)

  async getPhoto(photoId: string): Promise<PhotoRecord | undefined> {
    return photoOf(await this.getDoc(this.photos, photoDocId(photoId), 'photo.get'));
  }

  /**
   * Stores a verified photo and its bytes in one write (an inline attachment, so a photo
   * document never exists without its bytes). False when the id is taken already.
   */
  async createPhoto(photo: PhotoRecord, bytes: Uint8Array): Promise<boolean> {
    const attachments = { [PHOTO_ATTACHMENT]: { content_type: photo.contentType, data: Buffer.from(bytes).toString('base64') } };
    try {
      await this.photos.insert({ ...photo, type: 'photo', _id: photoDocId(photo.photoId), _attachments: attachments });
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw storeError(err, 'photo.create');
    }
  }

  /** The bytes of a stored photo as a stream (errors on the stream if the store fails mid-way). */
  photoStream(photoId: string): NodeJS.ReadableStream {
    return this.photos.attachment.getAsStream(photoDocId(photoId), PHOTO_ATTACHMENT);
  }

  /** An unfinished upload with the bytes received so far; `version` is for {@link saveUpload}. */
  async getUpload(photoId: string): Promise<{ upload: UploadRecord; data: Uint8Array; version: string } | undefined> {
    let doc: Doc;
    try {
      doc = await this.photos.get(uploadDocId(photoId), { attachments: true });
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw storeError(err, 'upload.get');
    }
    if (doc['type'] !== 'upload' || doc._rev === undefined) return undefined;
    const attachments = doc['_attachments'] as Record<string, { data?: unknown }> | undefined;
    const data = attachments?.[UPLOAD_ATTACHMENT]?.data;
    const { _attachments: _a, ...upload } = strip<UploadRecord & { _attachments?: unknown }>(doc);
    return { upload, data: typeof data === 'string' ? new Uint8Array(Buffer.from(data, 'base64')) : new Uint8Array(0), version: doc._rev };
  }

  /**
   * An unfinished upload without its bytes (security audit M2: the bytes are read only while the
   * upload is assembled); `dataLength` is the stored attachment's length.
   */
  async getUploadState(photoId: string): Promise<{ upload: UploadRecord; dataLength: number; version: string } | undefined> {
    const doc = await this.getDoc(this.photos, uploadDocId(photoId), 'upload.get');
    if (doc === undefined || doc['type'] !== 'upload' || doc._rev === undefined) return undefined;
    const attachments = doc['_attachments'] as Record<string, { length?: unknown }> | undefined;
    const length = attachments?.[UPLOAD_ATTACHMENT]?.length;
    const { _attachments: _a, ...upload } = strip<UploadRecord & { _attachments?: unknown }>(doc);
    return { upload, dataLength: typeof length === 'number' ? length : 0, version: doc._rev };
  }

  /**
   * Writes an unfinished upload with all its bytes so far, only if it is still at `version`
   * (null: it must not exist). False when another request changed it first.
   */
  async saveUpload(upload: UploadRecord, data: Uint8Array, version: string | null): Promise<boolean> {
    const doc: Doc = {
      ...upload,
      type: 'upload',
      _id: uploadDocId(upload.photoId),
      _attachments: { [UPLOAD_ATTACHMENT]: { content_type: 'application/octet-stream', data: Buffer.from(data).toString('base64') } },
    };
    if (version !== null) doc._rev = version;
    try {
      await this.photos.insert(doc);
      return true;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw storeError(err, 'upload.save');
    }
  }

  /** Drops an unfinished upload (after it completed, or to start over). */
  async deleteUpload(photoId: string): Promise<void> {
    await this.remove(this.photos, uploadDocId(photoId), 'upload.delete');
  }

  /**
   * The record that owns each of `photoIds` (security audit H2): its `owner:<id>` document, else
   * (ids bound before owner documents existed) the record its stored photo was uploaded for.
   * Ids with neither are absent. One `_all_docs` read.
   */
  async photoOwners(photoIds: readonly string[]): Promise<Map<string, string>> {
    const ids = [...new Set(photoIds)];
    const docs = await this.fetchDocs(this.photos, ids.flatMap((id) => [ownerDocId(id), photoDocId(id)]), 'photo.owners');
    const owners = new Map<string, string>();
    for (const id of ids) {
      const recordId = ownerOf(docs.get(ownerDocId(id)), docs.get(photoDocId(id)));
      if (recordId !== undefined) owners.set(id, recordId);
    }
    return owners;
  }

  /** `getPhoto` and the id's owner (as `photoOwners` decides it) in one store request: a download needs both. */
  async photoWithOwner(photoId: string): Promise<{ photo: PhotoRecord | undefined; owner: string | undefined }> {
    const docs = await this.fetchDocs(this.photos, [ownerDocId(photoId), photoDocId(photoId)], 'photo.get');
    const doc = docs.get(photoDocId(photoId));
    return { photo: photoOf(doc), owner: ownerOf(docs.get(ownerDocId(photoId)), doc) };
  }

  /**
   * Binds each photo id to its record unless it is bound already (one `_bulk_docs` write; the
   * store's unique document ids decide between concurrent claims). Returns the owner of every
   * claimed id after the write: the claimant, or the record that got there first.
   */
  async bindPhotoOwners(claims: ReadonlyMap<string, string>, at: number): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (claims.size === 0) return out;
    const entries = [...claims];
    let res: nano.DocumentBulkResponse[];
    try {
      res = await this.photos.bulk({ docs: entries.map(([photoId, recordId]) => ({ _id: ownerDocId(photoId), type: 'photo-owner', photoId, recordId, at })) });
    } catch (err) {
      throw storeError(err, 'photo.bind');
    }
    const lost: string[] = [];
    entries.forEach(([photoId, recordId], i) => {
      const r = res[i];
      if (r !== undefined && r.error === undefined) out.set(photoId, recordId);
      else lost.push(photoId);
    });
    if (lost.length > 0) for (const [id, owner] of await this.photoOwners(lost)) out.set(id, owner);
    return out;
  }

  /** Drops a stored photo (one stored under an id its record does not own, security audit H2). */
  async deletePhoto(photoId: string): Promise<void> {
    await this.remove(this.photos, photoDocId(photoId), 'photo.delete');
  }

  /** The declared bytes of the unfinished uploads `username` started (security audit M2). */
  async pendingUploadBytes(username: string): Promise<number> {
    try {
      const res = await this.photos.view<unknown>(UPLOAD_QUOTA_DESIGN, 'pending_bytes_by_user', { key: username, reduce: true, group: true });
      const value = res.rows[0]?.value;
      return typeof value === 'number' ? value : 0;
    } catch (err) {
      throw storeError(err, 'upload.quota');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Audit (append-only: there is no update or delete)

  async appendAudit(entry: AuditEntry, at: number): Promise<AuditRecord> {
    const id = `${String(at).padStart(13, '0')}-${randomBytes(8).toString('hex')}`;
    const record: AuditRecord = { ...entry, id, at };
    if (!(await this.create(this.audit, `audit:${id}`, 'audit', record, 'audit.append'))) {
      throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'audit.append' } });
    }
    return record;
  }

  /**
   * Newest first. Uses the most selective index (user, then device, then event, then time) and
   * filters the rest; scans a bounded number of rows per call and returns a cursor to go on.
   * @throws INPUT_INVALID for a cursor that this query did not produce.
   */
  async queryAudit(q: AuditQuery): Promise<Page<AuditRecord>> {
    const [view, prefix] =
      q.username !== undefined
        ? ['by_user', [q.username]]
        : q.imei !== undefined
          ? ['by_device', [q.imei]]
          : q.event !== undefined
            ? ['by_event', [q.event]]
            : ['by_time', []];
    const hi = q.to ?? Number.MAX_SAFE_INTEGER;
    const lo = q.from ?? 0;
    let startkey: unknown[] = q.cursor === undefined ? [...prefix, hi, HIGH] : decodeCursor(q.cursor, prefix);
    let skip = q.cursor === undefined ? 0 : 1;
    const endkey = [...prefix, lo];
    const batch = Math.min(Math.max(q.limit * 2, 50), 500);
    const items: AuditRecord[] = [];
    let scanned = 0;
    for (;;) {
      const rows = await this.viewRows(
        this.audit,
        view,
        { startkey, endkey, descending: true, include_docs: true, limit: batch, skip },
        'audit.query',
      );
      for (const row of rows) {
        scanned += 1;
        const doc = row.doc;
        if (!doc) continue;
        const rec = strip<AuditRecord>(doc);
        const matches =
          (q.username === undefined || rec.username === q.username || rec.actor === q.username) &&
          (q.imei === undefined || rec.imei === q.imei) &&
          (q.event === undefined || rec.event === q.event) &&
          rec.at >= lo &&
          rec.at <= hi;
        if (matches) items.push(rec);
        if (items.length === q.limit) return { items, nextCursor: encodeCursor(row.key) };
      }
      const last = rows[rows.length - 1];
      if (rows.length < batch || last === undefined) return { items, nextCursor: null };
      if (scanned >= PAGE_SCAN_LIMIT) return { items, nextCursor: encodeCursor(last.key) };
      startkey = last.key as unknown as unknown[];
      skip = 1;
    }
  }
}

/** A photo document as the server's record type (without its attachment stub). */
function photoOf(doc: Doc | undefined): PhotoRecord | undefined {
  if (doc === undefined || doc['type'] !== 'photo') return undefined;
  const { _attachments: _a, ...rest } = strip<PhotoRecord & { _attachments?: unknown }>(doc);
  return rest;
}

/** The record owning a photo id: its `owner:` document, else (ids stored before owners were kept) the photo document's record. */
function ownerOf(owner: Doc | undefined, photo: Doc | undefined): string | undefined {
  const recordId = owner?.['type'] === 'photo-owner' ? owner['recordId'] : photo?.['type'] === 'photo' ? photo['recordId'] : undefined;
  return typeof recordId === 'string' ? recordId : undefined;
}

/** Creates the repository (no I/O until `init()`). */
export function createCouchRepository(options: CouchRepositoryOptions): CouchRepository {
  return new CouchRepository(options);
}
