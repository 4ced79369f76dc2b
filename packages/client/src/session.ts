import type { DbKind } from '@fieldvault/crypto';
import { FieldvaultError, type ChildRecord, type FieldValue, type KeyRecord } from '@fieldvault/protocol';
import type { MigrationResult } from './migration.js';
import type { PhotoContent, PhotoInput, PhotoStore, StoredPhoto } from './photo-store.js';
import type { ListOptions, RecordQuery, RecordStore } from './record-store.js';
import { dropServerLogins, serverLoginsOf, type ServerLogin } from './server-logins.js';
import type { StorageHandle } from './storage-adapter.js';

/** What a session holds while it is open; all of it is dropped at logout. */
export interface SessionState {
  readonly db: StorageHandle;
  /** The key of the session's database. */
  readonly key: Uint8Array;
  readonly records: RecordStore;
  readonly photos: PhotoStore;
  /** The user's unverified key, when they have one (for `moveUnverifiedRecords`). */
  readonly unverifiedKey: Uint8Array | undefined;
}

/** The device side of a session: what it calls back into. */
export interface SessionHost {
  moveUnverifiedRecords(session: Session, state: SessionState): Promise<MigrationResult>;
  sessionClosed(session: Session): void;
}

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
  readonly #host: SessionHost;

  /** @internal Sessions are made by `Device`. */
  constructor(host: SessionHost, init: { username: string; kind: DbKind; keyId: string; keyRecord: KeyRecord | undefined; state: SessionState }) {
    this.#host = host;
    this.username = init.username;
    this.kind = init.kind;
    this.keyId = init.keyId;
    this.keyRecord = init.keyRecord;
    this.#state = init.state;
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
    if (this.#state === undefined) throw new FieldvaultError('VAULT_LOCKED');
    return this.#state;
  }

  /**
   * Creates a record (client UUID, device clock timestamps); the values must fit the form.
   * @throws RECORD_INVALID, RECORD_TOO_LARGE, INPUT_INVALID, VAULT_LOCKED
   */
  async createRecord(fields: Readonly<Record<string, FieldValue>>): Promise<ChildRecord> {
    return this.#open().records.create(fields);
  }

  /**
   * Changes fields of a visible record; the old values stay in its history.
   * @throws VAULT_RECORD_NOT_FOUND, RECORD_INVALID, RECORD_TOO_LARGE, INPUT_INVALID, VAULT_LOCKED
   */
  async updateRecord(id: string, changes: Readonly<Record<string, FieldValue>>): Promise<ChildRecord> {
    return this.#open().records.update(id, changes);
  }

  /**
   * Marks a visible record deleted (a versioned edit that syncs like any other).
   * @throws VAULT_RECORD_NOT_FOUND, VAULT_LOCKED
   */
  async deleteRecord(id: string): Promise<ChildRecord> {
    return this.#open().records.remove(id);
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
   * Adds a photo (JPEG, PNG or WebP, metadata stripped, encrypted) to a visible record.
   * @throws VAULT_RECORD_NOT_FOUND, PHOTO_TOO_LARGE, PHOTO_TYPE_UNSUPPORTED, RECORD_TOO_LARGE, VAULT_LOCKED
   */
  async addPhoto(recordId: string, data: PhotoInput): Promise<StoredPhoto> {
    return this.#open().photos.add(recordId, data);
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

  /** Closes the database and drops the keys from memory. Logging out twice is a no-op. */
  async logout(): Promise<void> {
    const state = this.#state;
    if (state === undefined) return;
    this.#state = undefined;
    dropServerLogins(this);
    try {
      await state.db.close();
    } finally {
      state.key.fill(0);
      state.unverifiedKey?.fill(0);
      this.#host.sessionClosed(this);
    }
  }
}
