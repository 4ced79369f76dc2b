// `npm run load`: one real server process (apps/server on its embedded store, self-signed TLS)
// and N simulated phones — real SDK devices on SQLCipher files, each with its own IMEI and
// directory, spread over worker threads. Phase 1: all phones at once log in, register records
// with photos and send them (push + photo uploads). Phase 2: a sample of the phones (all of them
// up to 20 by default) run a full sync at once, each pulling everything the server holds. It
// reports latency per endpoint as the phones saw it, records/s, errors, the server's memory, and
// checks that the server holds exactly the records it acknowledged and that every puller
// received all of them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { summarize, type Summary } from '@fieldvault/bench-kit';
import type { KdfCost } from '@fieldvault/client';
import { startServerProcess } from '@fieldvault/test-support';
import { checkHolding, type HoldingCheck } from './invariant.js';
import type { MainMessage, PhoneOutcome, PhonePlan, PullOutcome, WorkerInput, WorkerMessage } from './messages.js';
import { processTreeRss } from './rss.js';
import { endpointName, mergeCallLogs, newCallLog } from './timed-transport.js';

export interface LoadOptions {
  readonly devices: number;
  /** Field workers; phones are shared round-robin (default min(devices, 50)). */
  readonly users?: number;
  readonly records?: number;
  readonly photos?: number;
  readonly photoBytes?: number;
  readonly workers?: number;
  /** Phones that run the full sync of phase 2 (default min(devices, 20)); 0 skips phase 2. */
  readonly pullers?: number;
  /** Argon2id cost on the phones (the server always uses its own default). */
  readonly clientKdf?: KdfCost;
  /** Keep the data directory (server and phones) for inspection. */
  readonly keep?: boolean;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface EndpointRow extends Summary {
  readonly endpoint: string;
  readonly errors: number;
}

export interface LoadReport {
  readonly devices: number;
  readonly users: number;
  readonly recordsPerDevice: number;
  readonly photosPerDevice: number;
  readonly photoBytes: number;
  readonly wallSeconds: number;
  readonly endpoints: readonly EndpointRow[];
  readonly errors: Readonly<Record<string, number>>;
  readonly phoneFailures: ReadonlyArray<{ readonly imei: string; readonly error: string }>;
  readonly recordsPushed: number;
  readonly photosUploaded: number;
  /** Phase 1 wall time (first login to the last phone's sending sync). */
  readonly sendSeconds: number;
  /** Records pushed per second from the first sending sync's start to the last one's end (logins excluded). */
  readonly pushedPerSecond: number;
  /** Phase 2: pullers, records they pulled in all, wall time, records pulled per second of it. */
  readonly pullers: number;
  readonly recordsPulled: number;
  readonly photosDownloaded: number;
  readonly pullSeconds: number;
  readonly pulledPerSecond: number;
  /** Pullers that did not end with every record the server holds (or failed). */
  readonly incompletePullers: ReadonlyArray<{ readonly index: number; readonly pulled: number; readonly error?: string }>;
  readonly serverRssMiB: { readonly start: number; readonly peak: number; readonly end: number };
  readonly holding: HoldingCheck;
  readonly serverRecords: number;
  readonly loadAverage: readonly number[];
}

const PASSWORD = 'lantern harbour copper kettle dawn';

/** Seconds from the first sending sync's start to the last one's end. */
function syncWindow(outcomes: readonly PhoneOutcome[]): number {
  const synced = outcomes.filter((o) => o.syncStartedAt > 0 && o.syncEndedAt > 0);
  if (synced.length === 0) return 0;
  return (Math.max(...synced.map((o) => o.syncEndedAt)) - Math.min(...synced.map((o) => o.syncStartedAt))) / 1000;
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const devices = options.devices;
  const users = Math.max(1, Math.min(options.users ?? Math.min(devices, 50), devices));
  const records = options.records ?? 50;
  const photos = Math.min(options.photos ?? 2, records);
  const photoBytes = options.photoBytes ?? 48 * 1024;
  const workers = Math.max(1, Math.min(options.workers ?? 2, devices));
  const pullerCount = Math.max(0, Math.min(options.pullers ?? 20, devices));
  // Spread the pullers over the phones (and so over the workers and users).
  const pullers = new Set(Array.from({ length: pullerCount }, (_, i) => Math.floor((i * devices) / pullerCount)));
  const root = mkdtempSync(join(tmpdir(), 'fieldvault-load-'));
  const server = await startServerProcess(join(root, 'server'), 'load-server', {
    // Many phones from one address: the per-address limits would throttle the load itself.
    env: { FIELDVAULT_AUTH_RATE_LIMIT: '1000000', FIELDVAULT_RATE_LIMIT: '1000000', FIELDVAULT_LOG_LEVEL: 'error' },
  });
  try {
    const names = Array.from({ length: users }, (_, i) => `worker${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 8) await Promise.all(names.slice(i, i + 8).map((u) => server.createUser(u, PASSWORD)));
    const plans: PhonePlan[] = Array.from({ length: devices }, (_, i) => ({
      index: i,
      imei: `35${String(i).padStart(13, '0')}`,
      username: names[i % users] as string,
      password: PASSWORD,
    }));

    const rssStart = processTreeRss(server.pid);
    let rssPeak = rssStart;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, processTreeRss(server.pid))), 500);
    const outcomes: PhoneOutcome[] = [];
    const pulls: PullOutcome[] = [];
    const calls = newCallLog();
    const started = performance.now();
    let sendSeconds = 0;
    let pullStarted = 0;
    try {
      const threads = Array.from({ length: workers }, (_, w) => {
        const phones = plans.filter((p) => p.index % workers === w);
        const input: WorkerInput = {
          phones,
          server: { url: server.url, serverId: server.serverId, fingerprint: server.fingerprint },
          directory: join(root, 'phones'),
          records,
          photos,
          photoBytes,
          kdf: options.clientKdf,
          pullers: phones.map((p) => p.index).filter((i) => pullers.has(i)),
        };
        const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: input });
        let sent!: () => void;
        const allSent = new Promise<void>((resolve) => (sent = resolve));
        const finished = new Promise<void>((resolve, reject) => {
          worker.on('message', (m: WorkerMessage) => {
            if (m.type === 'phone') {
              outcomes.push(m.outcome);
              options.onProgress?.(outcomes.length, devices);
            } else if (m.type === 'sent') sent();
            else if (m.type === 'pulled') pulls.push(m.outcome);
            else mergeCallLogs(calls, m.calls);
          });
          worker.on('error', reject);
          worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load worker ${w} exited with ${code}`))));
        });
        return { worker, allSent, finished };
      });
      await Promise.race([Promise.all(threads.map((x) => x.allSent)), Promise.all(threads.map((x) => x.finished))]);
      sendSeconds = (performance.now() - started) / 1000;
      pullStarted = performance.now();
      for (const x of threads) x.worker.postMessage({ type: 'pull' } satisfies MainMessage);
      await Promise.all(threads.map((x) => x.finished));
    } finally {
      clearInterval(sampler);
    }
    const pullSeconds = (performance.now() - pullStarted) / 1000;
    const wallSeconds = (performance.now() - started) / 1000;
    const rssEnd = processTreeRss(server.pid);

    const held = await server.records();
    const photosHeld = new Set<string>();
    for (const phone of outcomes) {
      for (const c of phone.created) {
        if (c.photoId === undefined) continue;
        const status = await server.admin('GET', `/v1/photos/${c.photoId}/upload?record=${c.id}`);
        if (status.status === 200 && status.body['complete'] === true) photosHeld.add(c.photoId);
      }
    }
    const holding = checkHolding(held, outcomes, photosHeld);
    // Phase 2 began after every phone had sent, so each puller must have received every record.
    const incompletePullers = pulls
      .filter((p) => p.error !== undefined || p.pulled !== held.length)
      .map((p) => ({ index: p.index, pulled: p.pulled, ...(p.error === undefined ? {} : { error: p.error }) }));

    const endpoints: EndpointRow[] = Object.keys(calls.ms)
      .filter((e) => (calls.ms[e]?.length ?? 0) > 0)
      .map((e) => ({
        endpoint: endpointName(e),
        ...summarize(calls.ms[e] ?? []),
        errors: Object.entries(calls.errors).filter(([k]) => k.startsWith(`${e} `)).reduce((n, [, v]) => n + v, 0),
      }));
    const sum = (f: (o: PhoneOutcome) => number): number => outcomes.reduce((n, o) => n + f(o), 0);
    const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;
    const { loadavg } = await import('node:os');
    return {
      devices,
      users,
      recordsPerDevice: records,
      photosPerDevice: photos,
      photoBytes,
      wallSeconds,
      endpoints,
      errors: calls.errors,
      phoneFailures: outcomes.filter((o) => o.error !== undefined).map((o) => ({ imei: o.imei, error: o.error as string })),
      recordsPushed: sum((o) => o.pushed),
      photosUploaded: sum((o) => o.photosUploaded),
      sendSeconds,
      pushedPerSecond: syncWindow(outcomes) === 0 ? 0 : sum((o) => o.pushed) / syncWindow(outcomes),
      pullers: pulls.length,
      recordsPulled: pulls.reduce((n, p) => n + p.pulled, 0),
      photosDownloaded: pulls.reduce((n, p) => n + p.photosDownloaded, 0),
      pullSeconds,
      pulledPerSecond: pulls.length === 0 ? 0 : pulls.reduce((n, p) => n + p.pulled, 0) / pullSeconds,
      incompletePullers,
      serverRssMiB: { start: mib(rssStart), peak: mib(rssPeak), end: mib(rssEnd) },
      holding,
      serverRecords: held.length,
      loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    };
  } finally {
    await server.stop();
    if (options.keep !== true) rmSync(root, { recursive: true, force: true });
  }
}

/** The report as the text table `npm run load` prints. */
export function formatReport(r: LoadReport): string {
  const ms = (v: number): string => v.toFixed(v < 10 ? 1 : 0);
  const lines = [
    `fieldvault load: ${r.devices} phones (${r.pullers} pulling), ${r.users} users, ${r.recordsPerDevice} records + ${r.photosPerDevice} photos of ${Math.round(r.photoBytes / 1024)} KiB each, in ${r.wallSeconds.toFixed(1)} s (load average ${r.loadAverage.join(' ')})`,
    '',
    `${'endpoint'.padEnd(34)} ${'calls'.padStart(7)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'errors'.padStart(7)}`,
    ...r.endpoints.map((e) => `${e.endpoint.padEnd(34)} ${String(e.count).padStart(7)} ${ms(e.p50).padStart(8)} ${ms(e.p95).padStart(8)} ${ms(e.p99).padStart(8)} ${ms(e.max).padStart(8)} ${String(e.errors).padStart(7)}`),
    '',
    `phase 1, all ${r.devices} phones send: ${r.recordsPushed} records pushed and ${r.photosUploaded} photos uploaded in ${r.sendSeconds.toFixed(1)} s with the logins (${r.pushedPerSecond.toFixed(0)} records/s while the phones sent)`,
    `phase 2, ${r.pullers} phones run a full sync at once: ${r.recordsPulled} records pulled and ${r.photosDownloaded} photos downloaded in ${r.pullSeconds.toFixed(1)} s (${r.pulledPerSecond.toFixed(0)} records/s); pullers missing records: ${r.incompletePullers.length === 0 ? 'none' : r.incompletePullers.map((p) => `#${p.index} ${p.pulled}${p.error === undefined ? '' : ` ${p.error}`}`).join(', ')}`,
    `server RSS (with its store): start ${r.serverRssMiB.start} MiB, peak ${r.serverRssMiB.peak} MiB, end ${r.serverRssMiB.end} MiB`,
    `errors seen by phones (retried or reported): ${Object.keys(r.errors).length === 0 ? 'none' : Object.entries(r.errors).map(([k, v]) => `${k} ×${v}`).join(', ')}`,
    `phones that failed: ${r.phoneFailures.length === 0 ? 'none' : r.phoneFailures.map((f) => `${f.imei} ${f.error}`).join(', ')}`,
    `invariant (server holds exactly the acknowledged records): ${r.holding.ok ? 'holds' : 'BROKEN'} — ${r.holding.acknowledged} acknowledged, ${r.serverRecords} on the server, missing ${r.holding.missing.length}, unexpected ${r.holding.unexpected.length}, duplicates ${r.holding.duplicates.length}, photos missing ${r.holding.missingPhotos.length}`,
  ];
  return lines.join('\n');
}
