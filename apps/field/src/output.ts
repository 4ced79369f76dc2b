import { parseHlc } from '@fieldvault/protocol';

/*
 * What commands print: a human rendering on stdout by default, one JSON document on stdout with
 * --json. Prompts, progress bars and notes go to stderr so that stdout stays parseable.
 */

export interface Output {
  readonly json: boolean;
  /** The command's result: `human()` as text, or `data` as JSON. */
  result(data: unknown, human: () => string): void;
  /** A note for the person at the terminal (stderr; not shown with --json). */
  note(text: string): void;
}

export function createOutput(json: boolean, stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): Output {
  return {
    json,
    result(data, human) {
      const text = json ? JSON.stringify(data, null, 2) : human();
      if (text !== '') stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    note(text) {
      if (!json) stderr.write(`${text}\n`);
    },
  };
}

/** Characters a terminal shows as one column (enough for our tables; wide scripts may misalign). */
function width(s: string): number {
  return [...s].length;
}

function clip(s: string, max: number): string {
  const chars = [...s.replaceAll(/\s+/g, ' ')];
  return chars.length <= max ? chars.join('') : `${chars.slice(0, max - 1).join('')}…`;
}

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string;
  /** Longest cell before it is cut with "…"; default 40. */
  readonly max?: number;
}

/** A plain-text table: a header, a rule, one line per row, columns padded to fit. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => clip(c.value(r), c.max ?? 40)));
  const widths = columns.map((c, i) => Math.max(width(c.header), ...cells.map((row) => width(row[i] ?? ''))));
  const line = (values: readonly string[]): string =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v + ' '.repeat((widths[i] ?? 0) - width(v))))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** `key: value` lines with the keys aligned. */
export function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...pairs.map(([k]) => width(k)));
  return pairs.map(([k, v]) => `${k}${' '.repeat(w - width(k))}  ${v}`).join('\n');
}

/** The wall time of an HLC timestamp, ISO 8601 (for JSON). */
export function isoOf(hlc: string): string {
  try {
    return new Date(parseHlc(hlc).wall).toISOString();
  } catch {
    return hlc;
  }
}

/** An ISO time or HLC timestamp for people: UTC, to the second, `2026-05-01 09:30:12Z`. */
export function timeOf(time: string): string {
  const iso = /^\d{4}-\d{2}-\d{2}T/.test(time) ? time : isoOf(time);
  return iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** A field value for display: lists joined, null as "—". */
export function showValue(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.length === 0 ? '—' : v.join(', ');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
