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
