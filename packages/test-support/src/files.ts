// File listings and content snapshots of a device or home directory: tests prove "nothing
// changed" (every byte identical) or "nothing is left" (after a wipe) with these.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Every file under `dir`, relative, sorted; `[]` when `dir` does not exist. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(relative(dir, full));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

export interface SnapshotOptions {
  /** Relative paths left out (e.g. a lock file that holds a process id). */
  readonly ignore?: readonly string[];
}

/** Path → SHA-256 of every file under `dir`, to prove nothing changed. */
export function snapshot(dir: string, options: SnapshotOptions = {}): Record<string, string> {
  const ignore = new Set(options.ignore ?? []);
  const out: Record<string, string> = {};
  for (const f of filesUnder(dir)) {
    if (ignore.has(f)) continue;
    out[f] = createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
  }
  return out;
}

/** Every file under `dir` whose bytes contain `text` (a plaintext canary must be in none). */
export function filesContaining(dir: string, text: string): string[] {
  const needle = Buffer.from(text);
  return filesUnder(dir).filter((f) => readFileSync(join(dir, f)).includes(needle));
}
