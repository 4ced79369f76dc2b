import { formatGoal, formatNumber, type BenchRow } from './row.js';

/** Escapes text for SVG element content and attribute values. */
function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A horizontal bar chart of the ratios (ours ÷ baseline), one bar per row, on a log₂ scale so that
 * 0.25× and 4× are as far from 1× on either side; the goal of each row is a tick on its bar, a met
 * goal is drawn green and a missed one red. Plain SVG 1.1 with no script or external reference, so
 * it can be opened anywhere (and committed next to the JSON).
 */
export function ratiosSvg(rows: readonly BenchRow[], title = 'fieldvault bench: ours ÷ baseline'): string {
  const labelWidth = 470;
  const plotWidth = 420;
  const rowHeight = 22;
  const top = 44;
  const bottom = 30;
  const positive = (v: number): boolean => Number.isFinite(v) && v > 0;
  const finite = rows.filter((r) => positive(r.ratio));
  // A row without a real goal (informational, `≥ 0×`) has no tick: log₂(0) is -∞, and a scale
  // reaching it would never end.
  const logs = finite.flatMap((r) => [Math.log2(r.ratio), ...(positive(r.goal.ratio) ? [Math.log2(r.goal.ratio)] : [])]);
  const lo = Math.floor(Math.min(-1, ...logs));
  const hi = Math.ceil(Math.max(1, ...logs));
  const x = (ratio: number): number => labelWidth + ((Math.log2(ratio) - lo) / (hi - lo)) * plotWidth;
  const height = top + rows.length * rowHeight + bottom;
  const width = labelWidth + plotWidth + 90;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let e = lo; e <= hi; e++) {
    const gx = x(2 ** e);
    parts.push(`<line x1="${gx.toFixed(1)}" y1="${top - 6}" x2="${gx.toFixed(1)}" y2="${height - bottom + 4}" stroke="${e === 0 ? '#333333' : '#dddddd'}"/>`);
    parts.push(`<text x="${gx.toFixed(1)}" y="${height - 10}" text-anchor="middle" fill="#555555">${esc(formatNumber(2 ** e))}×</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowHeight;
    const label = r.workload.length > 70 ? `${r.workload.slice(0, 69)}…` : r.workload;
    parts.push(`<text x="10" y="${y + 15}">${esc(label)}</text>`);
    if (!Number.isFinite(r.ratio) || r.ratio <= 0) {
      parts.push(`<text x="${labelWidth}" y="${y + 15}" fill="#999999">no ratio</text>`);
      return;
    }
    const x0 = x(1);
    const x1 = x(r.ratio);
    const colour = r.met ? '#2e7d32' : '#c62828';
    parts.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 4}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${rowHeight - 8}" fill="${colour}"><title>${esc(`${r.workload}: ${formatNumber(r.ratio)}× (goal ${formatGoal(r.goal)}, ${r.met ? 'met' : 'missed'})`)}</title></rect>`);
    if (positive(r.goal.ratio)) {
      const gx = x(r.goal.ratio);
      parts.push(`<line x1="${gx.toFixed(1)}" y1="${y + 1}" x2="${gx.toFixed(1)}" y2="${y + rowHeight - 1}" stroke="#000000" stroke-width="2"/>`);
    }
    parts.push(`<text x="${labelWidth + plotWidth + 8}" y="${y + 15}" fill="${colour}">${esc(`${formatNumber(r.ratio)}× ${r.met ? '✓' : '✗'}`)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
