// Login storm (issue 3 "Performance", issue 8 item 1): logins/s under many concurrent logins vs
// the Argon2id hash rate the cores allow, and the p99 of a cheap authenticated request during the
// storm vs idle. Real embedded store, real server over HTTPS on 127.0.0.1, real signed logins.
//
//   node dist-bench/login-storm.js [--clients 16] [--rounds 3] [--seconds 6] [--probe-rate 50]
//
// Each round runs four phases, one after the other (every other round in reverse order): the probe
// alone (idle p99), raw argon2.verify in the server process (baseline), the storm alone (logins/s)
// and the storm with the probe inside it (storm p99). Results pool over the rounds.
//
// Appends its rows to bench-results/rows.jsonl (see @fieldvault/bench-kit) and prints them.
// Everything stays on 127.0.0.1, every loop is bounded in time and count, and the store, the
// server process and the temporary data directory are removed at the end, also on failure.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generate } from 'selfsigned';
import { Agent } from 'undici';
import {
  appendRows,
  benchRow,
  CpuMeter,
  formatNumber,
  formatTable,
  percentile,
  runClosedLoop,
  runOpenLoop,
  summarize,
  throughputPerSecond,
  type BenchRow,
  type LoopResult,
} from '@fieldvault/bench-kit';
import { startEmbeddedCouch, type EmbeddedCouch } from '@fieldvault/couch-embedded';
import { BenchApi, newDevice, newPassword, type BenchUser } from './api.js';
import type { FromServer, ToServer } from './server-process.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '6' },
    'probe-rate': { type: 'string', default: '50' },
  },
});
const CLIENTS = Number(args.clients);
const ROUNDS = Number(args.rounds);
/** Length of one baseline and one storm phase. */
const PHASE_MS = Number(args.seconds) * 1000;
const PROBE_INTERVAL_MS = 1000 / Number(args['probe-rate']);
/** The probe runs inside the storm, after it has ramped up and before it drains. */
const PROBE_MARGIN_MS = 1000;
/** Idle and storm probes get the same number of samples. */
const PROBE_MS = PHASE_MS - 2 * PROBE_MARGIN_MS;
/** The whole bench is bounded; past this it tears down and fails. */
const HARD_LIMIT_MS = 10 * 60_000;
for (const [name, v, max] of [['clients', CLIENTS, 256], ['rounds', ROUNDS, 20], ['seconds', PHASE_MS / 1000, 120], ['probe-rate', 1000 / PROBE_INTERVAL_MS, 1000]] as const) {
  if (!Number.isFinite(v) || v <= 0 || v > max || (name !== 'probe-rate' && !Number.isInteger(v)) || PROBE_MS <= 0) {
    throw new Error(`--${name} is out of range (clients 1..256, rounds 1..20, seconds 3..120, probe-rate 1..1000)`);
  }
}

/** The forked server process, spoken to one request at a time. */
class ServerProcess {
  private readonly inbox: FromServer[] = [];
  private waiter: (() => void) | undefined;
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: FromServer) => {
      this.inbox.push(m);
      this.waiter?.();
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => this.waiter?.());
  }

  async ask<T extends FromServer['type']>(msg: ToServer | undefined, reply: T, timeoutMs: number): Promise<Extract<FromServer, { type: T }>> {
    if (msg !== undefined) this.child.send(msg);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.inbox.shift();
      if (m?.type === 'failed') throw new Error(`server process: ${m.message}`);
      if (m?.type === reply) return m as Extract<FromServer, { type: T }>;
      if (m !== undefined) continue;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`server process exited (${this.child.exitCode ?? this.child.signalCode})`);
      if (Date.now() > deadline) throw new Error(`server process did not answer "${reply}" within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 1000).unref();
      });
    }
  }

  send(msg: ToServer): void {
    this.child.send(msg);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.send({ type: 'stop' } satisfies ToServer);
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(killer);
  }
}

function round(v: number, digits = 3): number {
  return Number(v.toFixed(digits));
}

function failIfErrors(what: string, r: { errors: number; completed: number; errorSamples?: readonly string[] }): void {
  if (r.errors > 0) throw new Error(`${what}: ${r.errors} of ${r.errors + r.completed} operations failed (${r.errorSamples?.join('; ') ?? ''})`);
}

function prefixed(prefix: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${prefix}${k[0]?.toUpperCase() ?? ''}${k.slice(1)}`, v]));
}

async function main(): Promise<void> {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'fieldvault-bench-'));
  let couch: EmbeddedCouch | undefined;
  let server: ServerProcess | undefined;
  let agent: Agent | undefined;
  const hardLimit = setTimeout(() => {
    process.stderr.write(`login storm bench: still running after ${HARD_LIMIT_MS / 60_000} min, giving up\n`);
    server?.child.kill('SIGKILL');
    void couch?.stop();
    process.exit(1);
  }, HARD_LIMIT_MS);
  hardLimit.unref();
  const say = (text: string): void => {
    process.stdout.write(`[login-storm ${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`);
  };
  const loadBefore = round(loadavg()[0] ?? 0, 2);
  if (loadBefore > 0.5) say(`note: load average ${loadBefore} before the bench — other work on this machine adds noise (ratios are measured in interleaved rounds to share it)`);

  try {
    couch = await startEmbeddedCouch({ dataDir: join(work, 'couch') });
    // The same kind of certificate `npm start` makes for itself (apps/server/src/tls.ts).
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notAfterDate: new Date(Date.now() + 86_400_000),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    server = new ServerProcess(fork(fileURLToPath(new URL('./server-process.js', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const setupToken = randomBytes(24).toString('base64url');
    const ready = await server.ask({ type: 'start', couchUrl: couch.url, setupToken, tls: { key: pems.private, cert: pems.cert } }, 'ready', 60_000);
    const params = ready.argon2;
    say(`server on https://127.0.0.1:${ready.port}, store at ${couch.origin}, Argon2id m=${params.memoryKiB} KiB t=${params.timeCost} p=${params.parallelism}, libuv threadpool ${ready.threadpool}, ${availableParallelism()} cores`);

    // Enough keep-alive connections that no client waits for a socket on our side.
    agent = new Agent({ connect: { ca: pems.cert }, connections: CLIENTS + 64, pipelining: 1 });
    const api = new BenchApi(`https://127.0.0.1:${ready.port}`, agent);

    // Users: the first admin (setup token), then one field worker per storm client and one for the
    // probe, each enrolling its own device with a first login (which issues its DB key).
    const adminPassword = newPassword();
    await api.setupAdmin(setupToken, 'admin', adminPassword);
    const adminToken = await api.login('admin', adminPassword, newDevice());
    const names = [...Array.from({ length: CLIENTS }, (_, i) => `storm${String(i).padStart(3, '0')}`), 'probe'];
    const users: BenchUser[] = [];
    const setup = await runClosedLoop({
      concurrency: 4,
      durationMs: 300_000,
      maxOperations: names.length,
      op: async () => {
        const name = names.shift();
        if (name === undefined) return;
        const password = await api.createUser(adminToken, name);
        const user: BenchUser = { username: name, password, device: newDevice() };
        await api.login(user.username, user.password, user.device);
        users.push(user);
      },
    });
    failIfErrors('creating users', setup);
    const probeUser = users.find((u) => u.username === 'probe');
    const stormUsers = users.filter((u) => u !== probeUser).sort((a, b) => a.username.localeCompare(b.username));
    if (probeUser === undefined || stormUsers.length !== CLIENTS) throw new Error('user setup incomplete');
    const probeToken = await api.login(probeUser.username, probeUser.password, probeUser.device);
    say(`${users.length} users created and their devices enrolled`);

    const pids = { server: server.child.pid ?? 0, store: couch.pid, loadgen: process.pid };
    const cpu = { idle: new CpuMeter(pids), baseline: new CpuMeter(pids), storm: new CpuMeter(pids), stormProbed: new CpuMeter(pids) };
    const probe = (): Promise<LoopResult> =>
      runOpenLoop({ intervalMs: PROBE_INTERVAL_MS, durationMs: PROBE_MS, maxInFlight: 200, op: () => api.session(probeToken) });
    const srv = server;
    const totals = { logins: 0, loginsProbed: 0, verifies: 0, ms: 0 };
    const idleLatencies: number[] = [];
    const busyLatencies: number[] = [];
    const loginLatencies: number[] = [];
    const verifyLatencies: number[] = [];
    const perRound: string[] = [];
    type Round = { idleP99?: number; verifies?: number; logins?: number; busyP99?: number };

    const idlePhase = async (r: Round): Promise<void> => {
      srv.send({ type: 'loop-delay-start', phase: 'idle' });
      cpu.idle.start();
      const idle = await probe();
      cpu.idle.stop();
      srv.send({ type: 'loop-delay-stop' });
      failIfErrors('idle probe', idle);
      idleLatencies.push(...idle.latenciesMs);
      r.idleP99 = percentile(idle.latenciesMs, 99);
    };
    // Raw argon2.verify, same parameters, same concurrency, in the server process.
    const baselinePhase = async (r: Round): Promise<void> => {
      cpu.baseline.start();
      const base = await srv.ask({ type: 'baseline', concurrency: CLIENTS, durationMs: PHASE_MS, maxOperations: 100_000 }, 'baseline-done', PHASE_MS + 120_000);
      cpu.baseline.stop();
      failIfErrors('baseline', base);
      totals.verifies += base.completedInTime;
      verifyLatencies.push(...base.latenciesMs);
      r.verifies = throughputPerSecond(base);
    };
    // Every client logs in again and again: challenge + signed login, offering the key its device
    // holds (what the SDK does on a phone that has logged in before).
    const storm = (): Promise<LoopResult> =>
      runClosedLoop({
        concurrency: CLIENTS,
        durationMs: PHASE_MS,
        maxOperations: CLIENTS * 1000,
        op: async (w) => {
          const u = stormUsers[w] as BenchUser;
          await api.login(u.username, u.password, u.device);
        },
      });
    // Throughput: the storm alone, as the baseline runs alone.
    const stormPhase = async (r: Round): Promise<void> => {
      cpu.storm.start();
      const run = await storm();
      cpu.storm.stop();
      failIfErrors('storm', run);
      totals.logins += run.completedInTime;
      totals.ms += run.durationMs;
      loginLatencies.push(...run.latenciesMs);
      r.logins = throughputPerSecond(run);
    };
    // Latency: the probe inside another storm, after its ramp-up and before its drain.
    const stormProbedPhase = async (r: Round): Promise<void> => {
      srv.send({ type: 'loop-delay-start', phase: 'storm' });
      cpu.stormProbed.start();
      const running = storm();
      await sleep(PROBE_MARGIN_MS);
      const busy = await probe();
      const run = await running;
      cpu.stormProbed.stop();
      srv.send({ type: 'loop-delay-stop' });
      failIfErrors('storm', run);
      failIfErrors('probe during storm', busy);
      totals.loginsProbed += run.completedInTime;
      busyLatencies.push(...busy.latenciesMs);
      r.busyP99 = percentile(busy.latenciesMs, 99);
    };

    // Interleaved rounds, every other one in reverse order, so that whatever else runs on the
    // machine (and any drift) weighs on both sides of each ratio alike.
    for (let i = 1; i <= ROUNDS; i += 1) {
      const r: Round = {};
      const phases = [idlePhase, baselinePhase, stormPhase, stormProbedPhase];
      for (const phase of i % 2 === 1 ? phases : phases.reverse()) await phase(r);
      const line = `${formatNumber(r.logins ?? Number.NaN)} logins/s vs ${formatNumber(r.verifies ?? Number.NaN)} verifies/s; session p99 ${formatNumber(r.busyP99 ?? Number.NaN)} ms storm vs ${formatNumber(r.idleP99 ?? Number.NaN)} ms idle`;
      perRound.push(line);
      say(`round ${i}/${ROUNDS}: ${line}`);
    }

    const loopDelay = (await srv.ask({ type: 'loop-delay-report' }, 'loop-delay', 10_000)).phases;
    const idleLat = summarize(idleLatencies);
    const busyLat = summarize(busyLatencies);
    const loginLat = summarize(loginLatencies);
    const verifyLat = summarize(verifyLatencies);
    const loginsPerSecond = totals.logins / (totals.ms / 1000);
    const verifiesPerSecond = totals.verifies / (totals.ms / 1000);
    const cores = { idle: cpu.idle.cores(), baseline: cpu.baseline.cores(), storm: cpu.storm.cores(), stormProbed: cpu.stormProbed.cores() };
    const idleDelay = loopDelay.idle?.p99Ms ?? Number.NaN;
    const stormDelay = loopDelay.storm?.p99Ms ?? Number.NaN;
    say(`login latency p50 ${formatNumber(loginLat.p50)} ms, p99 ${formatNumber(loginLat.p99)} ms; verify latency (queued) p50 ${formatNumber(verifyLat.p50)} ms`);
    say(`cores busy: idle ${JSON.stringify(cores.idle)}, baseline ${JSON.stringify(cores.baseline)}, storm ${JSON.stringify(cores.storm)}, storm + probe ${JSON.stringify(cores.stormProbed)}`);
    say(`server event-loop delay p99: idle ${formatNumber(idleDelay)} ms, storm ${formatNumber(stormDelay)} ms`);

    const setting = {
      clients: CLIENTS,
      rounds: ROUNDS,
      phaseSeconds: PHASE_MS / 1000,
      transport: 'https (self-signed, keep-alive)',
      argon2: `m=${params.memoryKiB}KiB t=${params.timeCost} p=${params.parallelism}`,
      threadpool: ready.threadpool,
      cores: availableParallelism(),
      loadAverageBefore: loadBefore,
    };
    const c = (phase: keyof typeof cores, who: string): string => formatNumber(cores[phase][who] ?? Number.NaN);
    const loginRow = benchRow({
      workload: `login storm (${CLIENTS} clients)`,
      ours: loginsPerSecond,
      oursUnit: 'logins/s',
      baseline: verifiesPerSecond,
      baselineUnit: 'verifies/s',
      // A login is one Argon2id verify (150-190 ms of a core here) plus what no hash rate counts:
      // two HTTPS requests, Ed25519, ~10 store round trips and audit writes, in our process and the
      // store's (~30 ms of CPU measured). 0.8 allows that ~15 % and run-to-run noise; below it the
      // login path, not the hash, is what limits logins.
      goal: { op: '>=', ratio: 0.8 },
      source: '@fieldvault/server',
      details: {
        ...setting,
        logins: totals.logins,
        verifies: totals.verifies,
        loginsPerSecondWithProbe: round(totals.loginsProbed / (totals.ms / 1000)),
        loginP50Ms: round(loginLat.p50),
        loginP95Ms: round(loginLat.p95),
        loginP99Ms: round(loginLat.p99),
        verifyP50Ms: round(verifyLat.p50),
        verifyP99Ms: round(verifyLat.p99),
        ...prefixed('stormCores', cores.storm),
        ...prefixed('baselineCores', cores.baseline),
        perRound: perRound.join(' | '),
      },
    });
    const p99Row = benchRow({
      workload: 'p99 GET /v1/auth/session, storm vs idle',
      ours: busyLat.p99,
      oursUnit: 'ms',
      baseline: idleLat.p99,
      baselineUnit: 'ms',
      goal: { op: '<=', ratio: 2 },
      source: '@fieldvault/server',
      details: {
        ...setting,
        probeRatePerSecond: 1000 / PROBE_INTERVAL_MS,
        idleRequests: idleLat.count,
        idleP50Ms: round(idleLat.p50),
        idleP95Ms: round(idleLat.p95),
        idleP99Ms: round(idleLat.p99),
        stormRequests: busyLat.count,
        stormP50Ms: round(busyLat.p50),
        stormP95Ms: round(busyLat.p95),
        stormP99Ms: round(busyLat.p99),
        serverLoopDelayP99IdleMs: round(idleDelay),
        serverLoopDelayP99StormMs: round(stormDelay),
        ...prefixed('idleCores', cores.idle),
        ...prefixed('stormCores', cores.stormProbed),
        perRound: perRound.join(' | '),
      },
    });
    // A missed goal says what was measured, so the table itself points at the bottleneck.
    const loginNote =
      `cores busy — storm: server ${c('storm', 'server')}, store ${c('storm', 'store')}; baseline: server ${c('baseline', 'server')}; ` +
      `other programs ${c('storm', 'others')} (storm) / ${c('baseline', 'others')} (baseline)`;
    const p99Note =
      `server event-loop delay p99 ${formatNumber(idleDelay)} ms idle → ${formatNumber(stormDelay)} ms in the storm on ${availableParallelism()} cores; ` +
      `logins hash in the server's niced hashing child process (argon2.isolation 'process'), which the CPU meter counts under ` +
      `"other programs" (${c('stormProbed', 'others')} cores), so each hop of a request may still wait for a core`;
    // On a shared machine other programs take cores in some phases and not others: say so.
    const others = Math.max(...Object.values(cores).map((phase) => phase.others ?? 0));
    const noisy = others > 0.25 ? `other programs took up to ${formatNumber(others)} cores during some phases, so this run is noisy` : undefined;
    const noted = (row: BenchRow, missNote: string): BenchRow => {
      const note = [row.met ? undefined : missNote, noisy].filter((n) => n !== undefined).join('; ');
      return note === '' ? row : { ...row, note };
    };
    const rows = [noted(loginRow, loginNote), noted(p99Row, p99Note)];
    appendRows(rows);
    process.stdout.write(`\n${formatTable(rows)}\n\n`);
  } finally {
    await agent?.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await couch?.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
    clearTimeout(hardLimit);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`login storm bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
