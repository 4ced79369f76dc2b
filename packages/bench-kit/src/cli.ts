#!/usr/bin/env node
// `node packages/bench-kit/dist/cli.js reset | report`. `npm run bench` calls `reset` before the
// packages' bench scripts and `report` after them: the packages append rows, this prints the one
// combined table and writes the JSON.
import { relative } from 'node:path';
import { buildReport, readRows, resetRows, workspaceRoot, writeReport } from './results.js';
import { formatTable } from './table.js';

const command = process.argv[2];
if (command === 'reset') {
  resetRows();
} else if (command === 'report') {
  const rows = readRows();
  if (rows.length === 0) {
    process.stderr.write('no benchmark rows were recorded (did a package bench fail before writing its rows?)\n');
    process.exit(1);
  }
  const report = buildReport(rows);
  const { latest, archived, chart } = writeReport(report);
  const m = report.machine;
  process.stdout.write(`\nfieldvault bench — ${m.cpus} × ${m.cpuModel}, ${m.memoryMiB} MiB, Node ${m.node}\n\n`);
  process.stdout.write(`${formatTable(rows)}\n\n`);
  process.stdout.write(`results: ${relative(workspaceRoot(), latest)} (and ${relative(workspaceRoot(), archived)}), chart: ${relative(workspaceRoot(), chart)}\n`);
  // A missed goal is a finding to explain (issue 8), not a failed command: the table says MISSED.
} else {
  process.stderr.write('usage: node packages/bench-kit/dist/cli.js reset | report\n');
  process.exit(2);
}
