import { DB_KEY_LENGTH, dbFileName, generateDbKey, keyId, toBase64, unwrapKeyForUser, wrapSuccessor, type DbKind } from '@fieldvault/crypto';
import {
  ChallengeResponseSchema,
  FieldvaultError,
  NODE_ID_PATTERN,
  assertPasswordAcceptable,
  checkSchema,
  compareKeyRecords,
  createClock,
  loginSignatureMessage,
  parseKeyRecord,
  type KeyRecord,
  type LoginBody,
  type LoginResponse,
} from '@fieldvault/protocol';
import {
  DEFAULT_SIGNUP_BATCH,
  fetchAccountStatus,
  readOwnRecords,
  sendAccountRequest,
  type AccountRequestOptions,
  type AccountRequestResult,
  type AccountStatus,
  type SignupCaller,
} from './account-request.js';
import { assertNotBlocked, liftBlockedMark, wipeBlacklisted, wipeIfBlacklisted, type BlacklistContext } from './blocked-device.js';
import { blockedError, readBlockedMark, type BlockedMark } from './blocked-mark.js';
import { createFileDeviceKeyStore, type DeviceKeyStore } from './device-key-store.js';
import { resolveOptions, type DeviceOptions, type ResolvedOptions } from './device-options.js';
import type { FileSystem } from './file-system.js';
import { checkPassword, checkUsername, inputInvalid } from './input-checks.js';
import { journaledMove, reportStep, resumePending, type MigrationContext, type MoveTarget } from './journaled-migration.js';
import {
  KEYRING_FILE,
  KeyringFile,
  currentKind,
  keyringImeiOf,
  entriesOf,
  latestKeyId,
  withEntry,
  withPending,
  withSuccession,
  withoutEntries,
  type KeyringContent,
  type PendingMigration,
} from './keyring.js';
import { checkChallenge, checkLoginResponse } from './login-answers.js';
import type { MigrationResult } from './migration.js';
import { Mutex } from './mutex.js';
import { createNodeFileSystem } from './node-file-system.js';
import { openDatabase } from './open-database.js';
import { PHOTO_DIRECTORY, PhotoStore, removeInterruptedPhotoFiles } from './photo-store.js';
import { RecordStore } from './record-store.js';
import { revokeLogins, setServerLogin, takeServerLogins } from './server-logins.js';
import { DEFAULT_RETRY, isLoginRetryable, withRetry, type RetryOptions } from './retry.js';
import { Session, wipedSessions, type SessionHost, type SessionState } from './session.js';
import { removeStaleTempFiles } from './stale-temp-files.js';
import type { Transport } from './transport.js';
import { chooseTarget, offeredKey, rewrap, unlock, wipeKeys, wrapEntry, type Target, type Unlocked } from './user-keys.js';
import { readMeta } from './vault-schema.js';
import { GatedHandle, type WriteGateHold } from './write-gate.js';

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

/** A user with keys on this device, and which kinds of database they can open. */
export interface DeviceUser {
  readonly username: string;
  readonly kinds: readonly DbKind[];
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
  await removeStaleTempFiles(fs);
  return new Device(resolved, fs, options.deviceKeyStore ?? createFileDeviceKeyStore(fs));
}

/** A session's database as the target of flow 1's move. */
function moveTarget(session: Session, state: SessionState): MoveTarget {
  return { username: session.username, keyId: session.keyId, key: state.key, db: state.db };
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
  readonly #migration: MigrationContext;
  readonly #blacklist: BlacklistContext;
  readonly #signup: SignupCaller;
  #session: Session | undefined;

  /** @internal Use `createDevice`. */
  constructor(options: ResolvedOptions, fs: FileSystem, deviceKeys: DeviceKeyStore) {
    this.imei = options.imei;
    this.#o = options;
    this.#fs = fs;
    this.#keyring = new KeyringFile(fs, options.imei);
    this.#deviceKeys = deviceKeys;
    const { storage, logger, now, onMigrationStep } = options;
    this.#migration = { storage, fs, keyring: this.#keyring, logger, now, onMigrationStep };
    // Every caller holds the device lock already (a login, a sign-up call, a session's sync).
    this.#blacklist = { imei: options.imei, fs, logger, now, wipe: () => this.#wipeLocked() };
    this.#signup = { imei: options.imei, deviceKeys, blacklist: this.#blacklist };
  }

  /** The server connection given at creation (the default transport of `loginOnline`). */
  get transport(): Transport | undefined {
    return this.#o.transport;
  }

  /** The open session, if a user is logged in. */
  get session(): Session | undefined {
    return this.#session;
  }

  // ---------------------------------------------------------------- sessions

  #assertNoSession(username?: string): void {
    if (this.#session !== undefined && this.#session.username !== username) throw new FieldvaultError('VAULT_SESSION_OPEN');
  }

  async #openSession(k: KeyringContent, username: string, target: Target, u: Unlocked): Promise<Session> {
    const key = new Uint8Array(target.key);
    // Every write of the session goes through the gate: a retired device's last step holds it (write-gate.ts).
    const db = new GatedHandle(await openDatabase(this.#o.storage, key, false));
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
        await (await openDatabase(this.#o.storage, key, true)).close();
        const entry = await wrapEntry(this.#o, username, password, key, 'unverified', undefined);
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
      const u = await unlock(this.#o, k, username, password);
      try {
        if (u.entries.length === 0) {
          // After a blacklisting wipe the keyring is empty: say why rather than "wrong password".
          const mark = entriesOf(k, username).length === 0 ? await readBlockedMark(this.#fs) : null;
          throw mark === null ? new FieldvaultError('VAULT_WRONG_PASSWORD') : blockedError(mark);
        }
        const next = await rewrap(this.#o, k, username, password, u, false);
        if (next !== k) k = await this.#keyring.save(next);
        k = await resumePending(this.#migration, k, u.keys);
        return await this.#openSession(k, username, chooseTarget(k, u), u);
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
      const u = await unlock(this.#o, k, username, oldPassword);
      try {
        if (u.entries.length === 0) throw new FieldvaultError('VAULT_WRONG_PASSWORD');
        await this.#keyring.save(await rewrap(this.#o, k, username, newPassword, u, true));
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
      const u = await unlock(this.#o, k, username, password, false);
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
      const mark = await assertNotBlocked(this.#fs, serverId);
      const k = await this.#keyring.load();
      const u = await unlock(this.#o, k, username, password, false);
      try {
        if (u.entries.length === 0 && entriesOf(k, username).length > 0) {
          this.#o.logger.warn({ username, serverId }, 'the password opens none of this user\'s keys here; logging in online without offering a key');
          // The session says so too (`unverifiedRecordsLocked`) when an unverified database is left behind.
        }
        const offer = offeredKey(k, u, serverId);
        const ask = <T>(call: () => Promise<T>): Promise<T> => wipeIfBlacklisted(this.#blacklist, serverId, call);
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
        const { record, key } = checkLoginResponse(response, username, this.imei);
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
        if (mark !== null) await liftBlockedMark(this.#blacklist, serverId);
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
      await assertNotBlocked(this.#fs, transport.serverId);
      const k = await this.#keyring.load();
      const u = await unlock(this.#o, k, username, password);
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
        const records = await readOwnRecords(this.#o.storage, own.key, { username, imei: this.imei, now: this.#o.now, form: this.#o.form });
        const result = await sendAccountRequest(this.#signup, transport, send, { username, password, records, batch });
        this.#o.logger.info({ username, serverId: transport.serverId, sent: result.sent, failed: result.failed.length }, 'account requested');
        return result;
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
      await assertNotBlocked(this.#fs, transport.serverId);
      return fetchAccountStatus(this.#signup, transport, ask, username);
    });
  }

  // ---------------------------------------------------------------- key adoption and session callbacks

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
    await (await openDatabase(this.#o.storage, winnerKey, true)).close();

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
    const entry = await wrapEntry(this.#o, username, password, winnerKey, kind, winner.issuedAt);
    next = withEntry(
      withoutEntries(next, (e) => e.username === username && e.kind !== 'unverified' && (losers.has(e.keyId) || e.kind === kind)),
      entry,
    );
    // The user's entries that followed a succession to a loser are superseded by `entry` too.
    const superseded = new Set(u.entries.filter((x) => losers.has(x.keyId) && x.entry.kind !== 'unverified').map((x) => x.entry));
    next = withoutEntries(next, (e) => superseded.has(e));
    let saved = await this.#keyring.save(next);
    for (const op of journaled) await reportStep(this.#migration, op.op, 'journal-written', op);
    this.#o.logger.info({ username, kind, keyId: winner.keyId, migrations: journaled.length }, 'server key adopted');

    saved = await resumePending(this.#migration, saved, new Map([[winner.keyId, winnerKey]]));
    return this.#openSession(saved, username, { kind, keyId: winner.keyId, key: winnerKey, record: winner }, u);
  }

  /** Session callback: see `Session.moveUnverifiedRecords`. */
  #moveUnverifiedRecords(session: Session, state: SessionState): Promise<MigrationResult> {
    return this.#mutex.run(async () => {
      const fromKey = state.unverifiedKey;
      if (fromKey === undefined || !session.active) return { records: 0, photos: 0 };
      const result = await journaledMove(this.#migration, await this.#keyring.load(), moveTarget(session, state), fromKey);
      fromKey.fill(0);
      (state as { unverifiedKey: Uint8Array | undefined }).unverifiedKey = undefined;
      return result;
    });
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
        const result = await journaledMove(this.#migration, k, moveTarget(session, state), fromKey);
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
    return this.#mutex.run(() => wipeBlacklisted(this.#blacklist, serverId, reported));
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
