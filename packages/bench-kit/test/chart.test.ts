// The ratio chart: one bar per row on a log scale, coloured by whether the goal is met, text escaped.
import t from 'tap';
import { benchRow, ratiosSvg } from '../src/index.js';

const rows = [
  benchRow({ workload: 'push <10k> & "quoted"', ours: 500, oursUnit: 'rec/s', baseline: 1000, baselineUnit: 'rec/s', goal: { op: '>=', ratio: 1 } }),
  benchRow({ workload: 'migration', ours: 1.2, oursUnit: 's', baseline: 1, baselineUnit: 's', goal: { op: '<=', ratio: 1.3 } }),
  benchRow({ workload: 'no baseline', ours: 1, oursUnit: 's', baseline: 0, baselineUnit: 's', goal: { op: '<=', ratio: 2 } }),
];

t.test('one labelled bar per row with a ratio, green when met and red when missed, a goal tick each', async (t) => {
  const svg = ratiosSvg(rows);
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.equal((svg.match(/<rect x=/g) ?? []).length, 2, 'a bar for each finite ratio');
  t.match(svg, /fill="#c62828"><title>push &lt;10k&gt; &amp; &quot;quoted&quot;: 0\.5× \(goal ≥ 1×, missed\)/, 'the missed one is red, and text is escaped');
  t.match(svg, /fill="#2e7d32"><title>migration: 1\.2× \(goal ≤ 1\.3×, met\)/, 'the met one is green');
  t.match(svg, /no ratio/, 'a row without a ratio says so');
  t.equal((svg.match(/stroke-width="2"/g) ?? []).length, 2, 'a goal tick on each bar');
  t.notMatch(svg, /<script|href=/, 'no script, no external reference');
});

t.test('the scale is logarithmic and centred on 1×: 0.5× and 2× are equally far from it', async (t) => {
  const svg = ratiosSvg([
    benchRow({ workload: 'half', ours: 1, oursUnit: 's', baseline: 2, baselineUnit: 's', goal: { op: '<=', ratio: 1 } }),
    benchRow({ workload: 'double', ours: 2, oursUnit: 's', baseline: 1, baselineUnit: 's', goal: { op: '<=', ratio: 1 } }),
  ]);
  const widths = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
  t.equal(widths.length, 2);
  t.equal(widths[0], widths[1]);
});

t.test('an informational row (goal ≥ 0×) gets a bar and no goal tick, and the scale stays finite', async (t) => {
  // The photo rows: 0.016× of a file copy, no goal. log₂(0) once made the tick loop endless.
  const svg = ratiosSvg([
    benchRow({ workload: 'photo upload', ours: 16.5, oursUnit: 'MB/s', baseline: 1032, baselineUnit: 'MB/s', goal: { op: '>=', ratio: 0 } }),
    benchRow({ workload: 'push', ours: 2000, oursUnit: 'rec/s', baseline: 2500, baselineUnit: 'rec/s', goal: { op: '>=', ratio: 1 } }),
  ]);
  t.equal((svg.match(/<rect x=/g) ?? []).length, 2, 'a bar for each row');
  t.equal((svg.match(/stroke-width="2"/g) ?? []).length, 1, 'a goal tick only where there is a goal');
  t.notMatch(svg, /NaN|Infinity/, 'every coordinate is a number');
  t.ok((svg.match(/<line /g) ?? []).length < 40, 'a handful of scale lines');
});
