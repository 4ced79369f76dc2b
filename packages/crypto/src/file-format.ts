import { FieldvaultError } from '@fieldvault/protocol';
import { GCM_NONCE_LENGTH, GCM_TAG_LENGTH, aesGcmOpen, aesGcmSeal } from './aes-gcm.js';
import { assertKey, concatBytes, isBytes, randomBytes, wipe } from './bytes.js';
import { ByteQueue } from './byte-queue.js';
import { deriveSubkey } from './hkdf.js';
import { labels } from './labels.js';

/*
 * Encrypted file format, version 1 (photos and other blobs kept outside the database):
 *
 *   header  = "FVF" (3 bytes) || version 0x01 || salt (16 random bytes)          20 bytes
 *   fileKey = HKDF-SHA-256(ikm = DB key, salt, info = "fieldvault/file/v1", 32)
 *   body    = chunk_0 || chunk_1 || … || chunk_n
 *   chunk_i = AES-256-GCM(fileKey, nonce_i, plaintext_i, aad = header) as ciphertext || 16-byte tag
 *   nonce_i = i as 11-byte big-endian counter || flag (0x01 on the last chunk, else 0x00)
 *
 * Every plaintext chunk is exactly 64 KiB except the last, which holds 0..64 KiB; an empty file
 * is one empty last chunk. This is the STREAM construction (Hoang, Reyhanitabar, Rogaway,
 * Vizár 2015): the counter detects reordered, dropped and duplicated chunks, the last-chunk flag
 * detects truncation at a chunk boundary and appended data, and the header in the AAD (plus the
 * per-file key from its salt) ties every chunk to this one file.
 */

export const FILE_MAGIC = new Uint8Array([0x46, 0x56, 0x46]); // "FVF"
export const FILE_VERSION = 1;
export const FILE_SALT_LENGTH = 16;
export const FILE_HEADER_LENGTH = FILE_MAGIC.byteLength + 1 + FILE_SALT_LENGTH;
/** Plaintext bytes per chunk. */
export const FILE_CHUNK_SIZE = 64 * 1024;
const SEALED_CHUNK_SIZE = FILE_CHUNK_SIZE + GCM_TAG_LENGTH;

/** Size of the encrypted file for a plaintext of `plaintextLength` bytes (for size caps and progress). */
export function encryptedFileSize(plaintextLength: number): number {
  const chunks = Math.max(1, Math.ceil(plaintextLength / FILE_CHUNK_SIZE));
  return FILE_HEADER_LENGTH + plaintextLength + chunks * GCM_TAG_LENGTH;
}

function chunkNonce(counter: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(GCM_NONCE_LENGTH);
  let c = counter;
  for (let i = GCM_NONCE_LENGTH - 2; i >= 0 && c > 0; i--) {
    nonce[i] = c % 256;
    c = Math.floor(c / 256);
  }
  nonce[GCM_NONCE_LENGTH - 1] = last ? 1 : 0;
  return nonce;
}

function tampered(detail?: string): FieldvaultError {
  return new FieldvaultError('CRYPTO_FILE_TAMPERED', detail === undefined ? {} : { detail });
}

function requireBytes(data: unknown): Uint8Array {
  if (!isBytes(data)) throw new FieldvaultError('INPUT_INVALID', { detail: 'file data must be bytes, not strings' });
  return data;
}

/** Incremental encryptor behind the stream and buffer APIs. Emits nothing it will later change. */
export class FileEncryptor {
  readonly #header: Uint8Array;
  readonly #key: Uint8Array;
  readonly #queue = new ByteQueue();
  #counter = 0;
  #headerSent = false;
  #finished = false;

  /** @throws CRYPTO_KEY_INVALID when `dbKey` is not 32 bytes. */
  constructor(dbKey: Uint8Array) {
    assertKey(dbKey, 'database key');
    const salt = randomBytes(FILE_SALT_LENGTH);
    this.#header = new Uint8Array(FILE_HEADER_LENGTH);
    this.#header.set(FILE_MAGIC, 0);
    this.#header[FILE_MAGIC.byteLength] = FILE_VERSION;
    this.#header.set(salt, FILE_MAGIC.byteLength + 1);
    // A fresh key per file means the counter nonces never repeat under one key across files.
    this.#key = deriveSubkey(dbKey, labels.fileKey, salt);
  }

  update(data: Uint8Array): Uint8Array[] {
    if (this.#finished) throw new RangeError('FileEncryptor used after final()');
    const out = this.#start();
    this.#queue.push(requireBytes(data));
    // Strictly more than one chunk queued: only then is this chunk certainly not the last.
    while (this.#queue.length > FILE_CHUNK_SIZE) out.push(this.#seal(this.#queue.take(FILE_CHUNK_SIZE), false));
    return out;
  }

  final(): Uint8Array[] {
    if (this.#finished) throw new RangeError('FileEncryptor used after final()');
    const out = this.#start();
    out.push(this.#seal(this.#queue.take(this.#queue.length), true));
    this.#finished = true;
    wipe(this.#key);
    return out;
  }

  #start(): Uint8Array[] {
    if (this.#headerSent) return [];
    this.#headerSent = true;
    return [this.#header];
  }

  #seal(plaintext: Uint8Array, last: boolean): Uint8Array {
    const sealed = aesGcmSeal(this.#key, chunkNonce(this.#counter, last), plaintext, this.#header);
    this.#counter++;
    return sealed;
  }
}

/**
 * Incremental decryptor behind the stream and buffer APIs. It returns a chunk's plaintext only
 * after that chunk's tag verified; whole-file integrity (nothing cut off the end) is known only
 * when `final()` returns.
 */
export class FileDecryptor {
  readonly #dbKey: Uint8Array;
  readonly #queue = new ByteQueue();
  #header: Uint8Array | undefined;
  #key: Uint8Array | undefined;
  #counter = 0;
  #finished = false;

  /** @throws CRYPTO_KEY_INVALID when `dbKey` is not 32 bytes. */
  constructor(dbKey: Uint8Array) {
    assertKey(dbKey, 'database key');
    this.#dbKey = dbKey;
  }

  /**
   * @throws CRYPTO_FORMAT_UNSUPPORTED when the header is not an "FVF" version 1 header.
   * @throws CRYPTO_FILE_TAMPERED when a chunk fails authentication.
   */
  update(data: Uint8Array): Uint8Array[] {
    if (this.#finished) throw new RangeError('FileDecryptor used after final()');
    this.#queue.push(requireBytes(data));
    const out: Uint8Array[] = [];
    if (this.#key === undefined && !this.#readHeader()) return out;
    // Keep at least one byte back: a chunk is "not last" only if something follows it.
    while (this.#queue.length > SEALED_CHUNK_SIZE) out.push(this.#open(this.#queue.take(SEALED_CHUNK_SIZE), false));
    return out;
  }

  /**
   * @throws CRYPTO_FILE_TAMPERED when the file is cut short, has data appended, or the last chunk
   * fails authentication.
   * @throws CRYPTO_FORMAT_UNSUPPORTED when the header is not an "FVF" version 1 header.
   */
  final(): Uint8Array[] {
    if (this.#finished) throw new RangeError('FileDecryptor used after final()');
    this.#finished = true;
    if (this.#key === undefined && !this.#readHeader()) {
      // The magic and version seen so far were right (else #readHeader threw): the file was cut inside its header.
      throw tampered('file ends inside its header');
    }
    const rest = this.#queue.take(this.#queue.length);
    if (rest.byteLength < GCM_TAG_LENGTH) {
      this.#wipe();
      throw tampered('file ends before its last chunk');
    }
    const out = [this.#open(rest, true)];
    this.#wipe();
    return out;
  }

  /** True once the header is parsed; throws as soon as the bytes seen rule out our format. */
  #readHeader(): boolean {
    const seen = this.#queue.peek(Math.min(this.#queue.length, FILE_MAGIC.byteLength + 1));
    for (let i = 0; i < seen.byteLength; i++) {
      const expected = i < FILE_MAGIC.byteLength ? FILE_MAGIC[i] : FILE_VERSION;
      if (seen[i] !== expected) {
        this.#finished = true;
        throw new FieldvaultError('CRYPTO_FORMAT_UNSUPPORTED', {
          detail: i < FILE_MAGIC.byteLength ? 'not a fieldvault encrypted file' : `encrypted file version ${seen[i]}`,
        });
      }
    }
    if (this.#queue.length < FILE_HEADER_LENGTH) return false;
    const header = this.#queue.take(FILE_HEADER_LENGTH).slice();
    this.#header = header;
    this.#key = deriveSubkey(this.#dbKey, labels.fileKey, header.subarray(FILE_MAGIC.byteLength + 1));
    return true;
  }

  #open(sealed: Uint8Array, last: boolean): Uint8Array {
    const key = this.#key;
    const header = this.#header;
    if (key === undefined || header === undefined) throw new RangeError('FileDecryptor: header not read');
    const plaintext = aesGcmOpen(key, chunkNonce(this.#counter, last), sealed, header);
    if (plaintext === undefined) {
      this.#finished = true;
      this.#wipe();
      // A wrong key, an edited byte, a moved, repeated or missing chunk, a cut or an appended
      // tail all surface here as one failed tag; they are not told apart.
      throw tampered();
    }
    this.#counter++;
    return plaintext;
  }

  #wipe(): void {
    if (this.#key !== undefined) wipe(this.#key);
  }
}


/**
 * Encrypts a whole buffer into the chunked file format.
 * @throws CRYPTO_KEY_INVALID when `dbKey` is not 32 bytes.
 */
export function encryptBuffer(dbKey: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const enc = new FileEncryptor(dbKey);
  return concatBytes([...enc.update(plaintext), ...enc.final()]);
}

/**
 * Decrypts a whole encrypted file. Returns only after every chunk and the end of the file
 * verified, so the result is fully authenticated.
 * @throws CRYPTO_FILE_TAMPERED when the file was altered, reordered, cut short, extended, or the key is wrong.
 * @throws CRYPTO_FORMAT_UNSUPPORTED when it is not an "FVF" version 1 file.
 * @throws CRYPTO_KEY_INVALID when `dbKey` is not 32 bytes.
 */
export function decryptBuffer(dbKey: Uint8Array, encrypted: Uint8Array): Uint8Array {
  const dec = new FileDecryptor(dbKey);
  return concatBytes([...dec.update(encrypted), ...dec.final()]);
}

/**
 * Decrypts an encrypted file read from `source` (a Readable or any async iterable of bytes) and
 * returns the plaintext only after the whole file verified.
 * @throws CRYPTO_FILE_TAMPERED, CRYPTO_FORMAT_UNSUPPORTED, CRYPTO_KEY_INVALID as `decryptBuffer`.
 * @throws INPUT_INVALID when the source yields strings instead of bytes.
 */
export async function decryptToBuffer(
  dbKey: Uint8Array,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Uint8Array> {
  const dec = new FileDecryptor(dbKey);
  const parts: Uint8Array[] = [];
  for await (const chunk of source) parts.push(...dec.update(chunk));
  parts.push(...dec.final());
  return concatBytes(parts);
}
