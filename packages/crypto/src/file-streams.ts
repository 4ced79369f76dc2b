import { Transform } from 'node:stream';
import { FileDecryptor, FileEncryptor } from './file-format.js';

/** An incremental byte transformer: the file-format encryptor/decryptor and the backup body around them. */
export interface ByteCodec {
  update(chunk: Uint8Array): Iterable<Uint8Array>;
  final(): Iterable<Uint8Array>;
}

/**
 * A Transform stream over `codec`: what each input chunk yields is pushed as it comes, then what
 * `final()` yields. An error the codec throws (part-way through its output, too) is emitted on
 * the stream after `mapError`.
 */
export function codecStream(codec: ByteCodec, mapError: (err: unknown) => unknown = (err) => err): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        for (const part of codec.update(chunk)) this.push(part);
        callback();
      } catch (err) {
        callback(mapError(err) as Error);
      }
    },
    flush(callback) {
      try {
        for (const part of codec.final()) this.push(part);
        callback();
      } catch (err) {
        callback(mapError(err) as Error);
      }
    },
  });
}

/**
 * A Transform stream that encrypts bytes into the chunked file format (see file-format.ts).
 * The output is safe to write to disk as it comes.
 * @throws CRYPTO_KEY_INVALID (synchronously) when `dbKey` is not 32 bytes.
 */
export function createEncryptStream(dbKey: Uint8Array): Transform {
  return codecStream(new FileEncryptor(dbKey));
}

/**
 * A Transform stream that decrypts the chunked file format.
 *
 * Each 64 KiB chunk is emitted only after its own tag verified, so no forged bytes are ever
 * emitted. But a file cut off after a whole chunk is only detected at the end: **treat the output
 * as untrusted until the stream finishes without an error** (write it to a temporary file and
 * rename on 'finish', or use `decryptToBuffer`, which returns only after full verification).
 * Errors are emitted on the stream as CRYPTO_FILE_TAMPERED (altered, reordered, duplicated,
 * dropped or cut chunks, appended data, wrong key) or CRYPTO_FORMAT_UNSUPPORTED (not an
 * "FVF" version 1 file).
 * @throws CRYPTO_KEY_INVALID (synchronously) when `dbKey` is not 32 bytes.
 */
export function createDecryptStream(dbKey: Uint8Array): Transform {
  return codecStream(new FileDecryptor(dbKey));
}
