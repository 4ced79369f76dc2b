// How close does our pull come to a raw `_changes` read of the same store, and does a server
// setting change that? (docs/performance.md, "Eleventh round".) Not part of `npm run bench`: it
// explains a goal, it sets none, and it is quicker than the sync bench for A/B runs of a server
// change (≈ 20 s a round). Run: `npm run pull-path` in this package, e.g.
//   node dist/pull-path.js --rounds 6 --variant off:FIELDVAULT_AUTH_CACHE_MS=0 --variant on:FIELDVAULT_AUTH_CACHE_MS=1000
// (a variant's environment goes to its server process only; the server refuses FIELDVAULT_ names
// it does not know, so a temporary switch in an experiment's build takes another prefix).
//
// N records built like the sync bench's (its recordFields through the protocol's createRecord)
// on one fresh embedded store: one real server process per variant (its own database prefix,
// holding the same N records, pushed through the protocol in setup), and a `bulk` database with
// the same records in the stored envelope. Each round, in alternating order:
//   raw          nano `_changes?include_docs=true`, pages of 500 — the sync bench's baseline;
//   raw-ours     the same read of the first variant's own records database (its design documents
//                and local documents included), to show that database reads as fast;
//   <variant>    undici pull pages of 500 from that variant's server from the start — the sync
//                bench's "protocol only" pull.
// Medians over the rounds; CPU (cores busy) per process, summed per record.
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import nano from 'nano';
import { CpuMeter, summarize } from '@fieldvault/bench-kit';
import { startEmbeddedCouch } from '@fieldvault/couch-embedded';
import { createClock, createRecord, type ChildRecord } from '@fieldvault/protocol';
import { bulkDocs, changesRead, storedDoc } from './baselines.js';
import { PASSWORD, USERNAME, recordFields } from './phones.js';
import { pushBodies, rawPull, rawPush } from './raw-protocol.js';
import { startBenchServer, type BenchServer } from './server-process.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '4' },
    variant: { type: 'string', multiple: true, default: ['default:'] },
  },
});
const N = Number(args.records);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(N) || N < 500 || N > 200_000 || !Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 40) throw new Error('--records 500..200000, --rounds 1..40');
/** `name:FIELDVAULT_A=1,FIELDVAULT_B=2` → the server environment of that variant. */
const variants = (args.variant ?? []).map((spec) => {
  const colon = spec.indexOf(':');
  if (colon < 1) throw new Error(`--variant takes name:NAME=value,…, not ${spec}`);
  const env: Record<string, string> = {};
  for (const pair of spec.slice(colon + 1).split(',').filter((p) => p !== '')) {
    const at = pair.indexOf('=');
    if (!/^[A-Z][A-Z0-9_]*$/.test(pair.slice(0, at))) throw new Error(`--variant: NAME=value, not ${pair}`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return { name: spec.slice(0, colon), env };
});
const BATCH = 500;
const IMEI = '356938035643817';
const ADMIN_PASSWORD = 'correct horse battery staple rooftop';

const clock = createClock({ node: IMEI });
const records: ChildRecord[] = Array.from({ length: N }, (_, i) =>
  createRecord({ id: randomUUID(), createdBy: USERNAME, device: IMEI, clockTs: clock.now(), fields: recordFields(i) }),
);

const dir = mkdtempSync(join(tmpdir(), 'fieldvault-pull-path-'));
const store = await startEmbeddedCouch({ dataDir: join(dir, 'store') });
const servers: Array<{ name: string; server: BenchServer; token: string }> = [];
const samples = new Map<string, Array<{ rate: number; cpuMs: number; cores: Record<string, number> }>>();
try {
  process.stdout.write(`${N} records (${JSON.stringify(records[0]).length} B each as JSON), ${ROUNDS} rounds, pages of ${BATCH}\n`);
  await bulkDocs(store.url, 'bulk', records.map(storedDoc), BATCH);
  for (const [i, v] of variants.entries()) {
    const dataDir = join(dir, `server-${i}`);
    mkdirSync(dataDir);
    const server = await startBenchServer({ dataDir, serverId: `pull-${v.name}`, couchUrl: store.url, dbPrefix: `v${i}_`, adminPassword: ADMIN_PASSWORD, env: v.env });
    servers.push({ name: v.name, server, token: '' });
    await server.createUser(USERNAME, PASSWORD);
    const token = await server.login(USERNAME, PASSWORD, IMEI);
    (servers[i] as { token: string }).token = token;
    await rawPush(server, token, pushBodies(records, BATCH), N);
  }
  function note(name: string, ms: number, meter: CpuMeter): void {
    const cores = meter.cores();
    const busy = Object.entries(cores).filter(([k]) => k !== 'others').reduce((s, [, v]) => s + v, 0);
    const list = samples.get(name) ?? [];
    list.push({ rate: (N / ms) * 1000, cpuMs: (busy * ms) / N, cores });
    samples.set(name, list);
    process.stdout.write(`  ${name}: ${Math.round((N / ms) * 1000)} rec/s, cores ${JSON.stringify(cores)}\n`);
  }
  const steps: Array<[string, () => Promise<void>]> = [
    [
      'raw',
      async () => {
        const meter = new CpuMeter({ store: store.pid, bench: process.pid });
        meter.start();
        const ms = await changesRead(store.url, 'bulk', N, BATCH);
        meter.stop();
        note('raw', ms, meter);
      },
    ],
    [
      'raw-ours',
      async () => {
        const meter = new CpuMeter({ store: store.pid, bench: process.pid });
        meter.start();
        const db = nano(store.url).use('v0_records');
        let since: string | undefined;
        let read = 0;
        const t0 = performance.now();
        // As the server reads: one row more than the page, which tells whether more follow.
        for (;;) {
          const res = await db.changes({ include_docs: true, limit: BATCH + 1, ...(since === undefined ? {} : { since }) });
          read += res.results.slice(0, BATCH).filter((r) => (r as { doc?: { type?: string } }).doc?.type === 'record').length;
          since = res.results[Math.min(BATCH, res.results.length) - 1]?.seq as string;
          if (res.results.length <= BATCH) break;
        }
        const ms = performance.now() - t0;
        meter.stop();
        if (read !== N) throw new Error(`raw-ours read ${read} records, expected ${N}`);
        note('raw-ours', ms, meter);
      },
    ],
    ...servers.map(({ name, server, token }): [string, () => Promise<void>] => [
      name,
      async () => {
        const meter = new CpuMeter({ store: store.pid, server: server.pid, bench: process.pid });
        meter.start();
        const ms = await rawPull(server, token, BATCH, N);
        meter.stop();
        note(name, ms, meter);
      },
    ]),
  ];
  for (let round = 0; round < ROUNDS; round += 1) {
    process.stdout.write(`round ${round + 1}\n`);
    for (const [, step] of round % 2 === 0 ? steps : [...steps].reverse()) await step();
  }
  const median = (xs: readonly number[]): number => summarize(xs).p50;
  const base = median((samples.get('raw') ?? []).map((x) => x.rate));
  process.stdout.write('\n| path | rec/s (median) | vs raw `_changes` | per round | CPU ms per record | cores (median per process) |\n|---|---|---|---|---|---|\n');
  for (const [name, list] of samples) {
    const rates = list.map((x) => x.rate);
    const m = median(rates);
    const procs = Object.keys(list[0]?.cores ?? {});
    const cores = procs.map((p) => `${p} ${median(list.map((x) => x.cores[p] ?? 0)).toFixed(2)}`).join(', ');
    process.stdout.write(`| ${name} | ${Math.round(m)} | ${(m / base).toFixed(3)}× | ${rates.map((r) => Math.round(r)).join(' / ')} | ${median(list.map((x) => x.cpuMs)).toFixed(3)} | ${cores} |\n`);
  }
} finally {
  await Promise.all(servers.map((s) => s.server.stop().catch(() => undefined)));
  await store.stop();
  rmSync(dir, { recursive: true, force: true });
}
