/**
 * @fieldvault/bench-kit: the shared frame of `npm run bench`. A package's bench measures its
 * workload and a baseline in the same run, turns them into {@link BenchRow}s with
 * {@link benchRow}, and {@link appendRows}; the root then prints one table
 * (`node packages/bench-kit/dist/cli.js report`).
 */
export { percentile, summarize } from './stats.js';
export type { Summary } from './stats.js';
export { runClosedLoop, runOpenLoop, throughputPerSecond } from './loops.js';
export { CpuMeter } from './cpu-meter.js';
export type { ClosedLoopOptions, LoopResult, OpenLoopOptions } from './loops.js';
export { benchRow, formatGoal, formatNumber } from './row.js';
export type { BenchRow, BenchRowInput, Goal } from './row.js';
export { formatTable } from './table.js';
export { ratiosSvg } from './chart.js';
export { appendRows, buildReport, readRows, resetRows, resultsDir, rowsFile, workspaceRoot, writeReport } from './results.js';
export type { BenchReport } from './results.js';
