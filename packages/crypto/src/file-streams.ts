import { Transform } from 'node:stream';
import { FileDecryptor, FileEncryptor } from './file-format.js';

/**
 * A Transform stream that encrypts bytes into the chunked file format (see file-format.ts).
 * The output is safe to write to disk as it comes.
 * @throws CRYPTO_KEY_INVALID (synchronously) when `dbKey` is not 32 bytes.
 */
export function createEncryptStream(dbKey: Uint8Array): Transform {
  const enc = new FileEncryptor(dbKey);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        for (const part of enc.update(chunk)) this.push(part);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        for (const part of enc.final()) this.push(part);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
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
  const dec = new FileDecryptor(dbKey);
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        for (const part of dec.update(chunk)) this.push(part);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        for (const part of dec.final()) this.push(part);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}
