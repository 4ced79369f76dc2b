// Sync and photo benchmark (issue 5 "Performance", issue 8 item 1).
//
//   node dist/sync-bench.js [--records 10000] [--rounds 3] [--photos 16] [--photo-kib 2048] [--profile-dir DIR]
//                           [--server-env NAME=VALUE …]   (server settings for A/B runs)
//
// Method. Setup (not timed): a seed server gives two phones (real SDK, SQLCipher 4 files) the
// device key; phone P creates the N records through the SDK, phone F creates records with one
// photo each (random-content JPEGs of a phone camera's size). The records P holds are also the
// documents of the baselines, wrapped as our server stores them. Then R rounds; each round gets a
// fresh embedded store (@fieldvault/couch-embedded) and three fresh servers on it
// (apps/server/dist/main.js processes, HTTPS with the self-signed certificate, production defaults,
// request logs at info to a file, rate limits raised because all traffic is from 127.0.0.1):
//
//   push   ours   P logs in to server A and syncs; timed from the sync's start to the start of its
//                 pull phase (then cancelled): read pending rows from SQLCipher, batches of 500
//                 over the pinned-TLS transport, server merge + `_bulk_docs`, acks committed.
//          proto  the same records as pre-serialised batches of 500 to server B with undici
//                 (keep-alive): the server's share alone, no SDK.
//          pouch  local PouchDB (LevelDB, loaded in setup) → a new database of the round's store,
//                 `replicate.to`, batch_size 500.
//          bulk   nano `_bulk_docs`, batches of 500, one at a time, into a new database.
//   pull   ours   a new phone logs in to A and syncs; timed over its pull phase (pages of 500,
//                 merged and committed into SQLCipher one transaction per page).
//          proto  undici pages of 500 from B from the start.
//          pouch  the pouch database → a new local PouchDB, `replicate.from`, batch_size 500.
//          raw    nano `_changes?include_docs=true` pages of 500 from the bulk database.
//   photos up     F logs in to server C and syncs; timed over its photos-up phase (each photo read
//                 and decrypted from the vault, uploaded, acknowledged).
//          down   a new phone logs in to C and syncs; timed over its photos-down phase (download,
//                 check, encrypt into the vault, acknowledge).
//          copy   fs.copyFile of the same photo bytes (plain files) into a new folder.
// Every run is checked (counts written/read) so a failure cannot pass for speed. The order of ours
// and the baselines is reversed every other round, so drifting noise hits both sides. Reported:
// the median over the rounds of each rate; the ratio is ours ÷ baseline of those medians (per-round
// ratios are in the JSON). Load average and per-process CPU are recorded: this machine has 2 cores
// shared with other work.
//
// Appends its rows to bench-results/rows.jsonl (see @fieldvault/bench-kit) and prints them. Every
// process it starts and its temporary directory are removed at the end, also on failure.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { appendRows, benchRow, CpuMeter, formatTable, summarize, type BenchRow, type Goal } from '@fieldvault/bench-kit';
import type { Session } from '@fieldvault/client';
import { startEmbeddedCouch, type EmbeddedCouch } from '@fieldvault/couch-embedded';
import type { ChildRecord } from '@fieldvault/protocol';
import { bulkDocs, changesRead, copyFiles, localPouchWith, pouchPull, pouchPush, storedDoc } from './baselines.js';
import { allRecords, createRecords, jpeg, loginTo, newPhone, nextImei, PASSWORD, timedSync, USERNAME, type Phone } from './phones.js';
import { pushBodies, rawPull, rawPush } from './raw-protocol.js';
import { startBenchServer, type BenchServer } from './server-process.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    photos: { type: 'string', default: '16' },
    'photo-kib': { type: 'string', default: '2048' },
    'profile-dir': { type: 'string' },
    'server-env': { type: 'string', multiple: true, default: [] },
  },
});
const serverEnv: Record<string, string> = {};
for (const pair of args['server-env'] ?? []) {
  const at = pair.indexOf('=');
  if (!/^FIELDVAULT_[A-Z0-9_]+$/.test(pair.slice(0, at))) throw new Error(`--server-env takes FIELDVAULT_NAME=value, not ${pair}`);
  serverEnv[pair.slice(0, at)] = pair.slice(at + 1);
}
const N = Number(args.records);
const ROUNDS = Number(args.rounds);
const PHOTOS = Number(args.photos);
const PHOTO_BYTES = Number(args['photo-kib']) * 1024;
for (const [name, v, max] of [['records', N, 200_000], ['rounds', ROUNDS, 20], ['photos', PHOTOS, 500], ['photo-kib', PHOTO_BYTES / 1024, 10_000]] as const) {
  if (!Number.isInteger(v) || v <= 0 || v > max) throw new Error(`--${name} is out of range (1..${max})`);
}
/** The SDK's and the server's default batch (DESIGN.md §4); every baseline uses the same. */
const BATCH = 500;
const SOURCE = '@fieldvault/bench-sync';
const ADMIN_PASSWORD = 'correct horse battery staple rooftop';
/** A safety bound; the default run took ≈ 7 min on the shared 2-core machine. */
const HARD_LIMIT_MS = 30 * 60_000;

const started = Date.now();
function say(text: string): void {
  process.stdout.write(`[sync-bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`);
}
const round = (v: number, digits = 2): number => Number(v.toFixed(digits));
const median = (xs: readonly number[]): number => summarize(xs).p50;
const load1 = (): number => round(loadavg()[0] ?? 0);

type Workload =
  | 'pushOurs' | 'pushProto' | 'pushPouch' | 'pushBulk'
  | 'pullOurs' | 'pullProto' | 'pullPouch' | 'pullRaw'
  | 'photoUp' | 'photoDown' | 'photoCopyUp' | 'photoCopyDown';

/** Per workload: the rate of each round (records/s or MB/s) and the CPU it used. */
const rates = new Map<Workload, number[]>();
const cpu = new Map<Workload, Array<Record<string, number>>>();
/**
 * CPU milliseconds our processes (bench incl. phone, server, store) spent per record (per MB for
 * photos): less sensitive than wall time to other work on a shared machine, and it shows where
 * the cost is.
 */
const cpuPerUnit = new Map<Workload, number[]>();
function record(w: Workload, amount: number, ms: number, cores: Record<string, number>): void {
  rates.set(w, [...(rates.get(w) ?? []), amount / (ms / 1000)]);
  cpu.set(w, [...(cpu.get(w) ?? []), cores]);
  const ours = Object.entries(cores).reduce((n, [k, v]) => (k === 'others' ? n : n + v), 0);
  cpuPerUnit.set(w, [...(cpuPerUnit.get(w) ?? []), (ours * ms) / amount]);
}

interface Round {
  readonly index: number;
  readonly dir: string;
  readonly store: EmbeddedCouch;
  readonly a: BenchServer;
  readonly b: BenchServer;
  readonly c: BenchServer;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'fieldvault-sync-bench-'));
  const stores: EmbeddedCouch[] = [];
  const servers: BenchServer[] = [];
  const phones: Phone[] = [];
  const cleanup = async (): Promise<void> => {
    for (const p of phones) await p.device.logout().catch(() => undefined);
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    await Promise.all(stores.map((s) => s.stop().catch(() => undefined)));
    rmSync(work, { recursive: true, force: true });
  };
  const hardLimit = setTimeout(() => {
    process.stderr.write(`sync bench: still running after ${HARD_LIMIT_MS / 60_000} min, giving up\n`);
    void cleanup().finally(() => process.exit(1));
  }, HARD_LIMIT_MS);
  hardLimit.unref();
  // Ctrl-C or a kill must not leave servers and stores running.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`sync bench: ${signal}, stopping its servers and stores\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  const loads: number[] = [load1()];
  say(`${N} records, ${ROUNDS} rounds, ${PHOTOS} photos of ${PHOTO_BYTES / 1024} KiB, ${availableParallelism()} cores, load average ${loads[0]}`);
  const profileArgs = args['profile-dir'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${args['profile-dir']}`];

  const startServer = async (store: EmbeddedCouch, dir: string, serverId: string, dbPrefix: string): Promise<BenchServer> => {
    mkdirSync(dir, { recursive: true });
    const s = await startBenchServer({ dataDir: dir, serverId, couchUrl: store.url, dbPrefix, adminPassword: ADMIN_PASSWORD, nodeArgs: profileArgs, env: serverEnv });
    servers.push(s);
    await s.createUser(USERNAME, PASSWORD);
    return s;
  };
  const stopServer = async (s: BenchServer): Promise<void> => {
    servers.splice(servers.indexOf(s), 1);
    await s.stop();
  };
  const stopStore = async (s: EmbeddedCouch): Promise<void> => {
    stores.splice(stores.indexOf(s), 1);
    await s.stop();
  };
  const newStore = async (dir: string): Promise<EmbeddedCouch> => {
    const s = await startEmbeddedCouch({ dataDir: dir });
    stores.push(s);
    return s;
  };
  /** A phone logs in to `server` (closing the session it had: one user at a time on a phone). */
  const login = async (phone: Phone, server: BenchServer): Promise<Session> => {
    await phone.device.logout();
    return loginTo(phone, server.transport());
  };

  try {
    // ------------------------------------------------------------------------------- setup
    const seedStore = await newStore(join(work, 'seed', 'couch'));
    const seed = await startServer(seedStore, join(work, 'seed', 'server'), 'bench-seed', 'seed_');
    const pushPhone = await newPhone(join(work, 'phone-push'));
    phones.push(pushPhone);
    const ps = await loginTo(pushPhone, seed.transport());
    await createRecords(ps, N, (done) => say(`phone: ${done} of ${N} records created`));
    const records: ChildRecord[] = await allRecords(ps);
    if (records.length !== N) throw new Error(`the phone holds ${records.length} records, expected ${N}`);
    const recordBytes = records.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)), 0);

    const photoPhone = await newPhone(join(work, 'phone-photos'));
    phones.push(photoPhone);
    const fs = await loginTo(photoPhone, seed.transport());
    const photoFiles: string[] = [];
    let photoBytes = 0;
    mkdirSync(join(work, 'photo-files'));
    for (let i = 0; i < PHOTOS; i += 1) {
      const r = await fs.createRecord({ name: `Photo child ${i}`, age: i % 18 });
      const stored = await fs.addPhoto(r.id, jpeg(PHOTO_BYTES));
      // The baseline copies exactly the bytes the phone uploads (metadata already stripped).
      const content = await fs.readPhoto(r.id, stored.photoId);
      const file = join(work, 'photo-files', `${i}.jpg`);
      writeFileSync(file, content.bytes);
      photoFiles.push(file);
      photoBytes += content.bytes.byteLength;
    }
    await pushPhone.device.logout();
    await photoPhone.device.logout();
    await stopServer(seed);
    await stopStore(seedStore);

    const docs = records.map(storedDoc);
    const local = await localPouchWith(join(work, 'pouch-source'), docs, BATCH);
    const bodies = pushBodies(records, BATCH);
    say(`setup done: ${N} records (${round(recordBytes / N, 0)} B each as JSON) on the phone and in a local PouchDB; ${PHOTOS} photos, ${round(photoBytes / 1e6)} MB`);

    // ------------------------------------------------------------------------------ rounds
    for (let index = 1; index <= ROUNDS; index += 1) {
      const dir = join(work, `round-${index}`);
      const store = await newStore(join(dir, 'couch'));
      const [a, b, c] = await Promise.all([
        startServer(store, join(dir, 'a'), `bench-r${index}-a`, `r${index}a_`),
        startServer(store, join(dir, 'b'), `bench-r${index}-b`, `r${index}b_`),
        startServer(store, join(dir, 'c'), `bench-r${index}-c`, `r${index}c_`),
      ]);
      const rd: Round = { index, dir, store, a, b, c };
      const reverse = index % 2 === 0;
      const order = <T>(xs: T[]): T[] => (reverse ? [...xs].reverse() : xs);
      const meter = (w: Workload, server?: BenchServer): CpuMeter =>
        new CpuMeter({ bench: process.pid, store: rd.store.pid, ...(server === undefined ? {} : { server: server.pid }) });
      const measure = async (w: Workload, amount: number, run: () => Promise<number>, server?: BenchServer): Promise<void> => {
        const m = meter(w, server);
        m.start();
        const ms = await run();
        m.stop();
        record(w, amount, ms, m.cores());
      };

      // Sessions and tokens first: logins are not part of any timing.
      const pushSession = await login(pushPhone, rd.a);
      const tokenB = await rd.b.login(USERNAME, PASSWORD, nextImei());

      for (const step of order([
        () =>
          measure('pushOurs', N, async () => {
            const { phaseMs, last } = await timedSync(pushSession, rd.a.transport(), 'pull');
            if (last.push?.recordsDone !== N) throw new Error(`SDK push: ${last.push?.recordsDone ?? 0} of ${N} records`);
            return phaseMs.push ?? Number.NaN;
          }, rd.a),
        () => measure('pushProto', N, () => rawPush(rd.b, tokenB, bodies, N), rd.b),
        () => measure('pushPouch', N, () => pouchPush(local, rd.store.url, 'pouch_target', N, BATCH)),
        () => measure('pushBulk', N, () => bulkDocs(rd.store.url, 'bulk_target', docs, BATCH)),
      ])) await step();
      await pushPhone.device.logout();

      const pullPhone = await newPhone(join(dir, 'phone-pull'));
      phones.push(pullPhone);
      const pullSession = await loginTo(pullPhone, rd.a.transport());
      for (const step of order([
        () =>
          measure('pullOurs', N, async () => {
            const { phaseMs, last } = await timedSync(pullSession, rd.a.transport(), 'photos-up');
            if (last.pull?.recordsDone !== N) throw new Error(`SDK pull: ${last.pull?.recordsDone ?? 0} of ${N} records`);
            return phaseMs.pull ?? Number.NaN;
          }, rd.a),
        () => measure('pullProto', N, () => rawPull(rd.b, tokenB, BATCH, N), rd.b),
        () => measure('pullPouch', N, () => pouchPull(join(dir, 'pouch-pulled'), rd.store.url, 'pouch_target', N, BATCH)),
        () => measure('pullRaw', N, () => changesRead(rd.store.url, 'bulk_target', N, BATCH)),
      ])) await step();
      await pullPhone.device.logout();

      const mb = photoBytes / 1e6;
      const upSession = await login(photoPhone, rd.c);
      const downPhone = await newPhone(join(dir, 'phone-photos-down'));
      phones.push(downPhone);
      for (const step of order([
        () =>
          measure('photoUp', mb, async () => {
            const { phaseMs, last } = await timedSync(upSession, rd.c.transport());
            if (last['photos-up']?.recordsDone !== PHOTOS) throw new Error(`photo upload: ${last['photos-up']?.recordsDone ?? 0} of ${PHOTOS}`);
            return phaseMs['photos-up'] ?? Number.NaN;
          }, rd.c),
        () => measure('photoCopyUp', mb, () => copyFiles(photoFiles, join(dir, 'copy-up'))),
      ])) await step();
      await photoPhone.device.logout();
      const downSession = await loginTo(downPhone, rd.c.transport());
      for (const step of order([
        () =>
          measure('photoDown', mb, async () => {
            const { phaseMs } = await timedSync(downSession, rd.c.transport());
            const summary = await downSession.pendingCounts(rd.c.serverId);
            if (summary.photos !== 0) throw new Error('photo download: photos still pending');
            return phaseMs['photos-down'] ?? Number.NaN;
          }, rd.c),
        () => measure('photoCopyDown', mb, () => copyFiles(photoFiles, join(dir, 'copy-down'))),
      ])) await step();
      await downPhone.device.logout();

      for (const s of [rd.a, rd.b, rd.c]) await stopServer(s);
      await stopStore(rd.store);
      rmSync(dir, { recursive: true, force: true });
      loads.push(load1());
      const last = (w: Workload): number => round(rates.get(w)?.at(-1) ?? Number.NaN, 0);
      const cpuMs = (w: Workload): number => round(cpuPerUnit.get(w)?.at(-1) ?? Number.NaN, 3);
      say(
        `round ${index} CPU ms per record (photos: per MB): push ours ${cpuMs('pushOurs')}, proto ${cpuMs('pushProto')}, pouch ${cpuMs('pushPouch')}, bulk ${cpuMs('pushBulk')}; ` +
          `pull ours ${cpuMs('pullOurs')}, proto ${cpuMs('pullProto')}, pouch ${cpuMs('pullPouch')}, raw ${cpuMs('pullRaw')}; photos up ${cpuMs('photoUp')}, down ${cpuMs('photoDown')}, copy ${cpuMs('photoCopyUp')}`,
      );
      say(
        `round ${index}: push ours ${last('pushOurs')}/s, proto ${last('pushProto')}/s, pouch ${last('pushPouch')}/s, bulk ${last('pushBulk')}/s; ` +
          `pull ours ${last('pullOurs')}/s, proto ${last('pullProto')}/s, pouch ${last('pullPouch')}/s, raw ${last('pullRaw')}/s; ` +
          `photos up ${round(rates.get('photoUp')?.at(-1) ?? 0)} MB/s, down ${round(rates.get('photoDown')?.at(-1) ?? 0)} MB/s; load ${loads.at(-1)}`,
      );
    }
    await local.close();

    const rows = buildRows({ recordBytes: round(recordBytes / N, 0), photoBytes, loads });
    appendRows(rows);
    process.stdout.write(`\n${formatTable(rows)}\n\n`);
  } finally {
    clearTimeout(hardLimit);
    await cleanup();
  }
}

function buildRows(info: { recordBytes: number; photoBytes: number; loads: readonly number[] }): BenchRow[] {
  const med = (w: Workload): number => median(rates.get(w) ?? []);
  const perRound = (ours: Workload, base: Workload): string =>
    (rates.get(ours) ?? []).map((v, i) => round(v / ((rates.get(base) ?? [])[i] ?? Number.NaN), 3)).join(' / ');
  const cores = (w: Workload): Record<string, number> => {
    const all = cpu.get(w) ?? [];
    const keys = new Set(all.flatMap((c) => Object.keys(c)));
    return Object.fromEntries([...keys].map((k) => [`cores_${k}`, round(median(all.map((c) => c[k] ?? 0)))]));
  };
  const common = {
    records: N,
    rounds: ROUNDS,
    batch: BATCH,
    recordJsonBytes: info.recordBytes,
    loadAverages: info.loads.join(' / '),
  };
  const row = (workload: string, ours: Workload, base: Workload, unit: string, goal: Goal, note?: string): BenchRow =>
    benchRow({
      workload,
      ours: round(med(ours), 1),
      oursUnit: unit,
      baseline: round(med(base), 1),
      baselineUnit: unit,
      goal,
      source: SOURCE,
      details: {
        ...common,
        perRoundRatios: perRound(ours, base),
        ours_cpuMsPerUnit: round(median(cpuPerUnit.get(ours) ?? []), 3),
        baseline_cpuMsPerUnit: round(median(cpuPerUnit.get(base) ?? []), 3),
        oursPerRound: (rates.get(ours) ?? []).map((v) => round(v, 1)).join(' / '),
        baselinePerRound: (rates.get(base) ?? []).map((v) => round(v, 1)).join(' / '),
        ...Object.fromEntries(Object.entries(cores(ours)).map(([k, v]) => [`ours_${k}`, v])),
        ...Object.fromEntries(Object.entries(cores(base)).map(([k, v]) => [`baseline_${k}`, v])),
      },
      ...(note === undefined ? {} : { note }),
    });
  const atLeast = (ratio: number): Goal => ({ op: '>=', ratio });
  const photoNote = 'informational: issue 8 sets no goal for photos; plain copy through the page cache is the ceiling';
  return [
    row(`sync push ${N} records, phone SDK (SQLCipher) → server vs PouchDB replication`, 'pushOurs', 'pushPouch', 'rec/s', atLeast(1)),
    row(`sync push ${N} records, phone SDK → server vs raw _bulk_docs`, 'pushOurs', 'pushBulk', 'rec/s', atLeast(0.8)),
    row(`sync push ${N} records, protocol only (no SDK) vs raw _bulk_docs`, 'pushProto', 'pushBulk', 'rec/s', atLeast(0.8)),
    row(`sync pull ${N} records, server → phone SDK (SQLCipher) vs PouchDB replication`, 'pullOurs', 'pullPouch', 'rec/s', atLeast(1)),
    row(`sync pull ${N} records, server → phone SDK vs raw _changes read`, 'pullOurs', 'pullRaw', 'rec/s', atLeast(0.8)),
    row(`sync pull ${N} records, protocol only (no SDK) vs raw _changes read`, 'pullProto', 'pullRaw', 'rec/s', atLeast(0.8)),
    row(`photo upload ${PHOTOS} × ${PHOTO_BYTES / 1024} KiB (decrypt + HTTPS + store) vs file copy`, 'photoUp', 'photoCopyUp', 'MB/s', atLeast(0), photoNote),
    row(`photo download ${PHOTOS} × ${PHOTO_BYTES / 1024} KiB (HTTPS + check + encrypt) vs file copy`, 'photoDown', 'photoCopyDown', 'MB/s', atLeast(0), photoNote),
  ];
}

main().catch((err: unknown) => {
  process.stderr.write(`sync bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
