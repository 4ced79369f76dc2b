import { formatGoal, formatNumber, type BenchRow } from './row.js';

const HEADER = ['workload', 'ours', 'baseline', 'ratio', 'goal', 'status'] as const;

function cells(row: BenchRow): string[] {
  return [
    row.workload,
    `${formatNumber(row.ours)} ${row.oursUnit}`,
    `${formatNumber(row.baseline)} ${row.baselineUnit}`,
    `${formatNumber(row.ratio)}×`,
    formatGoal(row.goal),
    row.met ? 'met' : 'MISSED',
  ];
}

/**
 * The bench table as Markdown (so it can be pasted into docs/performance.md as is), columns
 * padded to line up in a terminal, followed by the rows' notes.
 */
export function formatTable(rows: readonly BenchRow[]): string {
  const body = rows.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const out = [line(HEADER), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)];
  const notes = rows.filter((r) => r.note !== undefined).map((r) => `- ${r.workload}: ${r.note}`);
  if (notes.length > 0) out.push('', ...notes);
  return out.join('\n');
}
