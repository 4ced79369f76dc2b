// The scenarios CLI as a process (multi-server audit #5, #6, #11): a run stopped by SIGTERM leaves
// no server, store or phone process and no directory; a failure's replay names every size that
// differs from the defaults; bad options stop before anything starts.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { formatReport, reproduceCommand, type SimulationReport } from '../src/index.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** Pids of processes whose command line or environment mentions `marker` (the run's directory). */
function processesMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const text = `${readFileSync(`/proc/${entry}/cmdline`, 'latin1')}\n${readFileSync(`/proc/${entry}/environ`, 'latin1')}`;
      if (text.includes(marker)) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

t.test('SIGTERM in the middle of a run stops its servers, stores and phones and removes its directory', async (t) => {
  const tmp = t.testdir();
  const child = spawn(process.execPath, [cli, '--seed', '3', '--steps', '500', '--servers', '2', '--phones', '2', '--users', '2'], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Servers and phones are up once the second step has been reported.
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (/#2 /.test(out)) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
    void exited.then(() => {
      clearInterval(timer);
      reject(new Error(`the run ended before its second step: ${out}`));
    });
  });
  const runDir = readdirSync(tmp).find((d) => d.startsWith('fieldvault-sim-3-'));
  t.ok(runDir, 'the run has its directory under TMPDIR');
  t.ok(processesMentioning(tmp).length >= 4, 'its servers and stores run');

  child.kill('SIGTERM');
  t.equal(await exited, 143, out);
  t.match(out, 'SIGTERM: stopping the run');
  // A store child exits a moment after its server: wait for them (bounded; no timing asserted).
  let left = processesMentioning(tmp);
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    left = processesMentioning(tmp);
  }
  for (const pid of left) process.kill(pid, 'SIGKILL'); // never leave them to the next test
  t.same(left, [], 'no process of the run is left');
  t.same(readdirSync(tmp).filter((d) => d.startsWith('fieldvault-sim-')), [], 'the run directory is removed');
});

t.test('a failure replays with the sizes of its run', async (t) => {
  const report: SimulationReport = {
    seed: 42,
    steps: [],
    invariantsChecked: 3,
    violations: [{ invariant: 'same-records', detail: 'phone-1 and server-1 differ' }],
    failedAt: 2,
    records: 1,
    ms: 1000,
    serverLogs: {},
    topology: { servers: 2, phones: 3, users: 7 },
  };
  t.equal(reproduceCommand(report, 2), 'npm run scenarios -- --seed 42 --steps 2 --servers 2 --users 7');
  const text = formatReport(report, 10);
  t.match(text, 'reproduce: npm run scenarios -- --seed 42 --steps 2 --servers 2 --users 7');
  t.match(text, 'await simulate({ seed: 42, steps: 2, servers: 2, users: 7 })');
  t.equal(reproduceCommand({ ...report, topology: { servers: 3, phones: 3, users: 5 } }, 9), 'npm run scenarios -- --seed 42 --steps 9');
});

t.test('bad options stop before anything starts, with the usage', async (t) => {
  for (const args of [['--bogus'], ['--seed', '1', '--steps', '2', '--phones', '0']]) {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    t.equal(code, 2, args.join(' '));
    t.match(out, 'usage: npm run scenarios');
    t.notMatch(out, /— seed/, 'no run was started');
  }
});
