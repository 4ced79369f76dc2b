/**
 * The file seam of the SDK: the few operations the keyring, the device key file and the photo
 * folder need, on paths relative to the device directory ("keyring.json", ".photos/ab12…").
 * `createNodeFileSystem` implements it on node:fs; another platform passes its own.
 *
 * Failures of the medium (full, read-only, I/O) are VAULT_STORAGE_FAILED.
 */
export interface FileSystem {
  /** The whole file, or `undefined` when it does not exist. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /** The file as a stream of chunks, or `undefined` when it does not exist. */
  openRead(path: string): Promise<AsyncIterable<Uint8Array> | undefined>;
  /**
   * Replaces `path` atomically: writes a temporary file beside it, flushes it to disk, renames it
   * over `path`, and flushes the directory. A crash leaves the old file or the new one, never a
   * torn one. When `data` is a stream that fails, nothing is renamed and the error passes through.
   */
  writeFileAtomic(path: string, data: Uint8Array | AsyncIterable<Uint8Array>, options?: { readonly mode?: number }): Promise<void>;
  /** Deletes `path` and flushes its directory; no-op when it does not exist. */
  remove(path: string): Promise<void>;
  /** True when `path` exists. */
  exists(path: string): Promise<boolean>;
  /** Permission bits of `path` (e.g. 0o600), `undefined` when missing or on platforms without modes. */
  mode(path: string): Promise<number | undefined>;
  /** Creates the directory (and its parents) with mode 0700 when missing. */
  mkdir(path: string): Promise<void>;
  /** Names in the directory (not paths), `[]` when it does not exist. */
  list(path: string): Promise<string[]>;
  /**
   * Runs `work` holding an exclusive lock named after `path` that other processes (and other
   * `FileSystem` objects on the same directory) respect, waiting for it when another holds it. The
   * keyring and the device key file do every read-modify-write under it, so two `Device` objects on
   * one directory (an app and its background worker) do not lose each other's writes (audit H3). A
   * lock left by a killed process goes stale and is taken over. Optional: a platform where only one
   * process can open the directory may leave it out (the SDK then only serialises within a `Device`).
   * @throws VAULT_BUSY when the lock stays held by a live holder for too long.
   */
  withLock?<T>(path: string, work: () => Promise<T>): Promise<T>;
}

/** Marker in the names of temporary files of `writeFileAtomic`, so that leftovers of a crash can be removed. */
export const TEMP_FILE_MARKER = '.tmp-';
