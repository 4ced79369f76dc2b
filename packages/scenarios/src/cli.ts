// `npm run scenarios -- --seed S --steps N [--seeds S1,S2,…] [--servers 3] [--phones 3] [--users 5] [--keep]`:
// runs seeded simulations (issue 6 §3) on real server processes and SDK phones, prints every step
// and a report per seed, and exits 1 when an invariant broke (with the command and test case that
// reproduce it).
import { parseArgs } from 'node:util';
import { formatReport } from './simulation/report.js';
import { simulate } from './simulation/simulate.js';

const USAGE = 'usage: npm run scenarios -- --seed <integer> --steps <integer> [--seeds 1,2,3] [--servers 3] [--phones 3] [--users 5] [--keep] [--quiet]';

function integer(name: string, value: string | undefined, fallback: number | undefined, min: number, max: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required\n${USAGE}`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}…${max}, got "${value}"\n${USAGE}`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      steps: { type: 'string' },
      servers: { type: 'string' },
      phones: { type: 'string' },
      users: { type: 'string' },
      keep: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const seeds =
    values.seeds !== undefined
      ? values.seeds.split(',').map((s) => integer('seeds', s.trim(), undefined, 0, 2 ** 31 - 1))
      : [integer('seed', values.seed, Math.floor(Math.random() * 1_000_000), 0, 2 ** 31 - 1)];
  const steps = integer('steps', values.steps, 40, 1, 100_000);
  let failed = 0;
  for (const seed of seeds) {
    process.stdout.write(`— seed ${seed}, ${steps} steps —\n`);
    const report = await simulate({
      seed,
      steps,
      servers: integer('servers', values.servers, 3, 1, 9),
      phones: integer('phones', values.phones, 3, 2, 9),
      users: integer('users', values.users, 5, 1, 50),
      keep: values.keep,
      ...(values.quiet ? {} : { onLine: (l: string) => void process.stdout.write(`  ${l}\n`) }),
    });
    process.stdout.write(`${formatReport(report, steps)}\n`);
    if (report.violations.length > 0) failed += 1;
  }
  if (seeds.length > 1) process.stdout.write(`${seeds.length - failed} of ${seeds.length} seeds passed\n`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
