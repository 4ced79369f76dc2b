import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecryptStream, createEncryptStream, decryptToBuffer, encryptBuffer, photoFileName } from '@fieldvault/crypto';
import {
  FieldvaultError,
  isFieldvaultError,
  MAX_PHOTO_BYTES,
  UUID_V4_PATTERN,
  addPhoto,
  removePhoto,
  type ChildRecord,
  type FieldValue,
  type PhotoRef,
  type PhotoType,
} from '@fieldvault/protocol';
import { createSha256, sha256Hex } from './digest.js';
import type { FileSystem } from './file-system.js';
import { detectPhotoType, stripImageMetadata } from './image-metadata.js';
import { recordFromDoc, type RecordStore } from './record-store.js';
import type { SqlExecutor } from './storage-adapter.js';

/** The hidden folder (inside the device directory) that holds encrypted photo files. */
export const PHOTO_DIRECTORY = '.photos';
/** Default largest photo accepted (before metadata removal): 10 MiB. */
export const DEFAULT_PHOTO_MAX_BYTES = 10 * 1024 * 1024;

/**
 * Where the photo `photoId` of the database under `dbKey` lives: a name derived from the key and
 * the id (crypto's `photoFileName`), never the record or photo id itself.
 */
export function photoPath(dbKey: Uint8Array, photoId: string): string {
  return `${PHOTO_DIRECTORY}/${photoFileName(dbKey, photoId)}`;
}

/** A photo as added to a record. */
export interface StoredPhoto {
  readonly photoId: string;
  readonly sha256: string;
  readonly size: number;
  readonly type: PhotoType;
  /** The record with the photo attached. */
  readonly record: ChildRecord;
}

/** A photo read back and fully verified. */
export interface PhotoContent {
  readonly bytes: Uint8Array;
  readonly type: PhotoType;
  readonly sha256: string;
}

/** What a photo file write accepts: the bytes, or a stream of them. */
export type PhotoInput = Uint8Array | AsyncIterable<Uint8Array>;

/** A photo of a record created with its photos, in the order given. */
export interface CreatedPhoto {
  readonly photoId: string;
  readonly sha256: string;
  readonly size: number;
  readonly type: PhotoType;
}

/** A record created with its photos (`Session.createRecordWithPhotos`). */
export interface RecordWithPhotos {
  readonly record: ChildRecord;
  /** One per photo given, in the same order. */
  readonly photos: CreatedPhoto[];
}

/** A photo checked, stripped and digested, with its new id: ready to encrypt. */
interface PreparedPhoto extends CreatedPhoto {
  readonly clean: Uint8Array;
}

/** What runs write transactions on one database (a storage handle, a RecordStore). */
export interface WriteTransactions {
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
}

/**
 * The query for the photo ids pending in `schema` (`main`, or an ATTACHed vault's alias) that no
 * `photo_files` row vouches for: files an interrupted save wrote, or a removal had yet to delete.
 * Selects `photo_id`; a caller may add `AND …` conditions on `p`.
 */
export function orphanPendingPhotosSql(schema: string): string {
  return `SELECT p.photo_id FROM ${schema}.photo_files_pending p WHERE NOT EXISTS (SELECT 1 FROM ${schema}.photo_files f WHERE f.photo_id = p.photo_id)`;
}

/**
 * Settles photo ids left in `photo_files_pending` (see vault-schema.ts, version 4): the file of
 * each one no `photo_files` row vouches for is deleted, then the pending row. Each id in its own
 * write transaction, and the file is deleted while it is held: a save running in another process
 * on the same database cannot commit the file meanwhile, and finds its pending row gone
 * (VAULT_BUSY) instead of committing a ref to a deleted file. Returns the number of files deleted
 * (or already absent). Called at login (`removeInterruptedPhotoFiles`), by a save that failed and
 * after a removal.
 */
export async function settlePendingPhotos(fs: FileSystem, db: WriteTransactions, dbKey: Uint8Array, photoIds: readonly string[]): Promise<number> {
  let removed = 0;
  for (const photoId of photoIds) {
    removed += await db.transaction(async (tx) => {
      const orphan = (await tx.query(`${orphanPendingPhotosSql('main')} AND p.photo_id = ?`, [photoId])).length > 0;
      if (orphan) await fs.remove(photoPath(dbKey, photoId));
      await tx.execute('DELETE FROM photo_files_pending WHERE photo_id = ?', [photoId]);
      return orphan ? 1 : 0;
    });
  }
  return removed;
}

/**
 * At login: settles every pending photo of the database (interrupted saves and removals). The
 * list is read without the write lock (usually empty: a login takes no lock for nothing).
 */
export async function removeInterruptedPhotoFiles(fs: FileSystem, db: SqlExecutor & WriteTransactions, dbKey: Uint8Array): Promise<number> {
  const rows = await db.query<{ photo_id: string }>('SELECT photo_id FROM photo_files_pending');
  return rows.length === 0 ? 0 : settlePendingPhotos(fs, db, dbKey, rows.map((r) => r.photo_id));
}

function tooLarge(max: number): FieldvaultError {
  return new FieldvaultError('PHOTO_TOO_LARGE', { detail: `at most ${max} bytes`, details: { maxBytes: max } });
}

function notFound(): FieldvaultError {
  return new FieldvaultError('PHOTO_NOT_FOUND');
}

/** Reads the input into memory, refusing it as soon as it passes `max` bytes. */
async function readCapped(data: PhotoInput, max: number): Promise<Uint8Array> {
  if (data instanceof Uint8Array) {
    if (data.byteLength > max) throw tooLarge(max);
    return data;
  }
  if (data === null || typeof data !== 'object' || typeof (data as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'photo: bytes or an async iterable of bytes', details: { field: 'photo' } });
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of data) {
    if (!(chunk instanceof Uint8Array)) throw new FieldvaultError('INPUT_INVALID', { detail: 'photo: chunks must be bytes', details: { field: 'photo' } });
    total += chunk.byteLength;
    if (total > max) throw tooLarge(max);
    parts.push(chunk);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** The photo code for a file that fails to decrypt: our own files are always the current format, so any format error is tampering. */
function asTampered(err: unknown): unknown {
  if ((err as { code?: unknown } | null)?.code === 'CRYPTO_FORMAT_UNSUPPORTED') {
    return new FieldvaultError('CRYPTO_FILE_TAMPERED', { detail: 'the photo file header was altered', cause: err });
  }
  return err;
}

function contentMismatch(): FieldvaultError {
  return new FieldvaultError('CRYPTO_FILE_TAMPERED', { detail: 'the photo does not match the digest on its record' });
}

/** A Readable over `source` whose errors reach `into`, piped into it. */
function pipeInto(source: AsyncIterable<Uint8Array>, into: Transform): Transform {
  const readable = Readable.from(source, { objectMode: false });
  readable.on('error', (err) => into.destroy(err));
  return readable.pipe(into);
}

/**
 * Re-encrypts one photo file from one database key to another (migration). The new file appears
 * only after the old one decrypted completely, so a tampered or cut source never yields a new
 * file. Returns false when the source file is missing.
 * @throws CRYPTO_FILE_TAMPERED when the source file fails authentication.
 */
export async function reencryptPhoto(fs: FileSystem, fromKey: Uint8Array, toKey: Uint8Array, photoId: string): Promise<boolean> {
  const source = await fs.openRead(photoPath(fromKey, photoId));
  if (source === undefined) return false;
  const decrypt = createDecryptStream(fromKey);
  const encrypt = createEncryptStream(toKey);
  try {
    await pipeline(Readable.from(source, { objectMode: false }), decrypt, encrypt, async (sealed: AsyncIterable<Uint8Array>) => {
      await fs.writeFileAtomic(photoPath(toKey, photoId), sealed);
    });
  } catch (err) {
    throw asTampered(err);
  }
  return true;
}

export interface PhotoStoreOptions {
  /** Largest accepted input in bytes. */
  readonly maxBytes: number;
  readonly username: string;
}

/**
 * Photos of the records of one database: encrypted on write into the hidden photo folder
 * (chunked AEAD under a per-file key from the database key), metadata stripped first, verified
 * on read. Every call checks that the record is visible to the session first.
 */
export class PhotoStore {
  readonly #fs: FileSystem;
  readonly #db: SqlExecutor;
  readonly #records: RecordStore;
  readonly #key: Uint8Array;
  /** File names of photo saves in progress, by photo id (the key may be zeroed by a logout before they end). */
  readonly #unsettled = new Map<string, string>();
  readonly #o: PhotoStoreOptions;

  constructor(fs: FileSystem, db: SqlExecutor, records: RecordStore, dbKey: Uint8Array, options: PhotoStoreOptions) {
    this.#fs = fs;
    this.#db = db;
    this.#records = records;
    this.#key = dbKey;
    this.#o = options;
  }

  /** Reads, checks (size, type), strips and digests one photo, and gives it a new id. Writes nothing. */
  async #prepare(data: PhotoInput): Promise<PreparedPhoto> {
    const raw = await readCapped(data, this.#o.maxBytes);
    const type = detectPhotoType(raw);
    if (type === undefined) throw new FieldvaultError('PHOTO_TYPE_UNSUPPORTED');
    const clean = stripImageMetadata(raw, type);
    if (clean.byteLength === 0 || clean.byteLength > MAX_PHOTO_BYTES) throw tooLarge(this.#o.maxBytes);
    return { photoId: globalThis.crypto.randomUUID(), sha256: sha256Hex(clean), size: clean.byteLength, type, clean };
  }

  /**
   * Commits the photo id as pending (its own transaction), THEN writes the encrypted file: a kill
   * at any point after leaves a row that tells the next login which file to delete.
   */
  async #writePending(photoId: string, bytes: Uint8Array): Promise<void> {
    // Named and encrypted before the first await: a logout meanwhile zeroes the session's key in
    // place, and nothing may ever be written under a zeroed key (anyone could decrypt it).
    if (this.#key.every((b) => b === 0)) throw new FieldvaultError('VAULT_LOCKED');
    const path = photoPath(this.#key, photoId);
    const sealed = encryptBuffer(this.#key, bytes);
    this.#unsettled.set(photoId, path);
    await this.#records.transaction((tx) => tx.execute('INSERT OR IGNORE INTO photo_files_pending (photo_id) VALUES (?)', [photoId]));
    await this.#fs.mkdir(PHOTO_DIRECTORY);
    await this.#fs.writeFileAtomic(path, sealed);
  }

  /**
   * Inside the transaction that records the photo: its `photo_files` row, and its pending row goes.
   * @throws VAULT_BUSY when the pending row is gone: a login in another process took the save for
   * an interrupted one and deleted its file (the transaction rolls back; nothing refers to it).
   */
  async #commitFile(tx: SqlExecutor, recordId: string, p: CreatedPhoto): Promise<void> {
    await tx.execute('INSERT OR IGNORE INTO photo_files (photo_id, record_id, sha256, size, type) VALUES (?, ?, ?, ?, ?)', [p.photoId, recordId, p.sha256, p.size, p.type]);
    if ((await tx.execute('DELETE FROM photo_files_pending WHERE photo_id = ?', [p.photoId])) === 0) {
      throw new FieldvaultError('VAULT_BUSY', { detail: 'another process opened this database and cleaned up this photo save' });
    }
  }

  /** After a save that failed: its files go with their pending rows (best effort: else the next login does it). */
  async #discard(photoIds: readonly string[]): Promise<void> {
    if (photoIds.length === 0) return;
    const paths = photoIds.map((id) => this.#unsettled.get(id));
    this.#settled(photoIds);
    try {
      await settlePendingPhotos(this.#fs, this.#records, this.#key, photoIds);
    } catch (err) {
      // The device was wiped by its retirement while this save waited (write-gate.ts): its
      // database is gone, so no row can vouch for these files and no login will clean them up.
      // (Their names come from before the wipe: the session's key is zeroed by now.)
      if (isFieldvaultError(err) && err.code === 'VAULT_WIPED') {
        for (const path of paths) if (path !== undefined) await this.#fs.remove(path).catch(() => undefined);
      }
    }
  }

  /** Forgets the file names of photo saves that are over (committed or discarded). */
  #settled(photoIds: readonly string[]): void {
    for (const id of photoIds) this.#unsettled.delete(id);
  }

  /**
   * Adds a photo to a visible record: checks its type and size, strips location metadata, commits
   * its id as pending, encrypts it to its file, then records it on the record and clears the
   * pending row (one transaction). A kill in between leaves a pending row, and the next login
   * deletes the file (`removeInterruptedPhotoFiles`); a failed commit deletes it at once.
   * @throws VAULT_RECORD_NOT_FOUND when the record is not visible.
   * @throws PHOTO_TOO_LARGE when the input is larger than the configured cap.
   * @throws PHOTO_TYPE_UNSUPPORTED when it is not a well-formed JPEG, PNG or WebP.
   * @throws RECORD_TOO_LARGE when the record already has the maximum number of photos.
   */
  async add(recordId: string, data: PhotoInput): Promise<StoredPhoto> {
    await this.#records.get(recordId);
    const p = await this.#prepare(data);
    try {
      await this.#writePending(p.photoId, p.clean);
      const record = await this.#records.mutate(recordId, async (current, tx) => {
        const next = addPhoto(current, p.photoId, { sha256: p.sha256, size: p.size, type: p.type, by: this.#o.username, ts: this.#records.nextTimestamp() });
        await this.#commitFile(tx, recordId, p);
        return next;
      });
      this.#settled([p.photoId]);
      return { photoId: p.photoId, sha256: p.sha256, size: p.size, type: p.type, record };
    } catch (err) {
      await this.#discard([p.photoId]);
      throw err;
    }
  }

  /**
   * Creates a record together with its photos, in ONE transaction: everything is checked first
   * (the form, every photo's type and size, the photo count), so a refusal writes nothing; then
   * each photo's encrypted file is written (each with its pending row), then one transaction stores
   * the record, the photo refs and their `photo_files` rows and clears the pending rows. A kill
   * leaves either nothing (the next login deletes the files) or the whole record with its photos.
   * @throws RECORD_INVALID, RECORD_TOO_LARGE, INPUT_INVALID, PHOTO_TOO_LARGE, PHOTO_TYPE_UNSUPPORTED
   */
  async createWithPhotos(fields: Readonly<Record<string, FieldValue | undefined>>, photos: readonly PhotoInput[]): Promise<RecordWithPhotos> {
    if (!Array.isArray(photos)) throw new FieldvaultError('INPUT_INVALID', { detail: 'photos: an array of photos', details: { field: 'photos' } });
    let record = this.#records.draft(fields);
    const prepared: PreparedPhoto[] = [];
    for (const data of photos as readonly PhotoInput[]) prepared.push(await this.#prepare(data));
    for (const p of prepared) {
      record = addPhoto(record, p.photoId, { sha256: p.sha256, size: p.size, type: p.type, by: this.#o.username, ts: this.#records.nextTimestamp() });
    }
    const written: string[] = [];
    try {
      for (const p of prepared) {
        written.push(p.photoId);
        await this.#writePending(p.photoId, p.clean);
      }
      const stored = record;
      await this.#records.transaction(async (tx) => {
        await this.#records.store(tx, stored);
        for (const p of prepared) await this.#commitFile(tx, stored.id, p);
      });
    } catch (err) {
      await this.#discard(written);
      throw err;
    }
    this.#settled(written);
    return { record, photos: prepared.map(({ photoId, sha256, size, type }) => ({ photoId, sha256, size, type })) };
  }

  async #locate(tx: SqlExecutor, recordId: string, photoId: string, includeDeleted = false): Promise<{ ref: PhotoRef; path: string }> {
    const record = await this.#records.load(tx, recordId, includeDeleted);
    if (typeof photoId !== 'string' || !UUID_V4_PATTERN.test(photoId)) throw notFound();
    const ref = Object.hasOwn(record.photos, photoId) ? record.photos[photoId] : undefined;
    if (ref === undefined || ref.removedAt !== undefined) throw notFound();
    const rows = await tx.query('SELECT photo_id FROM photo_files WHERE photo_id = ? AND record_id = ?', [photoId, recordId]);
    if (rows.length === 0) throw notFound();
    return { ref, path: photoPath(this.#key, photoId) };
  }

  /**
   * A photo of a visible record, decrypted and fully verified (every chunk, the end of the file,
   * and the digest on the record) before it is returned.
   * @throws VAULT_RECORD_NOT_FOUND, PHOTO_NOT_FOUND when the record or photo is not visible or not on this device.
   * @throws CRYPTO_FILE_TAMPERED when the file was altered, cut short, or swapped for another photo.
   */
  async read(recordId: string, photoId: string, options: { readonly includeDeleted?: boolean } = {}): Promise<PhotoContent> {
    const { ref, path } = await this.#locate(this.#db, recordId, photoId, options.includeDeleted === true);
    const source = await this.#fs.openRead(path);
    if (source === undefined) throw notFound();
    let bytes: Uint8Array;
    try {
      bytes = await decryptToBuffer(this.#key, source);
    } catch (err) {
      throw asTampered(err);
    }
    if (bytes.byteLength !== ref.size || sha256Hex(bytes) !== ref.sha256) throw contentMismatch();
    return { bytes, type: ref.type, sha256: ref.sha256 };
  }

  /**
   * A photo of a visible record as a stream of decrypted chunks. Each 64 KiB chunk is yielded only
   * after its own tag verified, so no forged byte is ever yielded; but a file cut off after a whole
   * chunk, or swapped for another photo, is only detected at the end: **treat the bytes as
   * untrusted until the iteration finishes without throwing** (or use `read`).
   * @throws (during iteration) CRYPTO_FILE_TAMPERED; before the first chunk, VAULT_RECORD_NOT_FOUND
   * or PHOTO_NOT_FOUND.
   */
  async *stream(recordId: string, photoId: string): AsyncGenerator<Uint8Array, void, undefined> {
    const { ref, path } = await this.#locate(this.#db, recordId, photoId);
    const source = await this.#fs.openRead(path);
    if (source === undefined) throw notFound();
    const decrypted = pipeInto(source, createDecryptStream(this.#key));
    const hash = createSha256();
    let size = 0;
    try {
      for await (const chunk of decrypted as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        size += chunk.byteLength;
        yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
    } catch (err) {
      throw asTampered(err);
    } finally {
      decrypted.destroy();
    }
    if (size !== ref.size || hash.hex() !== ref.sha256) throw contentMismatch();
  }

  /**
   * Removes a photo from a visible record (a tombstone on the record, so merge never brings it
   * back) and deletes its file.
   * @throws VAULT_RECORD_NOT_FOUND, PHOTO_NOT_FOUND when the record or photo is not visible.
   */
  async remove(recordId: string, photoId: string): Promise<ChildRecord> {
    let ownedElsewhere = false;
    const record = await this.#records.mutate(recordId, async (current, tx) => {
      const ref = typeof photoId === 'string' && Object.hasOwn(current.photos, photoId) ? current.photos[photoId] : undefined;
      if (ref === undefined || ref.removedAt !== undefined) throw notFound();
      // Only this record's row: a record pulled from a server may name another record's photo id,
      // whose file (named from the photo id alone) must then stay.
      await tx.execute('DELETE FROM photo_files WHERE photo_id = ? AND record_id = ?', [photoId, recordId]);
      ownedElsewhere = (await tx.query('SELECT 1 AS x FROM photo_files WHERE photo_id = ?', [photoId])).length > 0;
      // With the commit: a kill before the file is deleted leaves this row, and the next login deletes it.
      if (!ownedElsewhere) await this.markForDeletion(tx, photoId);
      return removePhoto(current, photoId, { by: this.#o.username, ts: this.#records.nextTimestamp() });
    });
    if (!ownedElsewhere) await this.deleteFile(photoId);
    return record;
  }

  /**
   * Keeps a photo downloaded from a server (sync): the bytes were checked against the ref by the
   * transport (size, SHA-256, type) and are checked again here, then encrypted into the photo
   * folder and recorded in one transaction — only while the record still references the photo
   * (not removed). Not metadata-stripped again: the uploading phone did, and the digest must hold.
   * Returns false when the record no longer wants the photo, or when a photo of that id is already
   * on this device (nothing is written).
   * @throws PHOTO_DIGEST_MISMATCH when the bytes do not match the ref.
   */
  async storeDownloaded(recordId: string, photoId: string, ref: PhotoRef, bytes: Uint8Array): Promise<boolean> {
    if (bytes.byteLength !== ref.size || sha256Hex(bytes) !== ref.sha256 || detectPhotoType(bytes) !== ref.type) {
      throw new FieldvaultError('PHOTO_DIGEST_MISMATCH', { detail: 'the downloaded photo does not match its record' });
    }
    // One file per photo id: when a row already vouches for it (this record's, or another
    // record naming the same id — a buggy or hostile server), writing would replace a verified
    // file with other bytes under the old row's digest. Nothing is downloaded over it.
    if (await this.onDevice(photoId)) return false;
    let kept: boolean;
    try {
      await this.#writePending(photoId, bytes);
      kept = await this.#records.transaction(async (tx) => {
        const rows = await tx.query<{ doc: string }>('SELECT doc FROM records WHERE id = ?', [recordId]);
        const record = rows[0] === undefined ? undefined : recordFromDoc(rows[0].doc);
        const current = record !== undefined && Object.hasOwn(record.photos, photoId) ? record.photos[photoId] : undefined;
        if (current === undefined || current.removedAt !== undefined || current.sha256 !== ref.sha256) return false;
        await this.#commitFile(tx, recordId, { photoId, sha256: ref.sha256, size: ref.size, type: ref.type });
        return true;
      });
    } catch (err) {
      await this.#discard([photoId]);
      throw err;
    }
    // Not wanted any more: the file goes (unless a row vouches for it), and its pending row.
    if (!kept) await this.#discard([photoId]);
    else this.#settled([photoId]);
    return kept;
  }

  /** True when a photo of this id has its file on this device (for whichever record). */
  async onDevice(photoId: string): Promise<boolean> {
    return (await this.#db.query('SELECT 1 AS x FROM photo_files WHERE photo_id = ?', [photoId])).length > 0;
  }

  /**
   * Inside the transaction that drops a photo's `photo_files` row: marks its file for deletion, so
   * that a kill before `deleteFile` leaves a row the next login acts on.
   */
  async markForDeletion(tx: SqlExecutor, photoId: string): Promise<void> {
    await tx.execute('INSERT OR IGNORE INTO photo_files_pending (photo_id) VALUES (?)', [photoId]);
  }

  /**
   * Deletes the encrypted file of a photo marked with `markForDeletion` (a removal, here or pulled
   * from a server), then its pending row; a file some `photo_files` row still vouches for stays.
   */
  async deleteFile(photoId: string): Promise<void> {
    await settlePendingPhotos(this.#fs, this.#records, this.#key, [photoId]);
  }
}
