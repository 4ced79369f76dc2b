import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { FieldvaultError } from '@fieldvault/protocol';
import { lock } from 'proper-lockfile';
import { TEMP_FILE_MARKER, type FileSystem } from './file-system.js';

/** Options of `createNodeFileSystem`. */
export interface NodeFileSystemOptions {
  /**
   * A lock (`withLock`) whose holder has not refreshed it for this long is taken to be left by a
   * killed process and is taken over. Default 10 000 ms; at least 2 000.
   */
  readonly lockStaleMs?: number;
  /** How long `withLock` waits for a held lock before VAULT_BUSY. Default 30 000 ms (more than `lockStaleMs`). */
  readonly lockWaitMs?: number;
}

export const DEFAULT_LOCK_STALE_MS = 10_000;
export const DEFAULT_LOCK_WAIT_MS = 30_000;
/** Poll interval while waiting for a held lock. */
const LOCK_POLL_MS = 25;

const MEDIUM_ERRORS = new Set(['ENOSPC', 'EROFS', 'EIO', 'EDQUOT', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE', 'EBUSY']);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Our error for a failed file operation; the path is relative to the device directory and holds no secret. */
function storageFailed(err: unknown, path: string): unknown {
  const code = codeOf(err);
  if (code !== undefined && MEDIUM_ERRORS.has(code)) {
    return new FieldvaultError('VAULT_STORAGE_FAILED', { detail: `${code} on ${path}`, cause: err });
  }
  return err;
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A `FileSystem` on node:fs, rooted at `root`. Relative paths only; `..` that would leave the
 * root is refused (the core builds every path itself, this is a second line of defence).
 */
export function createNodeFileSystem(root: string, options: NodeFileSystemOptions = {}): FileSystem {
  const lockStaleMs = options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS;
  const lockWaitMs = options.lockWaitMs ?? Math.max(DEFAULT_LOCK_WAIT_MS, 3 * lockStaleMs);
  if (!Number.isInteger(lockStaleMs) || lockStaleMs < 2_000) {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'lockStaleMs: an integer ≥ 2000', details: { field: 'lockStaleMs' } });
  }
  if (!Number.isInteger(lockWaitMs) || lockWaitMs < 0) {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'lockWaitMs: an integer ≥ 0', details: { field: 'lockWaitMs' } });
  }

  function resolve(path: string): string {
    const rel = normalize(path);
    if (isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`)) {
      throw new FieldvaultError('INTERNAL_ERROR', { detail: 'a device path left the device directory' });
    }
    return join(root, rel);
  }

  return {
    async readFile(path) {
      try {
        return new Uint8Array(await readFile(resolve(path)));
      } catch (err) {
        if (codeOf(err) === 'ENOENT') return undefined;
        throw storageFailed(err, path);
      }
    },

    async openRead(path) {
      const full = resolve(path);
      // Open first, so that a missing file is reported here rather than mid-iteration.
      let handle;
      try {
        handle = await open(full, 'r');
      } catch (err) {
        if (codeOf(err) === 'ENOENT') return undefined;
        throw storageFailed(err, path);
      }
      return createReadStream(full, { fd: handle, autoClose: true, highWaterMark: 64 * 1024 }) as AsyncIterable<Uint8Array>;
    },

    async writeFileAtomic(path, data, options = {}) {
      const full = resolve(path);
      const dir = dirname(full);
      const tmp = join(dir, `.${randomBytes(8).toString('hex')}${TEMP_FILE_MARKER}${Date.now()}`);
      try {
        const handle = await open(tmp, 'wx', options.mode ?? 0o600);
        try {
          if (data instanceof Uint8Array) {
            await handle.writeFile(data);
          } else {
            for await (const chunk of data) await handle.write(chunk);
          }
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(tmp, full);
        await fsyncDirectory(dir);
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw storageFailed(err, path);
      }
    },

    async remove(path) {
      const full = resolve(path);
      try {
        await rm(full, { force: true });
        await fsyncDirectory(dirname(full)).catch((err: unknown) => {
          if (codeOf(err) !== 'ENOENT') throw err;
        });
      } catch (err) {
        throw storageFailed(err, path);
      }
    },

    async exists(path) {
      try {
        await stat(resolve(path));
        return true;
      } catch (err) {
        if (codeOf(err) === 'ENOENT') return false;
        throw storageFailed(err, path);
      }
    },

    async mode(path) {
      try {
        return (await stat(resolve(path))).mode & 0o777;
      } catch (err) {
        if (codeOf(err) === 'ENOENT') return undefined;
        throw storageFailed(err, path);
      }
    },

    async mkdir(path) {
      try {
        await mkdir(resolve(path), { recursive: true, mode: 0o700 });
      } catch (err) {
        throw storageFailed(err, path);
      }
    },

    // proper-lockfile: an atomic mkdir of `<path>.lock`, its mtime refreshed while held; a lock not
    // refreshed for `lockStaleMs` (its holder was killed) is removed by the next taker. Works across
    // processes and across objects in one process (each attempt is a real mkdir).
    async withLock(path, work) {
      const full = resolve(path);
      let release: () => Promise<void>;
      try {
        release = await lock(full, {
          realpath: false,
          stale: lockStaleMs,
          retries: { retries: Math.ceil(lockWaitMs / LOCK_POLL_MS), factor: 1, minTimeout: LOCK_POLL_MS, maxTimeout: LOCK_POLL_MS },
          // The default throws from a timer (an uncaught exception). A refresh that failed means the
          // lock may have been taken over: the keyring's rebase-on-write still keeps both writes.
          onCompromised: () => undefined,
        });
      } catch (err) {
        if (codeOf(err) === 'ELOCKED') throw new FieldvaultError('VAULT_BUSY', { detail: `${path} is locked by another process`, cause: err });
        throw storageFailed(err, path);
      }
      try {
        return await work();
      } finally {
        await release().catch(() => undefined);
      }
    },

    async list(path) {
      try {
        return (await readdir(resolve(path))).sort();
      } catch (err) {
        if (codeOf(err) === 'ENOENT') return [];
        throw storageFailed(err, path);
      }
    },
  };
}
