import {
  DB_KEY_LENGTH,
  dbFileName,
  defaultKdfParams,
  deriveKek,
  fromBase64,
  generateDbKey,
  kdfBounds,
  keyId,
  toBase64,
  unwrapKeyForUser,
  unwrapSuccessor,
  wrapKeyForUser,
  wrapSuccessor,
  type DbKind,
  type KdfParams,
  type WrappedKeyEntry,
} from '@fieldvault/crypto';
import {
  ChallengeResponseSchema,
  FieldvaultError,
  IMEI_PATTERN,
  LoginResponseSchema,
  MAX_PHOTO_BYTES,
  NODE_ID_PATTERN,
  USERNAME_PATTERN,
  assertPasswordAcceptable,
  assertPasswordPolicy,
  checkSchema,
  compareKeyRecords,
  createClock,
  defaultChildForm,
  defaultPasswordPolicy,
  isFieldvaultError,
  loginSignatureMessage,
  parseFormDefinition,
  parseKeyRecord,
  type FormDefinition,
  type KeyRecord,
  type LoginBody,
  type LoginResponse,
  type PasswordPolicy,
  SignupRequestResponseSchema,
  SignupStatusResponseSchema,
  signupSignatureMessage,
  type ChildRecord,
  type PushResult,
  type SignupStatus,
} from '@fieldvault/protocol';
import { GatedHandle, type WriteGateHold } from './write-gate.js';
import { blockedError, readBlockedMark, removeBlockedMark, writeBlockedMark, type BlockedMark } from './blocked-mark.js';
import { createFileDeviceKeyStore, type DeviceKeyStore } from './device-key-store.js';
import { TEMP_FILE_MARKER, type FileSystem } from './file-system.js';
import {
  KEYRING_FILE,
  KeyringFile,
  currentKind,
  keyringImeiOf,
  entriesOf,
  latestKeyId,
  successorOf,
  withEntry,
  withPending,
  withSuccession,
  withoutEntries,
  withoutPending,
  type KeyringContent,
  type PendingMigration,
} from './keyring.js';
import { silentLogger, type Logger } from './logger.js';
import { countRecords, migrateData, type MigrationListener, type MigrationResult } from './migration.js';
import { Mutex } from './mutex.js';
import { createNodeFileSystem } from './node-file-system.js';
import { DEFAULT_PHOTO_MAX_BYTES, PHOTO_DIRECTORY, PhotoStore, removeInterruptedPhotoFiles } from './photo-store.js';
import { MAX_PAGE_SIZE, RecordStore } from './record-store.js';
import { revokeLogins, setServerLogin, takeServerLogins } from './server-logins.js';
import { DEFAULT_RETRY, isLoginRetryable, withRetry, type RetryOptions } from './retry.js';
import { Session, wipedSessions, type SessionHost, type SessionState } from './session.js';
import type { StorageAdapter, StorageHandle } from './storage-adapter.js';
import type { Transport } from './transport.js';
import { ensureSchema, readMeta } from './vault-schema.js';

/** Argon2id cost of the password-derived keys this device writes (the salt is always fresh). */
export interface KdfCost {
  /** Memory in KiB. */
  readonly m: number;
  /** Passes. */
  readonly t: number;
  /** Lanes. */
  readonly p: number;
}

export interface DeviceOptions {
  /** The SDK's directory: keyring, device key file and the hidden photo folder live here. */
  readonly directory: string;
  /** The device IMEI, 15 digits. Public: an identifier, bound into every wrapped key. */
  readonly imei: string;
  /** The encrypted database driver, e.g. `new SqlCipherStorage({ directory: join(directory, 'databases') })`. */
  readonly storage: StorageAdapter;
  /** The server connection, for the online login and sync (not used offline). */
  readonly transport?: Transport;
  /** Quiet by default. */
  readonly logger?: Logger;
  /** Wall clock in ms (tests pass a fake). */
  readonly now?: () => number;
  /** Argon2id cost for keys wrapped on this device; default m=64 MiB, t=3, p=1. Must lie within crypto's `kdfBounds`. */
  readonly kdf?: KdfCost;
  /** Password rules for offline sign-up and password change; default: the server's default policy. */
  readonly passwordPolicy?: PasswordPolicy;
  /** The form records are validated against on write; default `defaultChildForm`. */
  readonly form?: FormDefinition;
  /** Largest photo accepted, in bytes; default 10 MiB. */
  readonly photoMaxBytes?: number;
  /** File access; default node:fs rooted at `directory`. */
  readonly fileSystem?: FileSystem;
  /** Where the device's Ed25519 key pair lives; default a mode-0600 file beside the keyring. */
  readonly deviceKeyStore?: DeviceKeyStore;
  /** Called after each migration step (progress reporting; the crash tests kill the process here). */
  readonly onMigrationStep?: MigrationListener;
}

/** What `adoptVerifiedKey` is given by the online login. */
export interface AdoptKeyInput {
  readonly username: string;
  /** The password the server just accepted; the key is wrapped under it. */
  readonly password: string;
  /** The server's id (its node id): names the temporary database if one is needed. */
  readonly serverId: string;
  /** The winning key record the server returned. */
  readonly keyRecord: KeyRecord;
  /** The 32-byte key of that record. */
  readonly key: Uint8Array;
}

/** Options of `Device.loginOnline`. */
export interface OnlineLoginOptions {
  /** The server to log in to; default the device's `transport` option. */
  readonly transport?: Transport;
  /**
   * Retry when the server says to come back (AUTH_BUSY during a login storm, RATE_LIMITED, its
   * store restarting), waiting at least its Retry-After; default 5 tries from 500 ms. Network
   * failures are not retried (an offline phone is told at once).
   */
  readonly retry?: RetryOptions;
}

/** Records per sign-up request by default: the server's default push limit. */
const DEFAULT_SIGNUP_BATCH = 500;

/** Options of `Device.requestAccount` and `Device.accountStatus`. */
export interface AccountRequestOptions {
  /** The server to ask; default the device's `transport` option. It must implement `requestAccount` / `signupStatus`. */
  readonly transport?: Transport;
  /** Records per request (default 500, the server's default push limit); more are sent in further requests. */
  readonly batchRecords?: number;
}

/** What `Device.requestAccount` reports. */
export interface AccountRequestResult {
  readonly status: SignupStatus;
  /** When the server first received this request (ISO 8601). */
  readonly requestedAt: string;
  /** The user's records sent (all of them, in batches). */
  readonly sent: number;
  /** Records the server holds in quarantine for this request after the last batch. */
  readonly quarantined: number;
  /** The records the server refused, with its code (they stay on the phone and are pushed after approval). */
  readonly failed: readonly PushResult[];
}

/** Where a request stands on a server (`Device.accountStatus`). */
export interface AccountStatus {
  readonly status: SignupStatus;
  readonly requestedAt: string;
  readonly decidedAt: string | null;
}

/** A user with keys on this device, and which kinds of database they can open. */
export interface DeviceUser {
  readonly username: string;
  readonly kinds: readonly DbKind[];
}

interface ResolvedOptions {
  readonly imei: string;
  readonly storage: StorageAdapter;
  readonly transport: Transport | undefined;
  readonly logger: Logger;
  readonly now: () => number;
  readonly kdf: KdfCost | undefined;
  readonly passwordPolicy: PasswordPolicy;
  readonly form: FormDefinition;
  readonly photoMaxBytes: number;
  readonly onMigrationStep: MigrationListener | undefined;
}

/** One of a user's keyring entries, unwrapped, and where its key succession leads. */
interface UnlockedEntry {
  readonly entry: WrappedKeyEntry;
  /** The key at the end of the succession chain (the entry's own key when it has none). */
  readonly keyId: string;
  readonly key: Uint8Array;
}

interface Unlocked {
  readonly entries: UnlockedEntry[];
  /** Every key reached, by key id (entries' own keys and every step of their chains). */
  readonly keys: Map<string, Uint8Array>;
}

interface Target {
  readonly kind: DbKind;
  readonly keyId: string;
  readonly key: Uint8Array;
  readonly record: KeyRecord | undefined;
}

function inputInvalid(field: string, why: string): FieldvaultError {
  return new FieldvaultError('INPUT_INVALID', { detail: `${field}: ${why}`, details: { field } });
}

function checkUsername(username: unknown): string {
  if (typeof username !== 'string' || !USERNAME_PATTERN.test(username)) {
    throw inputInvalid('username', 'lowercase letters, digits, ".", "_" and "-", 1–64 characters');
  }
  return username;
}

function checkPassword(password: unknown, field = 'password'): string {
  if (typeof password !== 'string') throw inputInvalid(field, 'must be a string');
  return password;
}

function wipeKeys(keys: Iterable<Uint8Array>): void {
  for (const k of keys) k.fill(0);
}

/**
 * A challenge answer, checked: its schema, and the server id it names (when the server names one)
 * against the id the phone configured for it. Run before the password or a key is sent, so a
 * phone configured with the wrong id (its sync state would be kept under that id) sends nothing else.
 * @throws TRANSPORT_BAD_RESPONSE, TRANSPORT_SERVER_ID_MISMATCH
 */
function checkChallenge(answer: unknown, configured: string): { challenge: string; serverId: string | undefined } {
  const res = checkSchema(ChallengeResponseSchema, answer, 'TRANSPORT_BAD_RESPONSE');
  if (res.serverId !== undefined && res.serverId !== configured) {
    throw new FieldvaultError('TRANSPORT_SERVER_ID_MISMATCH', {
      detail: `the server says its id is "${res.serverId}", this phone has it as "${configured}"`,
      details: { serverId: configured, reported: res.serverId },
    });
  }
  return { challenge: res.challenge, serverId: res.serverId };
}

function resolveOptions(options: DeviceOptions): ResolvedOptions & { directory: string } {
  if (typeof options !== 'object' || options === null) throw inputInvalid('options', 'must be an object');
  const problems: string[] = [];
  const { directory, imei, storage, kdf, photoMaxBytes, now, logger } = options;
  if (typeof directory !== 'string' || directory === '') problems.push('directory: a non-empty path');
  if (typeof imei !== 'string' || !IMEI_PATTERN.test(imei)) problems.push('imei: 15 digits');
  if (typeof storage !== 'object' || storage === null || typeof storage.open !== 'function') problems.push('storage: a StorageAdapter');
  if (kdf !== undefined) {
    for (const name of ['m', 't', 'p'] as const) {
      const v = kdf[name];
      const { min, max } = kdfBounds[name];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) problems.push(`kdf.${name}: an integer in ${min} … ${max}`);
    }
  }
  if (photoMaxBytes !== undefined && (!Number.isInteger(photoMaxBytes) || photoMaxBytes < 1 || photoMaxBytes > MAX_PHOTO_BYTES)) {
    problems.push(`photoMaxBytes: an integer in 1 … ${MAX_PHOTO_BYTES}`);
  }
  if (now !== undefined && typeof now !== 'function') problems.push('now: a function returning ms');
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger.warn !== 'function')) problems.push('logger: a pino-compatible logger');
  if (problems.length > 0) {
    throw new FieldvaultError('INPUT_INVALID', { detail: problems.join('; '), details: { field: problems[0]?.split(':')[0] ?? 'options' } });
  }
  return {
    directory,
    imei,
    storage,
    transport: options.transport,
    logger: logger ?? silentLogger,
    now: now ?? Date.now,
    kdf,
    passwordPolicy: options.passwordPolicy === undefined ? defaultPasswordPolicy : assertPasswordPolicy(options.passwordPolicy),
    form: options.form === undefined ? defaultChildForm : parseFormDefinition(options.form),
    photoMaxBytes: photoMaxBytes ?? DEFAULT_PHOTO_MAX_BYTES,
    onMigrationStep: options.onMigrationStep,
  };
}

/**
 * Opens the SDK on a device directory: validates the options, creates the directory (0700) and the
 * photo folder, and removes temporary files a crash may have left. Does not read the keyring yet,
 * so that a device with a damaged keyring can still be wiped.
 * @throws INPUT_INVALID listing every malformed option.
 * @throws RECORD_FORM_INVALID when `form` is malformed; CONFIG_INVALID when `passwordPolicy` is out of bounds.
 * @throws VAULT_STORAGE_FAILED when the directory cannot be created.
 * @throws VAULT_DEVICE_MISMATCH when the directory's keyring was created for another IMEI (nothing changed).
 */
/** A temporary file younger than this may be another process's write in progress (keyring-lock). */
const TEMP_FILE_GRACE_MS = 60_000;

/**
 * A leftover of an atomic write that never finished (`<random>.tmp-<ms>`): removed when the device
 * is opened. One written within the last minute is left alone: another `Device` on the same
 * directory (a second process) may be about to rename it into place, and removing it made that
 * write fail (ENOENT, seen in keyring-lock.test.ts under CI load).
 */
function isStaleTempFile(name: string, now: number): boolean {
  const at = name.indexOf(TEMP_FILE_MARKER);
  if (at === -1) return false;
  const written = Number(name.slice(at + TEMP_FILE_MARKER.length));
  return !Number.isSafeInteger(written) || now - written > TEMP_FILE_GRACE_MS || written > now + TEMP_FILE_GRACE_MS;
}

export async function createDevice(options: DeviceOptions): Promise<Device> {
  const resolved = resolveOptions(options);
  const fs = options.fileSystem ?? createNodeFileSystem(resolved.directory);
  await fs.mkdir('.');
  // A directory set up for another IMEI is the app's mistake, not damage: refuse it here with its
  // own code, before any call could suggest a wipe (audit M4). A damaged keyring passes (wipe works).
  const keyringBytes = await fs.readFile(KEYRING_FILE);
  const keyringImei = keyringBytes === undefined ? undefined : keyringImeiOf(keyringBytes);
  if (keyringImei !== undefined && keyringImei !== resolved.imei) {
    throw new FieldvaultError('VAULT_DEVICE_MISMATCH', { detail: 'the keyring in this directory was created for another IMEI', details: { field: 'imei' } });
  }
  await fs.mkdir(PHOTO_DIRECTORY);
  for (const dir of ['.', PHOTO_DIRECTORY]) {
    for (const name of await fs.list(dir)) {
      if (isStaleTempFile(name, Date.now())) await fs.remove(dir === '.' ? name : `${dir}/${name}`);
    }
  }
  return new Device(resolved, fs, options.deviceKeyStore ?? createFileDeviceKeyStore(fs));
}

/**
 * A shared field phone: its keyring, its databases (one verified, one unverified per unverified
 * user, temporary ones per server), its device key, and at most one open session.
 *
 * Unverified databases are per user: a key generated on the phone cannot be handed to a second
 * user offline without storing it in the clear (RapidFTR kept it in plain shared preferences),
 * so each unverified user gets their own, and unverified users cannot even decrypt each other's
 * records. The visibility rule (only records one created) is still applied in every read path.
 */
export class Device {
  /** The device IMEI. */
  readonly imei: string;
  readonly #o: ResolvedOptions;
  readonly #fs: FileSystem;
  readonly #keyring: KeyringFile;
  readonly #deviceKeys: DeviceKeyStore;
  readonly #mutex = new Mutex();
  /**
   * What a session may ask of its device (migrations, closing, wiping on a server's word). Private:
   * as public methods they let any code holding the device wipe it with no server involved (SDK
   * audit M10).
   */
  readonly #sessionHost: SessionHost = {
    moveUnverifiedRecords: (session, state) => this.#moveUnverifiedRecords(session, state),
    claimUnverifiedRecords: (session, state, oldPassword) => this.#claimUnverifiedRecords(session, state, oldPassword),
    sessionClosed: (session) => this.#sessionClosed(session),
    deviceBlacklisted: (serverId, reported) => this.#deviceBlacklisted(serverId, reported),
    retireIfNothingLeft: (session, serverId, gate, nothingLeft) => this.#retireIfNothingLeft(session, serverId, gate, nothingLeft),
    databaseNames: () => this.#o.storage.list(),
  };
  #session: Session | undefined;

  /** @internal Use `createDevice`. */
  constructor(options: ResolvedOptions, fs: FileSystem, deviceKeys: DeviceKeyStore) {
    this.imei = options.imei;
    this.#o = options;
    this.#fs = fs;
    this.#keyring = new KeyringFile(fs, options.imei);
    this.#deviceKeys = deviceKeys;
  }

  /** The server connection given at creation (the default transport of `loginOnline`). */
  get transport(): Transport | undefined {
    return this.#o.transport;
  }

  /** The open session, if a user is logged in. */
  get session(): Session | undefined {
    return this.#session;
  }

  // ---------------------------------------------------------------- keys and keyring helpers

  #kdfParams(): KdfParams {
    const params = defaultKdfParams();
    return this.#o.kdf === undefined ? params : { ...params, ...this.#o.kdf };
  }

  #wrap(username: string, password: string, key: Uint8Array, kind: DbKind, keyTimestamp: string | undefined): Promise<WrappedKeyEntry> {
    return wrapKeyForUser({
      password,
      key,
      username,
      imei: this.imei,
      kind,
      kdf: this.#kdfParams(),
      ...(keyTimestamp === undefined ? {} : { keyTimestamp }),
    });
  }

  /** Follows the key succession from `keyId` to the newest key, recording every key reached. */
  #follow(k: KeyringContent, keyId: string, key: Uint8Array, keys: Map<string, Uint8Array>): { keyId: string; key: Uint8Array } {
    let current = { keyId, key };
    const seen = new Set([keyId]);
    for (let s = successorOf(k, keyId); s !== undefined && !seen.has(s.toKeyId); s = successorOf(k, current.keyId)) {
      const next = keys.get(s.toKeyId) ?? unwrapSuccessor(current.key, s);
      keys.set(s.toKeyId, next);
      seen.add(s.toKeyId);
      current = { keyId: s.toKeyId, key: next };
    }
    return current;
  }

  /**
   * Unwraps every keyring entry of `username` that `password` opens and follows each key's
   * succession. A user with no entries costs one key derivation all the same, so the time taken
   * does not tell whether the user exists.
   */
  async #unlock(k: KeyringContent, username: string, password: string, equalizeTiming = true): Promise<Unlocked> {
    const keys = new Map<string, Uint8Array>();
    const entries: UnlockedEntry[] = [];
    const mine = entriesOf(k, username);
    if (mine.length === 0) {
      if (equalizeTiming) (await deriveKek(password, this.#kdfParams())).fill(0);
      return { entries, keys };
    }
    for (const entry of mine) {
      let key: Uint8Array;
      try {
        key = await unwrapKeyForUser(password, entry, { imei: this.imei });
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'VAULT_WRONG_PASSWORD') throw err;
        continue;
      }
      keys.set(entry.keyId, key);
      const final = this.#follow(k, entry.keyId, key, keys);
      entries.push({ entry, keyId: final.keyId, key: final.key });
    }
    if (entries.length > 0 && entries.length < mine.length) {
      this.#o.logger.warn({ username, entries: mine.length, opened: entries.length }, 'some keyring entries did not open with this password');
    }
    return { entries, keys };
  }

  /** The kind of database a key is for now: the device's verified key, a server's temporary key, or the entry's own kind. */
  #kindOf(k: KeyringContent, u: UnlockedEntry): DbKind {
    return currentKind(k, u.entry.kind, u.keyId);
  }

  #recordFor(k: KeyringContent, kind: DbKind, id: string): KeyRecord | undefined {
    if (kind === 'verified') return k.verified?.keyId === id ? k.verified : undefined;
    if (kind.startsWith('temporary:')) {
      const r = k.temporary[kind.slice('temporary:'.length)];
      return r?.keyId === id ? r : undefined;
    }
    return undefined;
  }

  /** Which database a login opens: the device's verified one, else a temporary one, else the user's own kind. */
  #choose(k: KeyringContent, u: Unlocked): Target {
    // Lower is better: the device's verified key, a server's current temporary key, any other
    // temporary or verified key, the user's unverified key.
    const rank = (x: UnlockedEntry): number => {
      const kind = this.#kindOf(k, x);
      if (kind === 'verified' && x.keyId === k.verified?.keyId) return 0;
      if (kind.startsWith('temporary:')) return this.#recordFor(k, kind, x.keyId) === undefined ? 2 : 1;
      return kind === 'verified' ? 2 : 3;
    };
    const best = [...u.entries].sort((a, b) => rank(a) - rank(b))[0];
    if (best === undefined) throw new FieldvaultError('VAULT_WRONG_PASSWORD');
    const kind = this.#kindOf(k, best);
    return { kind, keyId: best.keyId, key: best.key, record: this.#recordFor(k, kind, best.keyId) };
  }

  /**
   * The keyring with the user's entries re-wrapped where their key or kind changed (key succession
   * was followed), or all of them (`all`, for a password change) under `password`.
   */
  async #rewrap(k: KeyringContent, username: string, password: string, u: Unlocked, all: boolean): Promise<KeyringContent> {
    let next = k;
    for (const x of u.entries) {
      const kind = this.#kindOf(k, x);
      if (!all && kind === x.entry.kind && x.keyId === x.entry.keyId) continue;
      const entry = await this.#wrap(username, password, x.key, kind, this.#recordFor(k, kind, x.keyId)?.issuedAt ?? x.entry.keyTimestamp);
      next = withEntry(
        withoutEntries(next, (e) => e === x.entry),
        entry,
      );
    }
    return next;
  }

  async #openDb(key: Uint8Array, create: boolean): Promise<StorageHandle> {
    const db = await this.#o.storage.open(dbFileName(key), key, { create });
    try {
      await ensureSchema(db);
    } catch (err) {
      await db.close();
      throw err;
    }
    return db;
  }

  async #step(op: 'merge' | 'move', step: 'journal-written' | 'journal-cleared', p: { fromKeyId: string; toKeyId: string }): Promise<void> {
    await this.#o.onMigrationStep?.({ op, step, fromKeyId: p.fromKeyId, toKeyId: p.toKeyId });
  }

  /**
   * Runs one journaled migration to the end and clears its journal entry. `target`, when given,
   * is an open handle on the target database (an open session's).
   */
  async #runMigration(
    k: KeyringContent,
    op: PendingMigration,
    fromKey: Uint8Array,
    toKey: Uint8Array,
    target?: StorageHandle,
  ): Promise<{ keyring: KeyringContent; result: MigrationResult }> {
    const storage = this.#o.storage;
    const fromName = dbFileName(fromKey);
    let result: MigrationResult = { records: 0, photos: 0 };
    const started = Date.now();
    if (await storage.exists(fromName)) {
      const handle = target ?? (await this.#openDb(toKey, true));
      try {
        result = await migrateData({ storage, fs: this.#fs, logger: this.#o.logger, onStep: this.#o.onMigrationStep }, handle, {
          op: op.op,
          fromKeyId: op.fromKeyId,
          toKeyId: op.toKeyId,
          fromKey,
          toKey,
          fromName,
          ...(op.username === undefined ? {} : { username: op.username }),
        });
      } finally {
        if (target === undefined) await handle.close();
      }
    }
    let next = withoutPending(k, op);
    if (op.op === 'move' && op.username !== undefined) {
      const mover = op.username;
      next = withoutEntries(next, (e) => e.username === mover && e.kind === 'unverified' && e.keyId === op.fromKeyId);
      // The emptied unverified database goes once no other entry can open it.
      if (!next.entries.some((e) => e.keyId === op.fromKeyId) && (await storage.exists(fromName))) {
        const source = await this.#openDb(fromKey, false);
        const left = await countRecords(source).finally(() => source.close());
        if (left === 0) {
          await storage.remove(fromName);
          await this.#o.onMigrationStep?.({ op: op.op, step: 'source-deleted', fromKeyId: op.fromKeyId, toKeyId: op.toKeyId });
        }
      }
    }
    next = await this.#keyring.save(next);
    await this.#step(op.op, 'journal-cleared', op);
    this.#o.logger.info(
      { op: op.op, fromKeyId: op.fromKeyId, toKeyId: op.toKeyId, records: result.records, photos: result.photos, ms: Date.now() - started },
      'migration finished',
    );
    return { keyring: next, result };
  }

  /** Finishes every journaled migration whose target key is in `keys` (resume after a crash). */
  async #resumePending(k: KeyringContent, keys: ReadonlyMap<string, Uint8Array>): Promise<KeyringContent> {
    let current = k;
    for (const op of k.pending) {
      const toKey = keys.get(op.toKeyId);
      if (toKey === undefined) continue;
      const fromKey = unwrapSuccessor(toKey, op.sourceKey);
      try {
        current = (await this.#runMigration(current, op, fromKey, toKey)).keyring;
      } finally {
        fromKey.fill(0);
      }
    }
    return current;
  }

  #assertNoSession(username?: string): void {
    if (this.#session !== undefined && this.#session.username !== username) throw new FieldvaultError('VAULT_SESSION_OPEN');
  }

  async #openSession(k: KeyringContent, username: string, target: Target, u: Unlocked): Promise<Session> {
    const key = new Uint8Array(target.key);
    // Every write of the session goes through the gate: a retired device's last step holds it (write-gate.ts).
    const db = new GatedHandle(await this.#openDb(key, false));
    try {
      const last = await readMeta(db, 'clock');
      const clock = createClock({ node: this.imei, now: this.#o.now, ...(last === undefined ? {} : { last }) });
      const records = new RecordStore(db, {
        username,
        device: this.imei,
        onlyOwn: target.kind === 'unverified',
        clock,
        form: this.#o.form,
      });
      const photos = new PhotoStore(this.#fs, db, records, key, { maxBytes: this.#o.photoMaxBytes, username });
      // Photo saves (or removals) a kill interrupted: their files go now (vault-schema.ts, version 4).
      const orphans = await removeInterruptedPhotoFiles(this.#fs, db, key);
      if (orphans > 0) this.#o.logger.info({ username, kind: target.kind, photos: orphans }, 'files of interrupted photo saves removed');
      const unverified =
        target.kind === 'unverified' ? undefined : u.entries.find((x) => x.entry.kind === 'unverified' && k.entries.includes(x.entry));
      // An unverified database of this user that this password does not open: their records from
      // an offline sign-up under another password (the server password differs from the phone one).
      // Nothing moves them by itself; the app asks for the old password (`claimUnverifiedRecords`).
      const unverifiedLocked =
        target.kind !== 'unverified' &&
        !u.entries.some((x) => x.entry.kind === 'unverified') &&
        k.entries.some((e) => e.username === username && e.kind === 'unverified');
      const state: SessionState = {
        db,
        writeGate: db,
        key,
        records,
        photos,
        unverifiedKey: unverified === undefined ? undefined : new Uint8Array(unverified.key),
        logger: this.#o.logger,
        now: this.#o.now,
        photoMaxBytes: this.#o.photoMaxBytes,
      };
      const session = new Session(this.#sessionHost, { username, kind: target.kind, keyId: target.keyId, keyRecord: target.record, state, unverifiedLocked });
      this.#session = session;
      this.#o.logger.info({ username, kind: target.kind, keyId: target.keyId }, 'session opened');
      return session;
    } catch (err) {
      await db.close();
      key.fill(0);
      throw err;
    }
  }

  // ---------------------------------------------------------------- public API

  /**
   * Offline sign-up of an unverified user: checks the password against the policy the servers use,
   * generates a database key on the phone, creates that user's unverified database and wraps the
   * key for them in the keyring. Log in with `loginOffline` afterwards.
   * @throws INPUT_INVALID when the username is malformed.
   * @throws PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_TOO_COMMON
   * @throws VAULT_USER_EXISTS when the username already has keys on this device.
   * @throws VAULT_BUSY when another process holds the keyring too long (nothing was written).
   * @throws VAULT_KEYRING_CORRUPT, VAULT_STORAGE_FAILED
   */
  async signUpOffline(username: string, password: string): Promise<void> {
    checkUsername(username);
    assertPasswordAcceptable(checkPassword(password), this.#o.passwordPolicy, { username });
    return this.#mutex.run(async () => {
      const k = await this.#keyring.load();
      if (entriesOf(k, username).length > 0) throw new FieldvaultError('VAULT_USER_EXISTS');
      const key = generateDbKey();
      try {
        // The database exists before the keyring names it, so an entry never points at nothing.
        await (await this.#openDb(key, true)).close();
        const entry = await this.#wrap(username, password, key, 'unverified', undefined);
        try {
          await this.#keyring.save(withEntry(k, entry));
        } catch (err) {
          // No keyring entry names the new, empty database (e.g. VAULT_BUSY): leave no orphan file.
          await this.#o.storage.remove(dbFileName(key)).catch(() => undefined);
          throw err;
        }
        this.#o.logger.info({ username, keyId: entry.keyId }, 'unverified user signed up');
      } finally {
        key.fill(0);
      }
    });
  }

  /**
   * Offline login: unwraps the user's keyring entries with the password, follows key succession
   * if the device key changed since (and re-wraps the current key for the user on the spot),
   * finishes any interrupted migration those keys allow, and opens the database named from the
   * key. A wrong password changes nothing on disk.
   * @throws VAULT_WRONG_PASSWORD for a wrong password, an unknown user, or an altered entry (one
   * code for all).
   * @throws DEVICE_BLACKLISTED (`details.local`) instead, for a user with no keys here, after a
   * server blacklisted the device and the SDK wiped it (see `blockedBy`).
   * @throws VAULT_SESSION_OPEN when another user is logged in.
   * @throws VAULT_NOT_FOUND when the database the key names is missing.
   * @throws VAULT_DB_KEY_REJECTED, VAULT_KEYRING_CORRUPT, CRYPTO_SUCCESSION_INVALID, VAULT_STORAGE_FAILED
   */
  async loginOffline(username: string, password: string): Promise<Session> {
    checkUsername(username);
    checkPassword(password);
    return this.#mutex.run(async () => {
      this.#assertNoSession();
      let k = await this.#keyring.load();
      const u = await this.#unlock(k, username, password);
      try {
        if (u.entries.length === 0) {
          // After a blacklisting wipe the keyring is empty: say why rather than "wrong password".
          const mark = entriesOf(k, username).length === 0 ? await readBlockedMark(this.#fs) : null;
          throw mark === null ? new FieldvaultError('VAULT_WRONG_PASSWORD') : blockedError(mark);
        }
        const next = await this.#rewrap(k, username, password, u, false);
        if (next !== k) k = await this.#keyring.save(next);
        k = await this.#resumePending(k, u.keys);
        return await this.#openSession(k, username, this.#choose(k, u), u);
      } finally {
        wipeKeys(u.keys.values());
      }
    });
  }

  /**
   * Re-wraps every key the user holds under a new password (after checking the old one and the
   * policy). The online slice calls this after the server accepted the change.
   * @throws VAULT_WRONG_PASSWORD when the old password opens none of the user's entries.
   * @throws PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_TOO_COMMON for the new password.
   * @throws INPUT_INVALID, VAULT_KEYRING_CORRUPT, VAULT_STORAGE_FAILED
   */
  async changePassword(username: string, oldPassword: string, newPassword: string): Promise<void> {
    checkUsername(username);
    checkPassword(oldPassword, 'oldPassword');
    assertPasswordAcceptable(checkPassword(newPassword, 'newPassword'), this.#o.passwordPolicy, { username });
    return this.#mutex.run(async () => {
      const k = await this.#keyring.load();
      const u = await this.#unlock(k, username, oldPassword);
      try {
        if (u.entries.length === 0) throw new FieldvaultError('VAULT_WRONG_PASSWORD');
        await this.#keyring.save(await this.#rewrap(k, username, newPassword, u, true));
        this.#o.logger.info({ username }, 'password changed');
      } finally {
        wipeKeys(u.keys.values());
      }
    });
  }

  /**
   * The hook of the online login: adopts the key a server returned for this device and opens the
   * user's session on it.
   *
   * - No verified key yet, or the same one: the verified database is created if missing and the
   *   key is wrapped for the user (flows 1 and 3).
   * - A different key, and the user can open the device's current one: the newer of the two
   *   (DESIGN.md §2 order) becomes the verified key; the loser's database is migrated into the
   *   winner's, the succession loser → winner recorded, the loser deleted (flows 4, rekey).
   * - A different key the user cannot reconcile (they cannot open the current one): the key is
   *   kept as the temporary database of `serverId` (flow 4, step 2).
   * - The user's own temporary databases that lost are merged into the winner; the user's
   *   unverified records move into it (flow 1).
   *
   * Migrations are journaled in the keyring first and resumed on the next login if interrupted.
   * @throws KEY_RECORD_INVALID when the key record is malformed.
   * @throws KEY_MISMATCH when the record is for another IMEI or does not name this key.
   * @throws INPUT_INVALID when the username, server id or key is malformed.
   * @throws VAULT_SESSION_OPEN when another user is logged in (the same user's session is closed first).
   * @throws VAULT_KEYRING_CORRUPT, VAULT_DB_KEY_REJECTED, VAULT_STORAGE_FAILED
   */
  async adoptVerifiedKey(input: AdoptKeyInput): Promise<Session> {
    if (typeof input !== 'object' || input === null) throw inputInvalid('input', 'must be an object');
    const username = checkUsername(input.username);
    const password = checkPassword(input.password);
    if (typeof input.serverId !== 'string' || !NODE_ID_PATTERN.test(input.serverId)) throw inputInvalid('serverId', 'a server node id');
    const record = parseKeyRecord(input.keyRecord);
    if (!(input.key instanceof Uint8Array) || input.key.byteLength !== DB_KEY_LENGTH) {
      throw new FieldvaultError('CRYPTO_KEY_INVALID', { detail: `key must be ${DB_KEY_LENGTH} bytes` });
    }
    if (record.imei !== this.imei) throw new FieldvaultError('KEY_MISMATCH', { detail: 'the key record is for another device' });
    if (keyId(input.key) !== record.keyId) throw new FieldvaultError('KEY_MISMATCH', { detail: 'the key does not match its record' });
    const serverId = input.serverId;
    return this.#mutex.run(async () => {
      this.#assertNoSession(username);
      const carried = this.#session === undefined ? [] : takeServerLogins(this.#session);
      await this.#session?.logout();
      const k = await this.#keyring.load();
      // The server already authenticated the user: no need to hide whether they have entries here.
      const u = await this.#unlock(k, username, password, false);
      const keys = u.keys;
      keys.set(record.keyId, new Uint8Array(input.key));
      try {
        const session = await this.#adopt(k, u, username, password, serverId, record);
        for (const login of carried) setServerLogin(session, login);
        if (carried.length > 0) await session.rememberServerRoles();
        return session;
      } finally {
        wipeKeys(keys.values());
      }
    });
  }

  /**
   * Online login to one server (DESIGN.md §3, flows 1–4): asks the server for a challenge, offers
   * the database key this user can open (the device's verified key, else their temporary key,
   * with its key record — flow 2; an unverified user offers none), signs the login with the device
   * key, and adopts the key the server returns (`adoptVerifiedKey`): the verified database is
   * created on the first key, a key this user cannot reconcile gets a temporary database for this
   * server, a losing database is migrated into the winner and the succession recorded, and an
   * unverified user's own records move into the database they now see (flow 1).
   *
   * The server decides: the password policy and the credentials are checked there (an unverified
   * user logs in with their server password; a local password that differs only means no key is
   * offered). Nothing is written on the phone before the server has accepted the login, so a wrong
   * password, a refused or untrusted server, or a malformed answer leaves every file unchanged.
   * The server's session token is kept in memory only, on the returned session (`serverLogins`),
   * and forgotten at logout. The device is locked for other calls while the server answers.
   *
   * **Blacklisted device**: when the server answers DEVICE_BLACKLISTED, every database, photo,
   * the keyring and the device key are wiped (`wipe`) before the error is thrown, and the device
   * is marked blocked by that server (`blockedBy`): logins to other servers are then refused
   * locally (DEVICE_BLACKLISTED, `details.local: true`, nothing sent) until a login to the
   * blocking server succeeds again.
   *
   * **Two passwords**: when the user signed up offline under a password other than this one, their
   * unverified database does not open and its records cannot move: the session says so
   * (`unverifiedRecordsLocked`) and `Session.claimUnverifiedRecords(oldPassword)` moves them.
   * @throws TRANSPORT_SERVER_ID_MISMATCH when the server names another id than `transport.serverId`
   * in its challenge answer (nothing else was sent).
   * @throws INPUT_INVALID when the username is malformed, no transport is given, or its server id is malformed.
   * @throws VAULT_SESSION_OPEN when another user is logged in (the same user's session is replaced).
   * @throws AUTH_INVALID_CREDENTIALS, AUTH_ACCOUNT_LOCKED, RATE_LIMITED, USER_DISABLED,
   * DEVICE_BINDING_MISMATCH, DEVICE_RETIRED, DEVICE_SIGNATURE_INVALID, HLC_TOO_FAR_AHEAD… as
   * reported by the server; nothing changed on the phone.
   * @throws DEVICE_BLACKLISTED after wiping the device (`details.wiped` says whether the wipe completed);
   * or before sending anything when another server blocked this device (`details.local`, see `blockedBy`).
   * @throws TRANSPORT_UNREACHABLE, TRANSPORT_TLS_UNTRUSTED, TRANSPORT_BAD_RESPONSE (also for an answer
   * whose key does not match its record, this device or this user); nothing changed on the phone.
   * @throws VAULT_KEYRING_CORRUPT, VAULT_DB_KEY_REJECTED, VAULT_STORAGE_FAILED, VAULT_DEVICE_KEY_INVALID
   */
  async loginOnline(username: string, password: string, options: OnlineLoginOptions = {}): Promise<Session> {
    checkUsername(username);
    checkPassword(password);
    const transport = options.transport ?? this.#o.transport;
    if (transport === undefined || typeof transport.login !== 'function' || typeof transport.challenge !== 'function') {
      throw inputInvalid('transport', 'pass { transport } (e.g. createHttpTransport(…)) or give the device one');
    }
    const serverId = transport.serverId;
    if (typeof serverId !== 'string' || !NODE_ID_PATTERN.test(serverId)) throw inputInvalid('transport.serverId', 'a server node id');
    const retry = options.retry ?? DEFAULT_RETRY;
    if (!Number.isInteger(retry.attempts) || retry.attempts < 1 || retry.attempts > 100 || !Number.isInteger(retry.baseDelayMs) || retry.baseDelayMs < 0 || retry.baseDelayMs > 600_000) {
      throw inputInvalid('retry', '{ attempts: 1 … 100, baseDelayMs: 0 … 600000 }');
    }
    return this.#mutex.run(async () => {
      this.#assertNoSession(username);
      // The blocking server itself is allowed: its login is how the phone learns it was reinstated.
      const mark = await this.#assertNotBlocked(serverId);
      const k = await this.#keyring.load();
      const u = await this.#unlock(k, username, password, false);
      try {
        if (u.entries.length === 0 && entriesOf(k, username).length > 0) {
          this.#o.logger.warn({ username, serverId }, 'the password opens none of this user\'s keys here; logging in online without offering a key');
          // The session says so too (`unverifiedRecordsLocked`) when an unverified database is left behind.
        }
        const offer = this.#offer(k, u, serverId);
        const ask = async <T>(call: () => Promise<T>): Promise<T> => {
          try {
            return await call();
          } catch (err) {
            if (isFieldvaultError(err) && err.code === 'DEVICE_BLACKLISTED') throw await this.#wipeBlacklisted(serverId, err);
            throw err;
          }
        };
        // A fresh challenge for every try: a challenge is single-use.
        const response: LoginResponse = await withRetry(
          async () => {
            const answer = await ask(() => transport.challenge({ imei: this.imei }));
            const { challenge } = checkChallenge(answer, serverId);
            const signature = await this.#deviceKeys.sign(
              loginSignatureMessage({ challenge, username, imei: this.imei, keyId: offer?.record.keyId ?? '' }),
            );
            const body: LoginBody = {
              username,
              password,
              imei: this.imei,
              devicePublicKey: toBase64(await this.#deviceKeys.publicKey()),
              challenge,
              signature: toBase64(signature),
              ...(offer === undefined ? {} : { dbKey: toBase64(offer.key), keyRecord: offer.record }),
            };
            return ask(() => transport.login(body));
          },
          retry,
          undefined,
          ({ attempt, delayMs, code }) => this.#o.logger.info({ username, serverId, attempt, delayMs, code }, 'online login retried'),
          isLoginRetryable,
        );
        const { record, key } = this.#checkLoginResponse(response, username);
        if (u.keys.has(record.keyId)) key.fill(0);
        else u.keys.set(record.keyId, key);

        // The same user's open session is replaced; its server logins carry over to the new one.
        const carried = this.#session === undefined ? [] : takeServerLogins(this.#session);
        await this.#session?.logout();
        const session = await this.#adopt(k, u, username, password, serverId, record);
        for (const login of carried) setServerLogin(session, login);
        const replaced = setServerLogin(session, { serverId, role: response.user.role, expiresAt: response.expiresAt, token: response.token, transport });
        // The user's previous session on this server is superseded: end it rather than leave it to expire.
        if (replaced !== undefined) {
          await revokeLogins([replaced], (id, code) => this.#o.logger.info({ serverId: id, code: code ?? null }, 'the previous server session could not be ended; it expires on its own'), false);
        }
        await session.rememberServerRoles();
        if (mark !== null) await this.#liftBlockedMark(serverId);
        this.#o.logger.info(
          { username, serverId, kind: session.kind, keyId: session.keyId, offeredKeyId: offer?.record.keyId ?? null },
          'logged in online',
        );
        return session;
      } finally {
        wipeKeys(u.keys.values());
      }
    });
  }

  /**
   * Asks a server which server id it has (for an app's "add server" screen): one challenge
   * request over the transport's verified TLS, carrying only this device's public IMEI. Returns
   * the id the server names, or `null` when the server does not tell its id (older servers); the
   * transport's own `serverId` is not used. Changes nothing on the phone.
   * @throws INPUT_INVALID when no transport is given.
   * @throws TRANSPORT_UNREACHABLE, TRANSPORT_TLS_UNTRUSTED, TRANSPORT_BAD_RESPONSE, RATE_LIMITED…
   */
  async identifyServer(transport: Transport | undefined = this.#o.transport): Promise<{ serverId: string | null }> {
    if (transport === undefined || typeof transport.challenge !== 'function') {
      throw inputInvalid('transport', 'pass a transport (e.g. createHttpTransport(…)) or give the device one');
    }
    const answer = checkSchema(ChallengeResponseSchema, await transport.challenge({ imei: this.imei }), 'TRANSPORT_BAD_RESPONSE');
    return { serverId: answer.serverId ?? null };
  }

  /**
   * Pending sign-ups (issue 7): an unverified user asks a server for an account. The password
   * must open the user's unverified key here (the same one they will log in online with, so that
   * flow 1 can move their records once approved); the server checks its policy and keeps only an
   * Argon2id hash. The user's own records (deleted ones too) go with the request, `batchRecords`
   * at a time, each batch a device-signed call with a fresh challenge; the server keeps them in
   * quarantine, visible to admins only, until an admin approves (the account is created with
   * this password) or rejects. Nothing on the phone changes. Once approved, `loginOnline` works
   * and flow 1 moves and pushes the records: they keep their ids, so nothing is duplicated.
   * Photos are uploaded by the first sync after that login.
   * @throws INPUT_INVALID (username, transport without `requestAccount`, batchRecords)
   * @throws VAULT_WRONG_PASSWORD when the password opens none of the user's keys here (checked
   *   before the password rules: a wrong password that also breaks them gets this code).
   * @throws PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_TOO_COMMON for the right password under
   *   a policy stricter than the one it was chosen under (nothing is sent).
   * @throws VAULT_FORBIDDEN when the user is verified already on this device (log in online instead).
   * @throws SIGNUP_USERNAME_TAKEN, SIGNUP_PENDING_ELSEWHERE, AUTH_INVALID_CREDENTIALS (a renewed
   *   request with another password), DEVICE_BINDING_MISMATCH, DEVICE_RETIRED, RATE_LIMITED… from the server.
   * @throws DEVICE_BLACKLISTED after wiping the device, as `loginOnline`; or before sending
   *   anything when another server blocked this device (`details.local`, see `blockedBy`).
   * @throws TRANSPORT_SERVER_ID_MISMATCH (as `loginOnline`), TRANSPORT_UNREACHABLE, TRANSPORT_TLS_UNTRUSTED, TRANSPORT_BAD_RESPONSE
   */
  async requestAccount(username: string, password: string, options: AccountRequestOptions = {}): Promise<AccountRequestResult> {
    checkUsername(username);
    checkPassword(password);
    const transport = options.transport ?? this.#o.transport;
    const send = transport?.requestAccount?.bind(transport);
    if (transport === undefined || send === undefined || typeof transport.challenge !== 'function') {
      throw inputInvalid('transport', 'a transport that implements requestAccount (pending sign-ups)');
    }
    const batch = options.batchRecords ?? DEFAULT_SIGNUP_BATCH;
    if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) throw inputInvalid('batchRecords', 'an integer in 1..10000');
    return this.#mutex.run(async () => {
      await this.#assertNotBlocked(transport.serverId);
      const k = await this.#keyring.load();
      const u = await this.#unlock(k, username, password);
      try {
        if (u.entries.length === 0) throw new FieldvaultError('VAULT_WRONG_PASSWORD');
        const own = u.entries.find((x) => x.entry.kind === 'unverified');
        if (own === undefined || u.entries.some((x) => x !== own)) {
          throw new FieldvaultError('VAULT_FORBIDDEN', { detail: 'this user is verified on this device already: log in online' });
        }
        // The rules are checked only once the password has opened the user's key: a mistyped
        // password must say VAULT_WRONG_PASSWORD, not how it breaks the rules. They still apply
        // (before anything is sent), because this password becomes the server account's and the
        // policy may have grown stricter since the offline sign-up.
        assertPasswordAcceptable(password, this.#o.passwordPolicy, { username });
        const records = await this.#ownRecords(username, own.key);
        const serverId = transport.serverId;
        const devicePublicKey = toBase64(await this.#deviceKeys.publicKey());
        let last: { status: SignupStatus; requestedAt: string; quarantined: number } | undefined;
        const failed: PushResult[] = [];
        // At least one call, also for a user without records.
        for (let at = 0; at === 0 || at < records.length; at += batch) {
          const chunk = records.slice(at, at + batch);
          const challenge = await this.#signupChallenge(transport, serverId);
          const signature = await this.#deviceKeys.sign(signupSignatureMessage({ action: 'request', challenge, username, imei: this.imei }));
          const answer = await this.#askServer(serverId, () =>
            send({ username, password, imei: this.imei, devicePublicKey, challenge, signature: toBase64(signature), records: chunk }),
          );
          const res = checkSchema(SignupRequestResponseSchema, answer, 'TRANSPORT_BAD_RESPONSE');
          if (res.results.length !== chunk.length || res.results.some((r, i) => r.id !== null && r.id !== chunk[i]?.id)) {
            throw new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail: 'the results do not match the records sent' });
          }
          failed.push(...res.results.filter((r) => r.status === 'error'));
          last = { status: res.status, requestedAt: res.requestedAt, quarantined: res.quarantined };
        }
        if (last === undefined) throw new FieldvaultError('TRANSPORT_BAD_RESPONSE');
        this.#o.logger.info({ username, serverId, sent: records.length, failed: failed.length }, 'account requested');
        return { ...last, sent: records.length, failed };
      } finally {
        wipeKeys(u.keys.values());
      }
    });
  }

  /**
   * Where this device's sign-up request for `username` stands on a server (`pending`,
   * `approved`: log in online now, `rejected`). A device-signed call; no password needed.
   * @throws SIGNUP_NOT_FOUND when this device has no request for the username there.
   * @throws INPUT_INVALID, DEVICE_BLACKLISTED (after wiping; or, `details.local`, before sending
   *   anything when another server blocked this device), TRANSPORT_*…
   */
  async accountStatus(username: string, options: Pick<AccountRequestOptions, 'transport'> = {}): Promise<AccountStatus> {
    checkUsername(username);
    const transport = options.transport ?? this.#o.transport;
    const ask = transport?.signupStatus?.bind(transport);
    if (transport === undefined || ask === undefined || typeof transport.challenge !== 'function') {
      throw inputInvalid('transport', 'a transport that implements signupStatus (pending sign-ups)');
    }
    return this.#mutex.run(async () => {
      const serverId = transport.serverId;
      await this.#assertNotBlocked(serverId);
      const challenge = await this.#signupChallenge(transport, serverId);
      const signature = await this.#deviceKeys.sign(signupSignatureMessage({ action: 'status', challenge, username, imei: this.imei }));
      const answer = await this.#askServer(serverId, async () =>
        ask({ username, imei: this.imei, devicePublicKey: toBase64(await this.#deviceKeys.publicKey()), challenge, signature: toBase64(signature) }),
      );
      return checkSchema(SignupStatusResponseSchema, answer, 'TRANSPORT_BAD_RESPONSE');
    });
  }

  /** The user's own records in their unverified database, deleted ones included. */
  async #ownRecords(username: string, key: Uint8Array): Promise<ChildRecord[]> {
    const db = await this.#openDb(new Uint8Array(key), false);
    try {
      const last = await readMeta(db, 'clock');
      const clock = createClock({ node: this.imei, now: this.#o.now, ...(last === undefined ? {} : { last }) });
      const store = new RecordStore(db, { username, device: this.imei, onlyOwn: true, clock, form: this.#o.form });
      const out: ChildRecord[] = [];
      for (;;) {
        const page = await store.list({ limit: MAX_PAGE_SIZE, offset: out.length, includeDeleted: true });
        out.push(...page);
        if (page.length < MAX_PAGE_SIZE) return out;
      }
    } finally {
      await db.close();
    }
  }

  async #signupChallenge(transport: Transport, serverId: string): Promise<string> {
    const answer = await this.#askServer(serverId, () => transport.challenge({ imei: this.imei }));
    return checkChallenge(answer, serverId).challenge;
  }

  /** A server call that wipes the device first when the server reports it blacklisted. */
  async #askServer<T>(serverId: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (isFieldvaultError(err) && err.code === 'DEVICE_BLACKLISTED') throw await this.#wipeBlacklisted(serverId, err);
      throw err;
    }
  }

  /**
   * The key this user offers a server at login (flow 2): the one they would open, with its key
   * record — the device's verified key first, then their temporary key for this server, then
   * another server's. None for an unverified user (a phone-made key never leaves the phone).
   */
  #offer(k: KeyringContent, u: Unlocked, serverId: string): { record: KeyRecord; key: Uint8Array } | undefined {
    const rank = (kind: DbKind): number => (kind === 'verified' ? 0 : kind === `temporary:${serverId}` ? 1 : 2);
    let best: { record: KeyRecord; key: Uint8Array; rank: number } | undefined;
    for (const x of u.entries) {
      const kind = this.#kindOf(k, x);
      const record = kind === 'unverified' ? undefined : this.#recordFor(k, kind, x.keyId);
      if (record === undefined) continue;
      const candidate = { record, key: x.key, rank: rank(kind) };
      if (best === undefined || candidate.rank < best.rank || (candidate.rank === best.rank && compareKeyRecords(record, best.record) > 0)) best = candidate;
    }
    return best === undefined ? undefined : { record: best.record, key: best.key };
  }

  /**
   * Checks a login answer beyond its schema: it is for this user and this device, and its key is
   * the one its record names. A server (or anything posing as one) cannot make the phone store a
   * key under a record that does not describe it.
   * @throws TRANSPORT_BAD_RESPONSE
   */
  #checkLoginResponse(response: unknown, username: string): { record: KeyRecord; key: Uint8Array } {
    const r = checkSchema(LoginResponseSchema, response, 'TRANSPORT_BAD_RESPONSE');
    const bad = (detail: string, cause?: unknown): FieldvaultError =>
      new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail, ...(cause === undefined ? {} : { cause }) });
    if (r.user.username !== username) throw bad('the answer is for another user');
    let record: KeyRecord;
    try {
      record = parseKeyRecord(r.key.record);
    } catch (cause) {
      throw bad('malformed key record', cause);
    }
    if (record.imei !== this.imei) throw bad('the key record is for another device');
    const key = fromBase64(r.key.dbKey);
    if (key.byteLength !== DB_KEY_LENGTH || keyId(key) !== record.keyId) {
      key.fill(0);
      throw bad('the key does not match its key record');
    }
    return { record, key };
  }

  /**
   * DEVICE_BLACKLISTED from a server: mark the device blocked, wipe everything, then report it.
   * The mark is written before the wipe, so that a process killed (or a storage failing) halfway
   * through the wipe still leaves it; when that first write fails (a full disk), it is tried
   * again once the wipe has freed space. An existing mark is kept (its server and date stand).
   */
  async #wipeBlacklisted(serverId: string, reported: FieldvaultError): Promise<FieldvaultError> {
    this.#o.logger.warn({ imei: this.imei, serverId }, 'the server reports this device as blacklisted: wiping it');
    const mark = async (): Promise<boolean> => {
      try {
        if ((await readBlockedMark(this.#fs)) === null) await writeBlockedMark(this.#fs, { serverId, at: new Date(this.#o.now()).toISOString() });
        return true;
      } catch (err) {
        this.#o.logger.error({ imei: this.imei, code: isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR' }, 'writing the blocked mark failed');
        return false;
      }
    };
    const marked = await mark();
    let wiped = true;
    try {
      await this.#wipeLocked();
    } catch (err) {
      wiped = false;
      this.#o.logger.error({ imei: this.imei, code: isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR' }, 'wipe after blacklisting failed');
    }
    if (!marked) await mark();
    return new FieldvaultError('DEVICE_BLACKLISTED', {
      detail: wiped ? 'this device was wiped' : 'wiping this device failed; call wipe() again',
      details: { serverId, wiped },
      cause: reported,
    });
  }

  /**
   * Refuses (DEVICE_BLACKLISTED, `details.local`) any server but the one that blocked this device,
   * before anything is sent. Returns the mark (or `null`) for the caller to lift on success.
   */
  async #assertNotBlocked(serverId: string): Promise<BlockedMark | null> {
    const mark = await readBlockedMark(this.#fs);
    if (mark !== null && mark.serverId !== serverId) throw blockedError(mark);
    return mark;
  }

  /** The blocking server accepted a login: it reinstated the device, so the mark goes. */
  async #liftBlockedMark(serverId: string): Promise<void> {
    try {
      await removeBlockedMark(this.#fs);
      this.#o.logger.info({ imei: this.imei, serverId }, 'the server that blocked this device accepted a login: block lifted');
    } catch (err) {
      // The session is open and valid; a mark left behind only means the next login to another
      // server is refused until a login to this one succeeds again.
      this.#o.logger.error({ imei: this.imei, code: isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR' }, 'removing the blocked mark failed');
    }
  }

  async #adopt(k: KeyringContent, u: Unlocked, username: string, password: string, serverId: string, offered: KeyRecord): Promise<Session> {
    const keys = u.keys;
    const keyOf = (id: string): Uint8Array => keys.get(id) as Uint8Array;
    const current = k.verified;
    let kind: DbKind = 'verified';
    let winner = offered;
    const losers = new Set<string>();
    if (current !== null && current.keyId !== offered.keyId) {
      if (keys.has(current.keyId)) {
        if (compareKeyRecords(offered, current) > 0) losers.add(current.keyId);
        else {
          winner = current;
          losers.add(offered.keyId);
        }
      } else {
        kind = `temporary:${serverId}`;
        const previous = k.temporary[serverId];
        if (previous !== undefined && previous.keyId !== offered.keyId && keys.has(previous.keyId)) losers.add(previous.keyId);
      }
    }
    for (const x of u.entries) if (x.entry.kind !== 'unverified' && x.keyId !== winner.keyId) losers.add(x.keyId);
    losers.delete(winner.keyId);
    const winnerKey = keyOf(winner.keyId);

    // The winner's database exists before the keyring names it.
    await (await this.#openDb(winnerKey, true)).close();

    const startedAt = new Date(this.#o.now()).toISOString();
    let next: KeyringContent = k;
    const temporary = Object.fromEntries(
      Object.entries(k.temporary).filter(([, r]) => !losers.has(r.keyId) && (kind !== 'verified' || r.keyId !== winner.keyId)),
    );
    next = kind === 'verified' ? { ...next, verified: winner, temporary } : { ...next, temporary: { ...temporary, [serverId]: offered } };
    const journaled: PendingMigration[] = [];
    for (const id of losers) {
      const loserKey = keyOf(id);
      // Every user who could open the loser offline follows this to the winner.
      next = withSuccession(next, wrapSuccessor(loserKey, winnerKey));
      if (await this.#o.storage.exists(dbFileName(loserKey))) {
        journaled.push({ op: 'merge', fromKeyId: id, toKeyId: winner.keyId, sourceKey: wrapSuccessor(winnerKey, loserKey), startedAt });
      }
    }
    const unverified = u.entries.find((x) => x.entry.kind === 'unverified');
    if (unverified !== undefined && (await this.#o.storage.exists(dbFileName(unverified.key)))) {
      journaled.push({
        op: 'move',
        username,
        fromKeyId: unverified.keyId,
        toKeyId: winner.keyId,
        sourceKey: wrapSuccessor(winnerKey, unverified.key),
        startedAt,
      });
    }
    for (const op of journaled) next = withPending(next, op);
    const entry = await this.#wrap(username, password, winnerKey, kind, winner.issuedAt);
    next = withEntry(
      withoutEntries(next, (e) => e.username === username && e.kind !== 'unverified' && (losers.has(e.keyId) || e.kind === kind)),
      entry,
    );
    // The user's entries that followed a succession to a loser are superseded by `entry` too.
    const superseded = new Set(u.entries.filter((x) => losers.has(x.keyId) && x.entry.kind !== 'unverified').map((x) => x.entry));
    next = withoutEntries(next, (e) => superseded.has(e));
    let saved = await this.#keyring.save(next);
    for (const op of journaled) await this.#step(op.op, 'journal-written', op);
    this.#o.logger.info({ username, kind, keyId: winner.keyId, migrations: journaled.length }, 'server key adopted');

    saved = await this.#resumePending(saved, new Map([[winner.keyId, winnerKey]]));
    return this.#openSession(saved, username, { kind, keyId: winner.keyId, key: winnerKey, record: winner }, u);
  }

  /** Session callback: see `Session.moveUnverifiedRecords`. */
  #moveUnverifiedRecords(session: Session, state: SessionState): Promise<MigrationResult> {
    return this.#mutex.run(async () => {
      const fromKey = state.unverifiedKey;
      if (fromKey === undefined || !session.active) return { records: 0, photos: 0 };
      const result = await this.#journaledMove(await this.#keyring.load(), session, state, fromKey);
      fromKey.fill(0);
      (state as { unverifiedKey: Uint8Array | undefined }).unverifiedKey = undefined;
      return result;
    });
  }

  /**
   * Flow 1's move of the unverified database under `fromKey` into the session's database: the
   * journal goes into the keyring (`k`) first, so a crash at any step is resumed by the next login.
   */
  async #journaledMove(k: KeyringContent, session: Session, state: SessionState, fromKey: Uint8Array): Promise<MigrationResult> {
    const op: PendingMigration = {
      op: 'move',
      username: session.username,
      fromKeyId: keyId(fromKey),
      toKeyId: session.keyId,
      sourceKey: wrapSuccessor(state.key, fromKey),
      startedAt: new Date(this.#o.now()).toISOString(),
    };
    const saved = await this.#keyring.save(withPending(k, op));
    await this.#step('move', 'journal-written', op);
    return (await this.#runMigration(saved, op, fromKey, state.key, state.db)).result;
  }

  /** Session callback: see `Session.claimUnverifiedRecords`. */
  #claimUnverifiedRecords(session: Session, state: SessionState, oldPassword: string): Promise<MigrationResult> {
    return this.#mutex.run(async () => {
      if (!session.active) throw new FieldvaultError('VAULT_LOCKED');
      const k = await this.#keyring.load();
      const entry = k.entries.find((e) => e.username === session.username && e.kind === 'unverified');
      if (entry === undefined) return { records: 0, photos: 0 };
      // A wrong password throws here, before anything is written (VAULT_WRONG_PASSWORD).
      const fromKey = await unwrapKeyForUser(oldPassword, entry, { imei: this.imei });
      try {
        // The same journaled move as flow 1: resumed by the next login that opens the target key
        // if the process dies, idempotent, and the emptied unverified database is deleted.
        const result = await this.#journaledMove(k, session, state, fromKey);
        this.#o.logger.info({ username: session.username, records: result.records, photos: result.photos }, 'unverified records claimed with the old phone password');
        return result;
      } finally {
        fromKey.fill(0);
      }
    });
  }

  /** Session callback. */
  #sessionClosed(session: Session): void {
    if (this.#session === session) this.#session = undefined;
  }

  /** Session callback: a server answered a sync request with DEVICE_BLACKLISTED. */
  #deviceBlacklisted(serverId: string, reported: FieldvaultError): Promise<FieldvaultError> {
    return this.#mutex.run(() => this.#wipeBlacklisted(serverId, reported));
  }

  /**
   * Session callback: the final sync of a retired device is done (see `Session.sync`). The device
   * lock comes first, so no login replaces the session between the check and the wipe (its saves
   * would not be checked); then the session's writes are held, so none commits in between. The
   * same order as every other path (a login holds the lock, then writes), so nothing deadlocks.
   */
  async #retireIfNothingLeft(session: Session, serverId: string, gate: WriteGateHold, nothingLeft: () => Promise<boolean>): Promise<boolean> {
    return this.#mutex.run(async () => {
      if (this.#session !== session) return false;
      const release = await gate.hold();
      let wiped = false;
      try {
        if (!(await nothingLeft())) return false;
        this.#o.logger.warn({ imei: this.imei, serverId }, 'the server reports this device as retired and its final sync is complete: wiping it');
        wipedSessions.add(session);
        await this.#wipeLocked();
        wiped = true;
        return true;
      } finally {
        release(wiped);
      }
    });
  }

  /** Logs the open session out (closes its database, drops its keys). No-op when none is open. */
  async logout(): Promise<void> {
    await this.#session?.logout();
  }

  /**
   * The users with keys on this device and the kinds of database each can open now (for a login
   * screen), from the keyring alone: no password. An entry whose key was succeeded by the device's
   * verified key (its database migrated into the verified one) counts as `verified`.
   * @throws VAULT_KEYRING_CORRUPT
   */
  async users(): Promise<DeviceUser[]> {
    const k = await this.#keyring.load();
    const byUser = new Map<string, Set<DbKind>>();
    for (const e of k.entries) {
      // The kind the entry opens now, not the one it was written for (audit #18: after flow 4 the
      // other user's temporary entry leads to the verified key until that user logs in again).
      const kind = currentKind(k, e.kind, latestKeyId(k, e.keyId));
      byUser.set(e.username, (byUser.get(e.username) ?? new Set<DbKind>()).add(kind));
    }
    return [...byUser.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([username, kinds]) => ({ username, kinds: [...kinds].sort() }));
  }

  /**
   * The device's current verified key record (what the online login sends with the key in flow 2),
   * or `undefined` before the first online login.
   * @throws VAULT_KEYRING_CORRUPT
   */
  async verifiedKeyRecord(): Promise<KeyRecord | undefined> {
    return (await this.#keyring.load()).verified ?? undefined;
  }

  /** The device's Ed25519 public key (created on first use). @throws VAULT_DEVICE_KEY_INVALID */
  publicKey(): Promise<Uint8Array> {
    return this.#deviceKeys.publicKey();
  }

  /**
   * The server that blacklisted this device, when the SDK wiped it for that (`blocked.json` in the
   * device directory), else `null`. While set, `loginOnline`, `requestAccount` and `accountStatus`
   * to any other server throw DEVICE_BLACKLISTED (`details.local: true`) before sending anything;
   * an online login to the blocking server is still tried, and lifts the mark when it succeeds
   * (an admin reinstated the device there). `wipe()` does not remove it. Not a security boundary:
   * whoever controls the phone's files can delete it; blacklist the phone on every server.
   * `serverId` is `'unknown'` when the file was altered (it still blocks).
   * @throws VAULT_STORAGE_FAILED
   */
  async blockedBy(): Promise<BlockedMark | null> {
    return readBlockedMark(this.#fs);
  }

  /**
   * Deletes everything the SDK holds on this device: the open session, every database (with its
   * side files), every photo file, the keyring and the device key pair. The SDK calls it itself
   * when a server reports the device blacklisted (login or sync), and after the final sync of a
   * retired device (`Session.sync`). Works on a device whose keyring is damaged. Keeps the mark of
   * a blacklisting (`blockedBy`).
   * @throws VAULT_STORAGE_FAILED
   */
  async wipe(): Promise<void> {
    return this.#mutex.run(() => this.#wipeLocked());
  }

  async #wipeLocked(): Promise<void> {
    await this.#session?.logout().catch(() => undefined);
    for (const name of await this.#o.storage.list()) await this.#o.storage.remove(name);
    for (const name of await this.#fs.list(PHOTO_DIRECTORY)) await this.#fs.remove(`${PHOTO_DIRECTORY}/${name}`);
    await this.#keyring.remove();
    await this.#deviceKeys.destroy();
    this.#o.logger.warn({ imei: this.imei }, 'device wiped');
  }
}
