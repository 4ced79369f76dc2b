import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ratiosSvg } from './chart.js';
import type { BenchRow } from './row.js';

/**
 * The workspace root: the nearest folder above this module holding `pnpm-workspace.yaml`.
 * Found from the module, not the working directory, because each package's `bench` script runs
 * in its own folder and turbo does not pass environment variables it does not know.
 */
export function workspaceRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/** `<root>/bench-results` (git-ignored). */
export function resultsDir(): string {
  return join(workspaceRoot(), 'bench-results');
}

/** Where every package's bench appends its rows during one `npm run bench`. */
export function rowsFile(): string {
  return join(resultsDir(), 'rows.jsonl');
}

/** Starts a run: forgets the rows of the previous one. */
export function resetRows(): void {
  rmSync(rowsFile(), { force: true });
}

/** Adds rows to the current run (one JSON object per line, so packages only ever append). */
export function appendRows(rows: readonly BenchRow[]): void {
  mkdirSync(resultsDir(), { recursive: true });
  appendFileSync(rowsFile(), rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}

/** The rows appended since the last reset, in order. */
export function readRows(): BenchRow[] {
  if (!existsSync(rowsFile())) return [];
  return readFileSync(rowsFile(), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as BenchRow);
}

/** One run's results as written to JSON, for comparing runs. */
export interface BenchReport {
  readonly finishedAt: string;
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly memoryMiB: number;
    readonly node: string;
    readonly platform: string;
    readonly arch: string;
  };
  readonly rows: readonly BenchRow[];
}

export function buildReport(rows: readonly BenchRow[], finishedAt = new Date()): BenchReport {
  const cores = cpus();
  return {
    finishedAt: finishedAt.toISOString(),
    machine: {
      cpus: cores.length,
      cpuModel: cores[0]?.model ?? 'unknown',
      memoryMiB: Math.round(totalmem() / 2 ** 20),
      node: process.version,
      platform: platform(),
      arch: arch(),
    },
    rows,
  };
}

/**
 * Writes `latest.json` and a copy named after the run's end time; returns both paths.
 */
export function writeReport(report: BenchReport): { latest: string; archived: string; chart: string } {
  mkdirSync(resultsDir(), { recursive: true });
  const text = `${JSON.stringify(report, null, 2)}\n`;
  const latest = join(resultsDir(), 'latest.json');
  const archived = join(resultsDir(), `run-${report.finishedAt.replace(/[:.]/g, '-')}.json`);
  const chart = join(resultsDir(), 'ratios.svg');
  writeFileSync(latest, text);
  writeFileSync(archived, text);
  writeFileSync(chart, ratiosSvg(report.rows, `fieldvault bench ${report.finishedAt}: ours ÷ baseline (log scale; tick = goal)`));
  return { latest, archived, chart };
}
