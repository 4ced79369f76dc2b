import { describe } from './model.js';
import { DEFAULT_TOPOLOGY, type SimulationReport, type Topology } from './simulate.js';

/** The sizes that differ from the defaults, as `[name, value]` (a replay needs them; defaults stay implicit). */
function topologyChanges(topology: Topology): Array<[keyof Topology, number]> {
  return (Object.keys(DEFAULT_TOPOLOGY) as Array<keyof Topology>).filter((k) => topology[k] !== DEFAULT_TOPOLOGY[k]).map((k) => [k, topology[k]]);
}

/** The command that replays a run (the same seed, number of steps and sizes give the same actions). */
export function reproduceCommand(report: Pick<SimulationReport, 'seed' | 'topology'>, steps: number): string {
  const sizes = topologyChanges(report.topology).map(([k, v]) => ` --${k} ${v}`).join('');
  return `npm run scenarios -- --seed ${report.seed} --steps ${steps}${sizes}`;
}

/** A readable summary: counts, time, and on failure what broke, the steps that led there and a test case. */
export function formatReport(report: SimulationReport, requestedSteps: number): string {
  const lines: string[] = [];
  const ok = report.violations.length === 0;
  lines.push(
    `seed ${report.seed}: ${report.steps.length} steps, ${report.records} records, ${report.invariantsChecked} invariant checks, ${(report.ms / 1000).toFixed(1)} s — ${ok ? 'PASSED' : 'FAILED'}`,
  );
  if (ok) return lines.join('\n');
  const where = report.failedAt === -1 ? 'at quiescence' : `after step ${String(report.failedAt)}`;
  lines.push(`broken ${where}:`);
  for (const v of report.violations) lines.push(`  ${v.invariant}: ${v.detail}`);
  for (const [server, log] of Object.entries(report.serverLogs)) {
    lines.push(`${server} logged:`);
    for (const l of log) lines.push(`  ${l.length > 400 ? `${l.slice(0, 400)}…` : l}`);
  }
  lines.push('steps:');
  for (const s of report.steps) lines.push(`  #${s.index} ${describe(s.action)} — ${s.outcome}`);
  const steps = report.failedAt === null || report.failedAt === -1 ? requestedSteps : report.failedAt;
  lines.push(`reproduce: ${reproduceCommand(report, steps)}`);
  lines.push('as a regression test (packages/scenarios/test/simulation.test.ts):');
  lines.push(`  t.test('seed ${report.seed}, ${steps} steps: ${report.violations[0]?.invariant ?? ''} (regression)', async (t) => {`);
  const sizes = topologyChanges(report.topology).map(([k, v]) => `, ${k}: ${v}`).join('');
  lines.push(`    const report = await simulate({ seed: ${report.seed}, steps: ${steps}${sizes} });`);
  lines.push(`    t.same(report.violations, [], formatReport(report, ${steps}));`);
  lines.push('  });');
  return lines.join('\n');
}
