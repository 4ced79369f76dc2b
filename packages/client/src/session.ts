import { dbFileName, type DbKind } from '@fieldvault/crypto';
import {
  FieldvaultError,
  NODE_ID_PATTERN,
  ROLES,
  isFieldvaultError,
  type ChildRecord,
  type FieldValue,
  type FormDefinition,
  type KeyRecord,
  type RecordSearchQuery,
  type RecordSearchResponse,
  type Role,
} from '@fieldvault/protocol';
import { describeOpenConflicts, type OpenConflict } from './conflicts.js';
import type { Logger } from './logger.js';
import type { MigrationResult } from './migration.js';
import { Mutex } from './mutex.js';
import type { PhotoContent, PhotoInput, PhotoStore, RecordWithPhotos, StoredPhoto } from './photo-store.js';
import type { ListOptions, RecordQuery, RecordStore } from './record-store.js';
import { bearerTokenFor, revokeServerLogins, serverLoginsOf, type ServerLogin } from './server-logins.js';
import type { StorageHandle } from './storage-adapter.js';
import { checkSyncOptions, runSync, type RetirementHold, type SyncOptions, type SyncSummary } from './sync-engine.js';
import { ServerSyncState, knownServerIds, saveServerRole, serverRolesOf, syncedServerIds, type PendingCounts } from './sync-state.js';
import type { Transport } from './transport.js';
import type { WriteGateHold } from './write-gate.js';

/** What a session holds while it is open; all of it is dropped at logout. */
export interface SessionState {
  readonly db: StorageHandle;
  /** Holds back the session's write transactions (write-gate.ts): a retired device's check and wipe. */
  readonly writeGate: WriteGateHold;
  /** The key of the session's database. */
  readonly key: Uint8Array;
  readonly records: RecordStore;
  readonly photos: PhotoStore;
  /** The user's unverified key, when they have one (for `moveUnverifiedRecords`). */
  readonly unverifiedKey: Uint8Array | undefined;
  readonly logger: Logger;
  /** Wall clock in ms. */
  readonly now: () => number;
  /** Largest photo this device keeps (downloads above it are refused). */
  readonly photoMaxBytes: number;
}

/** Sessions closed by their device's retirement wipe: their calls say so (VAULT_WIPED), not "log in again". */
export const wipedSessions = new WeakSet<Session>();

/** The device side of a session: what it calls back into. */
export interface SessionHost {
  moveUnverifiedRecords(session: Session, state: SessionState): Promise<MigrationResult>;
  claimUnverifiedRecords(session: Session, state: SessionState, oldPassword: string): Promise<MigrationResult>;
  sessionClosed(session: Session): void;
  /** A server reported DEVICE_BLACKLISTED: wipe the device and return the error to throw. */
  deviceBlacklisted(serverId: string, reported: FieldvaultError): Promise<FieldvaultError>;
  /**
   * A retired device finished its final sync: with the device locked and `gate` held, wipe it
   * when `nothingLeft()` says so. False (nothing wiped) when it does not, or when another login
   * replaced `session` meanwhile.
   */
  retireIfNothingLeft(session: Session, serverId: string, gate: WriteGateHold, nothingLeft: () => Promise<boolean>): Promise<boolean>;
  /** The name of every database on the device (the storage adapter's `list`). */
  databaseNames(): Promise<string[]>;
}

/** A server this session's database syncs with, for a status screen. */
export interface KnownServer {
  readonly serverId: string;
  /** True when this session holds an online login (a token) for it: it can sync now. */
  readonly loggedIn: boolean;
  /** The user's role there: from this session's login, else as remembered from their last online login. */
  readonly role: Role | null;
  /** When the last sync with it finished (ISO 8601), or null. */
  readonly lastSyncAt: string | null;
  /** What it has not acknowledged yet. */
  readonly pending: PendingCounts;
}

const REVIEWERS: readonly Role[] = ['supervisor', 'admin'];

/**
 * One logged-in user on the device: the records and photos of the one database they see.
 * Verified users see the verified database; a user whose server key differs from the device's
 * sees that server's temporary database; unverified users see only the records they created.
 * After `logout` every method fails with VAULT_LOCKED.
 */
export class Session {
  readonly username: string;
  /** Which database this session sees. */
  readonly kind: DbKind;
  /** Key id of that database's key (public). */
  readonly keyId: string;
  /** The key record of that key (verified and temporary databases). */
  readonly keyRecord: KeyRecord | undefined;
  #state: SessionState | undefined;
  #unverifiedLocked: boolean;
  readonly #host: SessionHost;
  readonly #syncing = new Mutex();

  /** @internal Sessions are made by `Device`. */
  constructor(
    host: SessionHost,
    init: { username: string; kind: DbKind; keyId: string; keyRecord: KeyRecord | undefined; state: SessionState; unverifiedLocked?: boolean },
  ) {
    this.#host = host;
    this.username = init.username;
    this.kind = init.kind;
    this.keyId = init.keyId;
    this.keyRecord = init.keyRecord;
    this.#state = init.state;
    this.#unverifiedLocked = init.unverifiedLocked === true;
  }

  /**
   * True when this user still has an unverified database on this phone (records made after an
   * offline sign-up) that the password of this login does not open: the phone password chosen at
   * sign-up differs from this one (typically the server password set with an invitation token).
   * Those records are not in the database this session sees and no sync sends them: ask the user
   * for the password they chose on the phone and call `claimUnverifiedRecords(oldPassword)`. The
   * number of records is unknown until then (the database is encrypted under that password).
   * Always false for an unverified session.
   */
  get unverifiedRecordsLocked(): boolean {
    return this.#unverifiedLocked;
  }
  /** False once logged out. */
  get active(): boolean {
    return this.#state !== undefined;
  }

  /**
   * The servers this user logged in to online during this session (`Device.loginOnline`), with
   * their role and expiry. The servers' session tokens stay inside the SDK, in memory only, and
   * are forgotten at logout.
   */
  get serverLogins(): ServerLogin[] {
    return this.#state === undefined ? [] : serverLoginsOf(this);
  }

  #open(): SessionState {
    if (this.#state === undefined) throw this.#closedError();
    return this.#state;
  }

  /** Why this session's calls fail once it is closed: its device's retirement wipe, or a logout. */
  #closedError(): FieldvaultError {
    return new FieldvaultError(wipedSessions.has(this) ? 'VAULT_WIPED' : 'VAULT_LOCKED');
  }

  /**
   * A photo save that the session's closing overtook. Such a save refuses to encrypt under the
   * zeroed key with VAULT_LOCKED (photo-store.ts), which says "log in again"; when the close was
   * the retirement wipe (the save's input was still being read when the wipe ran), the app must
   * hear VAULT_WIPED instead, as any other save held at the write gate does (session 18, task I).
   */
  async #photoSave<T>(save: (state: SessionState) => Promise<T>): Promise<T> {
    try {
      return await save(this.#open());
    } catch (err) {
      if (isFieldvaultError(err) && err.code === 'VAULT_LOCKED' && this.#state === undefined) throw this.#closedError();
      throw err;
    }
  }

  /**
   * Creates a record (client UUID, device clock timestamps); the values must fit the form. A key
   * whose value is `undefined` is a field not given, as in JSON.
   * @throws RECORD_INVALID, RECORD_TOO_LARGE, INPUT_INVALID, VAULT_LOCKED
   */
  async createRecord(fields: Readonly<Record<string, FieldValue | undefined>>): Promise<ChildRecord> {
    return this.#open().records.create(fields);
  }

  /**
   * Creates a record together with its photos, in one commit: a kill (or any failure) leaves
   * either nothing or the whole record with every photo. Everything is checked before anything is
   * written (the form, each photo's type and size, the photo count); each photo is metadata-stripped
   * and encrypted as with `addPhoto`. `photos` in the result follow the order given.
   * @throws RECORD_INVALID, RECORD_TOO_LARGE, INPUT_INVALID, PHOTO_TOO_LARGE, PHOTO_TYPE_UNSUPPORTED, VAULT_LOCKED,
   *   VAULT_WIPED (the device's retirement wiped it meanwhile)
   */
  async createRecordWithPhotos(fields: Readonly<Record<string, FieldValue | undefined>>, photos: readonly PhotoInput[]): Promise<RecordWithPhotos> {
    return this.#photoSave((state) => state.photos.createWithPhotos(fields, photos));
  }

  /**
   * Changes fields of a visible record; the old values stay in its history. `null` clears a
   * field; a key whose value is `undefined` changes nothing.
   * @throws VAULT_RECORD_NOT_FOUND, RECORD_INVALID, RECORD_TOO_LARGE, INPUT_INVALID, VAULT_LOCKED
   */
  async updateRecord(id: string, changes: Readonly<Record<string, FieldValue | undefined>>): Promise<ChildRecord> {
    return this.#open().records.update(id, changes);
  }

  /**
   * Marks a visible record deleted (a versioned edit that syncs like any other). As on the
   * server, deleting a record someone else created needs a supervisor or admin: the user's roles
   * known on this phone (this session's online logins, else the ones remembered from their last
   * online login to each server) must all be supervisor or admin — otherwise a server would
   * refuse the deletion at every sync.
   * @throws RECORD_FORBIDDEN when the record was created by another user and the user is not known as a reviewer everywhere.
   * @throws VAULT_RECORD_NOT_FOUND, VAULT_LOCKED
   */
  async deleteRecord(id: string): Promise<ChildRecord> {
    const state = this.#open();
    return state.records.remove(id, await this.#isReviewer(state));
  }

  /**
   * The unresolved conflicts of a visible record, each with the `id` `resolveConflict` takes and
   * both values (`winnerValue` is the field's current value). Anyone who sees the record may list
   * them; only reviewers resolve them.
   * @throws VAULT_RECORD_NOT_FOUND, VAULT_LOCKED
   */
  async openConflicts(recordId: string): Promise<OpenConflict[]> {
    return describeOpenConflicts(await this.#open().records.get(recordId));
  }

  /**
   * Marks a conflict of a visible record resolved. `keep: 'winner'` (the default) keeps the field's
   * current value; `keep: 'loser'` first writes the losing value as a new edit of the field (the
   * winning one stays in history), then resolves the conflict that edit leaves. Only supervisors
   * and admins resolve conflicts, on the server and therefore here (see `deleteRecord` for how the
   * role is known). `conflictId` is an `id` from `openConflicts(recordId)`.
   * @throws RECORD_FORBIDDEN when the user is not known as a supervisor or admin on every server.
   * @throws RECORD_CONFLICT_NOT_FOUND, VAULT_RECORD_NOT_FOUND, INPUT_INVALID, VAULT_LOCKED
   */
  async resolveConflict(recordId: string, conflictId: string, options: { readonly keep?: 'winner' | 'loser' } = {}): Promise<ChildRecord> {
    const state = this.#open();
    const keep = (options as { keep?: unknown } | null)?.keep ?? 'winner';
    if (keep !== 'winner' && keep !== 'loser') throw new FieldvaultError('INPUT_INVALID', { detail: "keep: 'winner' or 'loser'", details: { field: 'keep' } });
    if (!(await this.#isReviewer(state))) {
      throw new FieldvaultError('RECORD_FORBIDDEN', { detail: 'resolved: only supervisors resolve conflicts', details: { field: 'resolved' } });
    }
    if (keep === 'winner') return state.records.resolve(recordId, conflictId);
    const conflict = describeOpenConflicts(await state.records.get(recordId)).find((c) => c.id === conflictId);
    if (conflict === undefined) throw new FieldvaultError('RECORD_CONFLICT_NOT_FOUND');
    // The edit's base is the winner, so the loser stays a losing head: the conflict is now
    // "this edit vs the same loser", under a new id (see fieldConflicts in protocol's merge).
    const edited = await state.records.update(recordId, { [conflict.field]: conflict.loserValue });
    const after = describeOpenConflicts(edited).find((c) => c.field === conflict.field && c.loser === conflict.loser);
    return after === undefined ? edited : state.records.resolve(recordId, after.id);
  }

  /** The user's roles known on this phone, by server: this session's logins over the remembered ones. */
  async #roles(state: SessionState): Promise<Map<string, Role>> {
    const roles = this.kind === 'unverified' ? new Map<string, Role>() : await serverRolesOf(state.db, this.username);
    for (const login of serverLoginsOf(this)) roles.set(login.serverId, login.role);
    return roles;
  }

  async #isReviewer(state: SessionState): Promise<boolean> {
    const roles = [...(await this.#roles(state)).values()];
    return roles.length > 0 && roles.every((r) => REVIEWERS.includes(r));
  }

  /**
   * A visible record.
   * @throws VAULT_RECORD_NOT_FOUND when no record with this id is visible to this user, VAULT_LOCKED
   */
  async getRecord(id: string, options: { readonly includeDeleted?: boolean } = {}): Promise<ChildRecord> {
    return this.#open().records.get(id, options);
  }

  /**
   * Visible records, newest first.
   * @throws INPUT_INVALID, VAULT_LOCKED
   */
  async listRecords(options: ListOptions = {}): Promise<ChildRecord[]> {
    return this.#open().records.list(options);
  }

  /**
   * Local search by name, age range, location, flags …, over the visible records only.
   * @throws INPUT_INVALID, VAULT_LOCKED
   */
  async searchRecords(query: RecordQuery): Promise<ChildRecord[]> {
    return this.#open().records.search(query);
  }

  /**
   * How many visible records match `query` (a `searchRecords` query; `{}` counts every visible
   * record not deleted), on all pages: `limit` and `offset` are ignored.
   * @throws INPUT_INVALID, VAULT_LOCKED
   */
  async countRecords(query: RecordQuery = {}): Promise<number> {
    return this.#open().records.count(query);
  }

  /**
   * Adds a photo (JPEG, PNG or WebP, metadata stripped, encrypted) to a visible record.
   * @throws VAULT_RECORD_NOT_FOUND, PHOTO_TOO_LARGE, PHOTO_TYPE_UNSUPPORTED, RECORD_TOO_LARGE, VAULT_LOCKED,
   *   VAULT_WIPED (the device's retirement wiped it meanwhile)
   */
  async addPhoto(recordId: string, data: PhotoInput): Promise<StoredPhoto> {
    return this.#photoSave((state) => state.photos.add(recordId, data));
  }

  /**
   * A photo of a visible record, fully verified before it is returned.
   * @throws VAULT_RECORD_NOT_FOUND, PHOTO_NOT_FOUND, CRYPTO_FILE_TAMPERED, VAULT_LOCKED
   */
  async readPhoto(recordId: string, photoId: string): Promise<PhotoContent> {
    return this.#open().photos.read(recordId, photoId);
  }

  /**
   * A photo of a visible record as a stream of verified chunks; the whole photo is verified only
   * when the iteration ends without throwing (see `PhotoStore.stream`).
   * @throws VAULT_RECORD_NOT_FOUND, PHOTO_NOT_FOUND, CRYPTO_FILE_TAMPERED (while iterating), VAULT_LOCKED
   */
  async *photoStream(recordId: string, photoId: string): AsyncGenerator<Uint8Array, void, undefined> {
    yield* this.#open().photos.stream(recordId, photoId);
  }

  /**
   * Removes a photo from a visible record and deletes its file.
   * @throws VAULT_RECORD_NOT_FOUND, PHOTO_NOT_FOUND, VAULT_LOCKED
   */
  async removePhoto(recordId: string, photoId: string): Promise<ChildRecord> {
    return this.#open().photos.remove(recordId, photoId);
  }

  /**
   * Flow 1: moves the records (and photos) this user created while unverified into the database
   * this session sees, then deletes them from the unverified database. Crash-safe and resumed at
   * the next login. Returns zero counts when the user has no unverified database.
   * @throws VAULT_FORBIDDEN for an unverified session (there is nowhere to move to), VAULT_LOCKED
   */
  async moveUnverifiedRecords(): Promise<MigrationResult> {
    const state = this.#open();
    if (this.kind === 'unverified') throw new FieldvaultError('VAULT_FORBIDDEN', { detail: 'the session is unverified' });
    return this.#host.moveUnverifiedRecords(this, state);
  }

  /**
   * Flow 1 for a user whose phone password (chosen at the offline sign-up) differs from the one
   * this session was opened with (see `unverifiedRecordsLocked`): unlocks their unverified
   * database with `oldPassword`, moves its records and photos into the database this session
   * sees (they are then pushed by the next sync, with their ids unchanged) and deletes the emptied
   * unverified database and its keyring entry. Journaled and crash-safe like
   * `moveUnverifiedRecords`: a process killed mid-way finishes the move at the next login that
   * opens this database. Returns zero counts when the user has no unverified database here.
   * @throws VAULT_WRONG_PASSWORD when `oldPassword` does not open the unverified database (nothing changed).
   * @throws VAULT_FORBIDDEN for an unverified session (log in online first), INPUT_INVALID, VAULT_LOCKED,
   * VAULT_KEYRING_CORRUPT, VAULT_STORAGE_FAILED
   */
  async claimUnverifiedRecords(oldPassword: string): Promise<MigrationResult> {
    const state = this.#open();
    if (typeof oldPassword !== 'string') throw new FieldvaultError('INPUT_INVALID', { detail: 'oldPassword: must be a string', details: { field: 'oldPassword' } });
    if (this.kind === 'unverified') throw new FieldvaultError('VAULT_FORBIDDEN', { detail: 'the session is unverified: log in online first' });
    const result = await this.#host.claimUnverifiedRecords(this, state, oldPassword);
    this.#unverifiedLocked = false;
    return result;
  }

  // ---------------------------------------------------------------------------------- sync

  /**
   * The token of this session's online login to `transport`'s server, checked before anything is
   * sent: the login must have been made through a transport with the same identity (audit H2).
   * @throws SYNC_LOGIN_REQUIRED, SYNC_TRANSPORT_CHANGED, INPUT_INVALID
   */
  #tokenFor(transport: Transport): string {
    const serverId = (transport as Partial<Transport> | undefined)?.serverId;
    if (typeof serverId !== 'string' || !NODE_ID_PATTERN.test(serverId)) {
      throw new FieldvaultError('INPUT_INVALID', { detail: 'transport.serverId: a server node id', details: { field: 'transport' } });
    }
    if (this.kind === 'unverified') {
      throw new FieldvaultError('SYNC_LOGIN_REQUIRED', { detail: 'the session is unverified', details: { serverId } });
    }
    const login = bearerTokenFor(this, transport);
    if (login.found === 'none') {
      throw new FieldvaultError('SYNC_LOGIN_REQUIRED', { detail: `no online login to ${serverId} in this session`, details: { serverId } });
    }
    if (login.found === 'other-transport') {
      throw new FieldvaultError('SYNC_TRANSPORT_CHANGED', { detail: `the login to ${serverId} was made through another address or TLS trust`, details: { serverId } });
    }
    return login.token;
  }

  /** DEVICE_BLACKLISTED from a server wipes the device (as at login); other errors pass through. */
  async #reported<T>(serverId: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (isFieldvaultError(err) && err.code === 'DEVICE_BLACKLISTED') throw await this.#host.deviceBlacklisted(serverId, err);
      throw err;
    }
  }

  /**
   * Syncs the database this session sees (verified, or this server's temporary one) with one
   * server (DESIGN.md §4): pushes what that server has not acknowledged, pulls from that server's
   * checkpoint, then uploads the photos it lacks and downloads the ones the phone lacks.
   * Acknowledgements and checkpoints are kept per server, so a phone syncs with A and B
   * independently and relays records between them. A checkpoint moves only with the local commit
   * of its page, so a sync killed or cancelled at any point is simply run again. Records the
   * server refuses are reported in `failed` (with its code) and tried again at the next sync,
   * without blocking the others. Requests are retried with exponential backoff on network, store
   * and rate-limit failures. Syncs of one session run one after the other.
   *
   * The session must have logged in online to this server (`Device.loginOnline`): that is what
   * verifies a user (flow 1: key issue, then their unverified records move into the verified
   * database, ready to push).
   *
   * **Retired device**: when the server reports `deviceStatus: 'retired'` and nothing on the
   * phone would be lost — no refused record or photo, nothing pending for this server nor for any
   * other server this database has synced with (only those in `options.servers` when given), no
   * other database on the phone (another user's unverified records) — the SDK wipes the device (every database, photo, the keyring and the
   * device key, as `Device.wipe()`) and the summary says `wiped: true`; the session is then logged
   * out. Otherwise the summary's `retirementHold` says what it waits for, and the device keeps its
   * data until a later sync with the retiring server finds nothing left. A local save made while
   * that check runs waits for it (write-gate.ts): saved as usual if the device keeps its data,
   * refused with VAULT_WIPED after a wipe.
   *
   * **Blacklisted device**: DEVICE_BLACKLISTED from the server wipes the device, as at login.
   * @throws SYNC_LOGIN_REQUIRED when the session is unverified or has no online login to this server.
   * @throws SYNC_TRANSPORT_CHANGED when the login to this server id was made through another
   * transport identity (another base URL or TLS trust): nothing is sent; log in online through this one.
   * @throws INPUT_INVALID when an option is malformed.
   * @throws SYNC_CANCELLED when `signal` fired (everything committed before stays).
   * @throws TRANSPORT_UNREACHABLE, STORE_UNAVAILABLE, RATE_LIMITED after the retries;
   * TRANSPORT_BAD_RESPONSE, TRANSPORT_TLS_UNTRUSTED (nothing of that answer was written);
   * SESSION_INVALID (log in online again); SYNC_CHECKPOINT_INVALID; HLC_TOO_FAR_AHEAD (a pulled
   * version is dated beyond the allowed skew of this device's clock: correct the clock);
   * DEVICE_BLACKLISTED (after wiping); VAULT_LOCKED, VAULT_STORAGE_FAILED
   */
  async sync(options: SyncOptions): Promise<SyncSummary> {
    checkSyncOptions(options);
    this.#open();
    const token = this.#tokenFor(options.transport);
    const serverId = options.transport.serverId;
    return this.#syncing.run(async () => {
      const state = this.#open();
      const summary = await this.#reported(serverId, () =>
        runSync({ db: state.db, records: state.records, photos: state.photos, token, logger: state.logger, now: state.now, photoMaxBytes: state.photoMaxBytes }, options),
      );
      if (summary.deviceStatus !== 'retired') return summary;
      // The check that nothing is left and the wipe run with the device locked and this session's
      // writes held (Device, write-gate.ts): nothing saved in between can be wiped unsent.
      let hold: RetirementHold | undefined;
      const wiped = await this.#host.retireIfNothingLeft(this, serverId, state.writeGate, async () => {
        hold = await this.#retirementHold(state, serverId, options.servers);
        return summary.failed.length === 0 && hold.servers.length === 0 && hold.otherDatabases === 0;
      });
      if (wiped) return { ...summary, wiped: true };
      const held = hold as RetirementHold | undefined;
      if (held !== undefined) {
        state.logger.warn({ serverId, failed: summary.failed.length, waitingFor: held.servers, otherDatabases: held.otherDatabases }, 'retired device: data left to sync; not wiped yet');
        return { ...summary, retirementHold: held };
      }
      // Another login replaced this session before the check: the next sync checks again.
      return summary;
    });
  }

  /**
   * What keeps a retired device from being wiped: any server this database synced with that lacks
   * some of it (the retiring one, and others too — a record pulled from A may exist nowhere but
   * on A and this phone as far as B is concerned, and B's admin did not retire anything), and any
   * other database on the phone, which may hold records that never reached a server.
   * `stillUsed` (`SyncOptions.servers`) leaves out the servers the app no longer syncs with: what
   * is pending for a removed or decommissioned server would otherwise hold the wipe forever.
   */
  async #retirementHold(state: SessionState, retiringServer: string, stillUsed: readonly string[] | undefined): Promise<RetirementHold> {
    const servers: Array<{ serverId: string; records: number; photos: number }> = [];
    const synced = await syncedServerIds(state.db);
    const kept = stillUsed === undefined ? synced : synced.filter((id) => stillUsed.includes(id));
    const ids = new Set([retiringServer, ...kept]);
    for (const serverId of [...ids].sort()) {
      const pending = await new ServerSyncState(state.db, serverId).pendingCounts();
      if (pending.records > 0 || pending.photos > 0) servers.push({ serverId, records: pending.records, photos: pending.photos });
    }
    const mine = dbFileName(state.key);
    const otherDatabases = (await this.#host.databaseNames()).filter((name) => name !== mine).length;
    return { servers, otherDatabases };
  }

  /**
   * What `serverId` has not acknowledged from this session's database: records changed here (or
   * received from another server) since it last stored them, and photos on this phone it is not
   * known to hold.
   * @throws INPUT_INVALID, VAULT_LOCKED
   */
  async pendingCounts(serverId: string): Promise<PendingCounts> {
    const state = this.#open();
    if (typeof serverId !== 'string' || !NODE_ID_PATTERN.test(serverId)) {
      throw new FieldvaultError('INPUT_INVALID', { detail: 'serverId: a server node id', details: { field: 'serverId' } });
    }
    return new ServerSyncState(state.db, serverId).pendingCounts();
  }

  /**
   * The servers this session's database has synced with, or that the user logged in to online
   * (this session, or remembered from earlier logins), with what each has not acknowledged.
   * @throws VAULT_LOCKED
   */
  async knownServers(): Promise<KnownServer[]> {
    const state = this.#open();
    const logins = new Map(serverLoginsOf(this).map((l) => [l.serverId, l]));
    const roles = await this.#roles(state);
    const ids = new Set([...(this.kind === 'unverified' ? [] : await knownServerIds(state.db)), ...logins.keys()]);
    const out: KnownServer[] = [];
    for (const serverId of [...ids].sort()) {
      const sync = new ServerSyncState(state.db, serverId);
      out.push({
        serverId,
        loggedIn: logins.has(serverId),
        role: roles.get(serverId) ?? null,
        lastSyncAt: this.kind === 'unverified' ? null : await sync.lastSyncAt(),
        pending: this.kind === 'unverified' ? { records: 0, photos: 0 } : await sync.pendingCounts(),
      });
    }
    return out;
  }

  /**
   * Server-side search (`GET /v1/records/search`) for a verified user logged in online to this
   * server: by name or location words (prefix, any case), sex, age range, flags, creator,
   * `needsReview`; paged with `cursor` / `nextCursor`. Nothing is stored on the phone.
   * @throws SYNC_LOGIN_REQUIRED, SYNC_TRANSPORT_CHANGED, INPUT_INVALID (a malformed criterion), SYNC_CHECKPOINT_INVALID (a
   * cursor from another search), TRANSPORT_*, SESSION_INVALID, DEVICE_BLACKLISTED (after wiping), VAULT_LOCKED
   */
  async searchServer(transport: Transport, query: Partial<RecordSearchQuery> = {}): Promise<RecordSearchResponse> {
    this.#open();
    const token = this.#tokenFor(transport);
    if (typeof transport.search !== 'function') throw new FieldvaultError('INPUT_INVALID', { detail: 'transport: no search', details: { field: 'transport' } });
    const full: RecordSearchQuery = { includeDeleted: false, limit: 20, ...query };
    return this.#reported(transport.serverId, () => transport.search(token, full));
  }

  /**
   * The child form the server publishes (`GET /v1/forms/child`), validated.
   * @throws SYNC_LOGIN_REQUIRED, SYNC_TRANSPORT_CHANGED, TRANSPORT_*, SESSION_INVALID, DEVICE_BLACKLISTED (after wiping), VAULT_LOCKED
   */
  async serverForm(transport: Transport): Promise<FormDefinition> {
    this.#open();
    const token = this.#tokenFor(transport);
    if (typeof transport.form !== 'function') throw new FieldvaultError('INPUT_INVALID', { detail: 'transport: no form', details: { field: 'transport' } });
    return this.#reported(transport.serverId, () => transport.form(token));
  }

  /**
   * @internal Remembers the role of every server login of this session in its database (called
   * by the online login), so the edit rights apply offline too.
   */
  async rememberServerRoles(): Promise<void> {
    const state = this.#open();
    if (this.kind === 'unverified') return;
    const at = new Date(state.now()).toISOString();
    await state.db.transaction(async (tx) => {
      for (const login of serverLoginsOf(this)) if (ROLES.includes(login.role)) await saveServerRole(tx, login.serverId, this.username, login.role, at);
    });
  }

  /**
   * Closes the database and drops the keys from memory, then ends the user's server sessions:
   * each server this session logged in to is asked to revoke its token (best effort, at most a few
   * seconds, in parallel — an offline phone still logs out; the server session then expires on its
   * own). Logging out twice is a no-op.
   */
  async logout(): Promise<void> {
    const state = this.#state;
    if (state === undefined) return;
    this.#state = undefined;
    try {
      await state.db.close();
    } finally {
      state.key.fill(0);
      state.unverifiedKey?.fill(0);
      this.#host.sessionClosed(this);
      await revokeServerLogins(this, (serverId, code) =>
        state.logger.info({ serverId, code: code ?? null }, 'the server session could not be ended at logout; it expires on its own'),
      );
    }
  }
}
