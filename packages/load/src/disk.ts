// Disk footprint of the server's data directory and of the phones' directories after a run: the
// growth section of docs/performance.md compares them as records and photos grow.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PHOTO_DIRECTORY } from '@fieldvault/client';

/** Bytes of every regular file under `dir` (apparent size; 0 when `dir` does not exist). */
export function directoryBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const full = join(dir, name);
    const st = lstatSync(full);
    if (st.isDirectory()) total += directoryBytes(full);
    else if (st.isFile()) total += st.size;
  }
  return total;
}

/** A phone's directory split the way it grows: encrypted databases (records) and encrypted photo files. */
export interface PhoneDisk {
  /** `databases/` (SQLCipher files: records, history, checkpoints). */
  readonly databaseBytes: number;
  /** The hidden photo folder (one AES-GCM file per photo). */
  readonly photoBytes: number;
  /** Everything in the phone's directory (keyring included). */
  readonly totalBytes: number;
}

export function phoneDisk(directory: string): PhoneDisk {
  return {
    databaseBytes: directoryBytes(join(directory, 'databases')),
    photoBytes: directoryBytes(join(directory, PHOTO_DIRECTORY)),
    totalBytes: directoryBytes(directory),
  };
}

/** Size of each top-level entry of `dir` (e.g. the server's store, secrets, TLS, photo spool) and the total. */
export function directoryBreakdown(dir: string): { readonly totalBytes: number; readonly parts: Readonly<Record<string, number>> } {
  const parts: Record<string, number> = {};
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // no directory: nothing stored
  }
  for (const name of names) {
    const full = join(dir, name);
    const st = lstatSync(full);
    parts[name] = st.isDirectory() ? directoryBytes(full) : st.isFile() ? st.size : 0;
  }
  return { totalBytes: Object.values(parts).reduce((a, b) => a + b, 0), parts };
}
