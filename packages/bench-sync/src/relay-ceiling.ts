// How close can anything that stands between a phone and the store come to raw `_bulk_docs`?
// (docs/performance.md, "Seventh round".) Not part of `npm run bench`: it explains a goal, it
// sets none. Run: `npm run ceiling` in this package (≈ 1–2 min).
//
// 10 000 records built like the sync bench's (its recordFields through the protocol's
// createRecord, ≈ 2.5 KB as JSON; the bench's phones make them through the SDK) on one fresh
// embedded store, three ways, alternating order every round, each into a new database:
//   bulk     the sync bench's raw baseline: nano `_bulk_docs` of the stored envelopes, 500 per
//            request, one request at a time;
//   relay×1  push bodies of 500 records over HTTPS (keep-alive, certificate checked) to
//            check-free-relay.ts in its own process, which wraps and writes them; one at a time;
//   relay×2  the same with two requests in flight (what the SDK does).
// Medians over the rounds; CPU per record summed over the store, the relay and this process.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import nano from 'nano';
import { Agent, request } from 'undici';
import { CpuMeter, summarize } from '@fieldvault/bench-kit';
import { startEmbeddedCouch } from '@fieldvault/couch-embedded';
import { createClock, createRecord, type ChildRecord } from '@fieldvault/protocol';
import { bulkDocs, storedDoc } from './baselines.js';
import { recordFields } from './phones.js';

const { values: args } = parseArgs({ options: { records: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(args.records);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(N) || N < 500 || N > 200_000 || !Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 20) throw new Error('--records 500..200000, --rounds 1..20');
const BATCH = 500;
const IMEI = '356938035643809';

const clock = createClock({ node: IMEI });
const records: ChildRecord[] = Array.from({ length: N }, (_, i) =>
  createRecord({ id: randomUUID(), createdBy: 'fieldworker', device: IMEI, clockTs: clock.now(), fields: recordFields(i) }),
);
const docs = records.map(storedDoc);
const bodies: string[] = [];
for (let i = 0; i < N; i += BATCH) bodies.push(JSON.stringify({ records: records.slice(i, i + BATCH) }));

interface Relay {
  readonly child: ChildProcess & { pid: number };
  readonly port: number;
  readonly agent: Agent;
}

async function startRelay(storeUrl: string, db: string): Promise<Relay> {
  const script = fileURLToPath(new URL('./check-free-relay.js', import.meta.url));
  // The store URL carries the store's credential: environment (same account only), not argv (ps).
  const child = spawn(process.execPath, [script, db], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FIELDVAULT_RELAY_STORE_URL: storeUrl } });
  if (child.pid === undefined) throw new Error('the relay did not start');
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the relay exited (${String(code)})`)));
  });
  const { port, cert } = JSON.parse(first) as { port: number; cert: string };
  return { child: child as ChildProcess & { pid: number }, port, agent: new Agent({ connect: { ca: cert }, connections: 4 }) };
}

/** Sends every push body with `depth` requests in flight; returns the milliseconds taken. */
async function pushThrough(relay: Relay, depth: number): Promise<number> {
  let next = 0;
  let stored = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++] as string;
        const res = await request(`https://127.0.0.1:${relay.port}/push`, { method: 'POST', body, dispatcher: relay.agent, headers: { 'content-type': 'application/json' } });
        if (res.statusCode !== 200) throw new Error(`relay answered ${res.statusCode}: ${await res.body.text()}`);
        const { ok } = (await res.body.json()) as { ok: number };
        stored += ok;
      }
    }),
  );
  const ms = performance.now() - t0;
  if (stored !== N) throw new Error(`the relay stored ${stored} of ${N}`);
  return ms;
}

const dir = mkdtempSync(join(tmpdir(), 'fieldvault-ceiling-'));
const store = await startEmbeddedCouch({ dataDir: join(dir, 'store') });
/** Per path, one sample per round: records per second and CPU ms per record. */
const samples = new Map<string, Array<{ rate: number; cpuMs: number }>>();
let dbCount = 0;
try {
  process.stdout.write(`${N} records (${JSON.stringify(records[0]).length} B each as JSON), ${ROUNDS} rounds, batches of ${BATCH}\n`);
  const steps: Record<string, () => Promise<void>> = {
    bulk: async () => {
      const db = `bulk_${dbCount++}`;
      const meter = new CpuMeter({ store: store.pid, bench: process.pid });
      meter.start();
      const ms = await bulkDocs(store.url, db, docs, BATCH);
      meter.stop();
      note('bulk', ms, meter);
    },
    ...Object.fromEntries(
      [1, 2].map((depth) => [
        `relay×${depth}`,
        async () => {
          const db = `relay_${dbCount++}`;
          await nano(store.url).db.create(db);
          const relay = await startRelay(store.url, db);
          try {
            const meter = new CpuMeter({ store: store.pid, relay: relay.child.pid, bench: process.pid });
            meter.start();
            const ms = await pushThrough(relay, depth);
            meter.stop();
            note(`relay×${depth}`, ms, meter);
          } finally {
            relay.child.kill('SIGTERM');
            await relay.agent.close();
          }
        },
      ]),
    ),
  };
  function note(name: string, ms: number, meter: CpuMeter): void {
    const cores = meter.cores();
    const busy = Object.entries(cores).filter(([k]) => k !== 'others').reduce((s, [, v]) => s + v, 0);
    const list = samples.get(name) ?? [];
    list.push({ rate: (N / ms) * 1000, cpuMs: (busy * ms) / N });
    samples.set(name, list);
    process.stdout.write(`  ${name}: ${Math.round((N / ms) * 1000)} rec/s, cores ${JSON.stringify(cores)}\n`);
  }
  for (let round = 0; round < ROUNDS; round += 1) {
    process.stdout.write(`round ${round + 1}\n`);
    const names = Object.keys(steps);
    for (const name of round % 2 === 0 ? names : names.reverse()) await (steps[name] as () => Promise<void>)();
  }
  const median = (xs: readonly number[]): number => summarize(xs).p50;
  const base = median((samples.get('bulk') ?? []).map((x) => x.rate));
  process.stdout.write('\n| path | rec/s (median) | vs raw `_bulk_docs` | per round | CPU ms per record |\n|---|---|---|---|---|\n');
  for (const [name, list] of samples) {
    const rates = list.map((x) => x.rate);
    const m = median(rates);
    process.stdout.write(`| ${name} | ${Math.round(m)} | ${(m / base).toFixed(3)}× | ${rates.map((r) => Math.round(r)).join(' / ')} | ${median(list.map((x) => x.cpuMs)).toFixed(3)} |\n`);
  }
} finally {
  await store.stop();
  rmSync(dir, { recursive: true, force: true });
}
