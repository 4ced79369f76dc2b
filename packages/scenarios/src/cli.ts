// `npm run scenarios -- --seed S --steps N [--seeds S1,S2,…] [--servers 3] [--phones 3] [--users 5] [--keep]`:
// runs seeded simulations (issue 6 §3) on real server processes and SDK phones, prints every step
// and a report per seed, and exits 1 when an invariant broke (with the command and test case that
// reproduce it).
import { parseArgs } from 'node:util';
import { teardownAll } from './scenario.js';
import { formatReport } from './simulation/report.js';
import { DEFAULT_TOPOLOGY, simulate } from './simulation/simulate.js';

const USAGE = 'usage: npm run scenarios -- --seed <integer> --steps <integer> [--seeds 1,2,3] [--servers 3] [--phones 3] [--users 5] [--keep] [--quiet]';

const HELP = `${USAGE}

Seeded simulations on real server processes and SDK phones (docs/scenarios.md). The same seed,
steps and sizes replay the same actions; a broken invariant prints the command and the tap test
case that reproduce it, and the exit status is 1.

  --seed S        the seed (default: a random one, printed in the header)
  --seeds S1,S2   several seeds, one run each (instead of --seed)
  --steps N       random steps before the quiescence checks (default 40)
  --servers N     servers, 1-9 (default ${DEFAULT_TOPOLOGY.servers})
  --phones N      phones, 2-9 (default ${DEFAULT_TOPOLOGY.phones})
  --users N       users, 1-50 (default ${DEFAULT_TOPOLOGY.users})
  --keep          keep the run's directory (servers' data, phones' databases) to inspect it
  --quiet         print only each seed's report, not every step

Exit status: 0 all seeds passed, 1 an invariant broke, 2 bad options, 130/143 stopped by
Ctrl-C/SIGTERM (servers and phones stopped, the directory removed unless --keep).
`;

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
  let parsed;
  try {
    parsed = parseArgs({
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
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const seeds =
    values.seeds !== undefined
      ? values.seeds.split(',').map((s) => integer('seeds', s.trim(), undefined, 0, 2 ** 31 - 1))
      : [integer('seed', values.seed, Math.floor(Math.random() * 1_000_000), 0, 2 ** 31 - 1)];
  const steps = integer('steps', values.steps, 40, 1, 100_000);
  // All options are checked before anything starts (a bad size used to fail after the first header).
  const servers = integer('servers', values.servers, DEFAULT_TOPOLOGY.servers, 1, 9);
  const phones = integer('phones', values.phones, DEFAULT_TOPOLOGY.phones, 2, 9);
  const users = integer('users', values.users, DEFAULT_TOPOLOGY.users, 1, 50);
  let failed = 0;
  for (const seed of seeds) {
    process.stdout.write(`— seed ${seed}, ${steps} steps —\n`);
    const report = await simulate({
      seed,
      steps,
      servers,
      phones,
      users,
      keep: values.keep,
      ...(values.quiet ? {} : { onLine: (l: string) => void process.stdout.write(`  ${l}\n`) }),
    });
    process.stdout.write(`${formatReport(report, steps)}\n`);
    if (report.violations.length > 0) failed += 1;
  }
  if (seeds.length > 1) process.stdout.write(`${seeds.length - failed} of ${seeds.length} seeds passed\n`);
  return failed > 0 ? 1 : 0;
}

// Ctrl-C reaches the servers too (one process group); SIGTERM from a CI cancel or `kill` reaches
// only this process. Either way the run's servers, stores and phones are stopped and its directory
// removed before exiting (multi-server audit #5), within 30 s at most.
let stopping = false;
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping the run's servers and phones…\n`);
    setTimeout(() => process.exit(code), 30_000).unref();
    void teardownAll().finally(() => process.exit(code));
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);
