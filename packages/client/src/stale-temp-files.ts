import { TEMP_FILE_MARKER, type FileSystem } from './file-system.js';
import { PHOTO_DIRECTORY } from './photo-store.js';

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

/** Removes the stale temporary files a crash left in the device directory and its photo folder. */
export async function removeStaleTempFiles(fs: FileSystem): Promise<void> {
  for (const dir of ['.', PHOTO_DIRECTORY]) {
    for (const name of await fs.list(dir)) {
      if (isStaleTempFile(name, Date.now())) await fs.remove(dir === '.' ? name : `${dir}/${name}`);
    }
  }
}
