import t from 'tap';
import { benchRow, formatNumber, formatTable } from '../src/index.js';

const storm = benchRow({
  workload: 'login storm (16 clients)',
  ours: 11.8,
  oursUnit: 'logins/s',
  baseline: 12.4,
  baselineUnit: 'verifies/s',
  goal: { op: '>=', ratio: 0.8 },
});

t.test('a row\'s ratio is ours / baseline and a ≥ goal is met at or above it', async (t) => {
  t.equal(storm.ratio.toFixed(4), (11.8 / 12.4).toFixed(4));
  t.equal(storm.met, true);
  t.equal(benchRow({ ...storm, ours: 9.9 }).met, false);
});

t.test('a ≤ goal is met at or below it', async (t) => {
  const base = { workload: 'p99', oursUnit: 'ms', baselineUnit: 'ms', goal: { op: '<=', ratio: 2 } } as const;
  t.equal(benchRow({ ...base, ours: 20, baseline: 10 }).met, true);
  t.equal(benchRow({ ...base, ours: 21, baseline: 10 }).met, false);
});

t.test('a zero baseline gives no ratio and never meets a goal', async (t) => {
  const row = benchRow({ ...storm, baseline: 0 });
  t.ok(Number.isNaN(row.ratio));
  t.equal(row.met, false);
});

t.test('numbers are shown with three significant digits', async (t) => {
  t.equal(formatNumber(0.95161), '0.952');
  t.equal(formatNumber(11.84), '11.8');
  t.equal(formatNumber(2), '2');
  t.equal(formatNumber(1234.5), '1235');
});

t.test('the table has the columns workload, ours, baseline, ratio, goal, status and lists notes', async (t) => {
  const missed = benchRow({ workload: 'p99 x', ours: 30, oursUnit: 'ms', baseline: 10, baselineUnit: 'ms', goal: { op: '<=', ratio: 2 }, note: 'queued behind Argon2' });
  const lines = formatTable([storm, missed]).split('\n');
  t.match(lines[0], /^\| workload +\| ours +\| baseline +\| ratio +\| goal +\| status +\|$/);
  t.match(lines[2], /^\| login storm \(16 clients\) \| 11\.8 logins\/s \| 12\.4 verifies\/s \| 0\.952× \| ≥ 0\.8× \| met +\|$/);
  t.match(lines[3], /\| 3× +\| ≤ 2× +\| MISSED \|$/);
  t.equal(lines.at(-1), '- p99 x: queued behind Argon2');
  t.equal(new Set(lines.slice(0, 4).map((l) => l.length)).size, 1, 'columns line up');
});
