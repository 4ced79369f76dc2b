import { describe } from './model.js';
import type { SimulationReport } from './simulate.js';

/** The command that replays a run (the same seed and number of steps give the same actions). */
export function reproduceCommand(report: Pick<SimulationReport, 'seed' | 'steps'>, steps: number): string {
  return `npm run scenarios -- --seed ${report.seed} --steps ${steps}`;
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
  lines.push(`    const report = await simulate({ seed: ${report.seed}, steps: ${steps} });`);
  lines.push(`    t.same(report.violations, [], formatReport(report, ${steps}));`);
  lines.push('  });');
  return lines.join('\n');
}
