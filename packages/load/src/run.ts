// `npm run load`: one real server process (apps/server on its embedded store, self-signed TLS)
// and N simulated phones — real SDK devices on SQLCipher files, each with its own IMEI and
// directory, spread over worker threads. Phase 1: all phones at once log in, register records
// with photos and send them (push + photo uploads). Phase 2: a sample of the phones (all of them
// up to 20 by default) run a full sync at once, each pulling everything the server holds. It
// reports latency per endpoint as the phones saw it, records/s, photo MB/s, errors, the server's
// memory and CPU by process per phase, disk after the run (server and phones), and checks that
// the server holds exactly the records it acknowledged and that every puller received all of them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CpuMeter, summarize, type Summary } from '@fieldvault/bench-kit';
import type { KdfCost } from '@fieldvault/client';
import { startServerProcess } from '@fieldvault/test-support';
import { directoryBreakdown, phoneDisk, type PhoneDisk } from './disk.js';
import { checkHolding, type HoldingCheck } from './invariant.js';
import { placePhones } from './placement.js';
import type { MainMessage, PhoneOutcome, PhonePlan, PullOutcome, WorkerInput, WorkerMessage } from './messages.js';
import { childProcesses, processTreeRss } from './rss.js';
import { endpointName, mergeCallLogs, newCallLog } from './timed-transport.js';

/** The phases of a run: `register` (logins and registering, with `sendTogether`), `send`, `pull`. */
export type Phase = 'register' | 'send' | 'pull';

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
  /**
   * Phase 1 in two steps: every phone logs in and registers its records, then all send at once
   * (so the sending window holds sending alone, not the login queue). Default false: each phone
   * sends as soon as it has registered.
   */
  readonly sendTogether?: boolean;
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
  readonly sendTogether: boolean;
  /** With `sendTogether`: seconds until every phone had logged in and registered its records (else 0). */
  readonly registerSeconds: number;
  /** With `sendTogether`: phones whose sending sync started before the word to send (0 unless the barrier leaks). */
  readonly syncsBeforeSendWord: number;
  /** From the first sending sync's start to the last one's end (the denominator of `pushedPerSecond`). */
  readonly sendWindowSeconds: number;
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
  /**
   * Sampled every 500 ms. `peakByPhase`: `register` (logins and registering, with `sendTogether`),
   * `send` (phase 1, or its sending step), `pull` (phase 2) — the logins' Argon2id dominates the
   * overall peak, so growth with records and photos shows in the later phases.
   */
  readonly serverRssMiB: {
    readonly start: number;
    readonly peak: number;
    readonly end: number;
    readonly peakByPhase: Readonly<Partial<Record<Phase, number>>>;
  };
  /**
   * Photo payload per second: phase 1 uploads over the sending syncs' window (as `pushedPerSecond`),
   * phase 2 downloads over its wall time. Counted as photos × `photoBytes` (the synthetic JPEG
   * carries no metadata for the SDK to strip, so that is what goes over the wire, before TLS).
   */
  readonly photoUploadMBps: number;
  readonly photoDownloadMBps: number;
  /**
   * Cores busy on average during each phase, by process: `server` (its main process), `store`
   * (the embedded CouchDB stand-in), `hasher` (the server's Argon2id child), `phones` (this
   * process: the simulated phones' threads) and `others` (the rest of the machine: other work on
   * a shared machine). Linux only; empty elsewhere.
   */
  readonly cpuCores: Readonly<Partial<Record<Phase, Readonly<Record<string, number>>>>>;
  /** Disk after the run: the server's data directory by top-level entry (`couch` is the store), and the phones'. */
  readonly disk: {
    readonly serverBytes: number;
    readonly serverParts: Readonly<Record<string, number>>;
    /** Mean over the phones that only sent (their own records and photos); `null` when every phone pulled. */
    readonly senderPhone: PhoneDisk | null;
    /** Mean over the pullers (a full copy of what the server holds); `null` without phase 2. */
    readonly pullerPhone: PhoneDisk | null;
  };
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
  const sendTogether = options.sendTogether === true;
  const { pullers, threads: placement } = placePhones(devices, pullerCount, workers);
  const root = mkdtempSync(join(tmpdir(), 'fieldvault-load-'));
  const server = await startServerProcess(join(root, 'server'), 'load-server', {
    // Many phones from one address: the per-address limits would throttle the load itself.
    env: {
      FIELDVAULT_AUTH_RATE_LIMIT: '1000000',
      FIELDVAULT_RATE_LIMIT: '1000000',
      FIELDVAULT_LOGIN_QUEUE_PER_CLIENT: '100000',
      FIELDVAULT_MAX_CONNECTIONS: '0',
      FIELDVAULT_MAX_CONNECTIONS_PER_CLIENT: '0',
      FIELDVAULT_LOG_LEVEL: 'error',
    },
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

    const children = childProcesses(server.pid);
    const pidOf = (name: string, script: string): Record<string, number> => {
      const found = children.find((c) => c.cmdline.includes(script));
      return found === undefined ? {} : { [name]: found.pid };
    };
    const pids = { server: server.pid, ...pidOf('store', 'couch-embedded'), ...pidOf('hasher', 'hasher-child'), phones: process.pid };
    const meters: Partial<Record<Phase, CpuMeter>> = {};
    const meter = (p: Phase): void => {
      const m = new CpuMeter(pids);
      meters[p] = m;
      m.start();
    };
    const rssStart = processTreeRss(server.pid);
    let rssPeak = rssStart;
    let phase: Phase = sendTogether ? 'register' : 'send';
    const phasePeaks: Partial<Record<Phase, number>> = {};
    const sample = (): void => {
      const rss = processTreeRss(server.pid);
      rssPeak = Math.max(rssPeak, rss);
      phasePeaks[phase] = Math.max(phasePeaks[phase] ?? 0, rss);
    };
    // Also sampled as each phase ends, so that a phase shorter than the interval has a figure.
    const sampler = setInterval(sample, 500);
    const outcomes: PhoneOutcome[] = [];
    const pulls: PullOutcome[] = [];
    const calls = newCallLog();
    const started = performance.now();
    meter(sendTogether ? 'register' : 'send');
    let sendSeconds = 0;
    let registerSeconds = 0;
    let sendWordAt = 0;
    let pullStarted = 0;
    try {
      const threads = placement.map((indexes, w) => {
        const phones = indexes.map((i) => plans[i] as PhonePlan);
        const input: WorkerInput = {
          phones,
          server: { url: server.url, serverId: server.serverId, fingerprint: server.fingerprint },
          directory: join(root, 'phones'),
          records,
          photos,
          photoBytes,
          kdf: options.clientKdf,
          pullers: phones.map((p) => p.index).filter((i) => pullers.has(i)),
          sendTogether,
        };
        const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: input });
        let sent!: () => void;
        const allSent = new Promise<void>((resolve) => (sent = resolve));
        let registered!: () => void;
        const allRegistered = new Promise<void>((resolve) => (registered = resolve));
        const finished = new Promise<void>((resolve, reject) => {
          worker.on('message', (m: WorkerMessage) => {
            if (m.type === 'phone') {
              outcomes.push(m.outcome);
              options.onProgress?.(outcomes.length, devices);
            } else if (m.type === 'registered') registered();
            else if (m.type === 'sent') sent();
            else if (m.type === 'pulled') pulls.push(m.outcome);
            else mergeCallLogs(calls, m.calls);
          });
          worker.on('error', reject);
          worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load worker ${w} exited with ${code}`))));
        });
        return { worker, allRegistered, allSent, finished };
      });
      /** Resolves once every thread has reached `step` (or ended). */
      const everyThread = (step: 'allRegistered' | 'allSent'): Promise<unknown> =>
        Promise.race([Promise.all(threads.map((x) => x[step])), Promise.all(threads.map((x) => x.finished))]);
      /** Ends the current phase (a last memory sample, its CPU meter) and tells the workers to start `next`. */
      const enter = (next: 'send' | 'pull'): void => {
        sample();
        meters[phase]?.stop();
        meter(next);
        phase = next;
        for (const x of threads) x.worker.postMessage({ type: next } satisfies MainMessage);
      };
      if (sendTogether) {
        await everyThread('allRegistered');
        registerSeconds = (performance.now() - started) / 1000;
        sendWordAt = Date.now();
        enter('send');
      }
      await everyThread('allSent');
      sendSeconds = (performance.now() - started) / 1000;
      pullStarted = performance.now();
      enter('pull');
      await Promise.all(threads.map((x) => x.finished));
      sample();
    } finally {
      clearInterval(sampler);
      for (const m of Object.values(meters)) m.stop();
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
    const phoneDirectory = (i: number): string => join(root, 'phones', `phone-${i}`);
    const meanDisk = (indexes: readonly number[]): PhoneDisk | null => {
      if (indexes.length === 0) return null;
      const all = indexes.map((i) => phoneDisk(phoneDirectory(i)));
      const mean = (f: (d: PhoneDisk) => number): number => Math.round(all.reduce((n, d) => n + f(d), 0) / all.length);
      return { databaseBytes: mean((d) => d.databaseBytes), photoBytes: mean((d) => d.photoBytes), totalBytes: mean((d) => d.totalBytes) };
    };
    const serverDisk = directoryBreakdown(server.dataDir);
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
    const mbps = (bytes: number, seconds: number): number => (seconds === 0 ? 0 : Math.round((bytes / 1e6 / seconds) * 100) / 100);
    const { loadavg } = await import('node:os');
    return {
      devices,
      users,
      recordsPerDevice: records,
      photosPerDevice: photos,
      photoBytes,
      sendTogether,
      registerSeconds,
      syncsBeforeSendWord: sendTogether ? outcomes.filter((o) => o.syncStartedAt > 0 && o.syncStartedAt < sendWordAt).length : 0,
      sendWindowSeconds: syncWindow(outcomes),
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
      serverRssMiB: {
        start: mib(rssStart),
        peak: mib(rssPeak),
        end: mib(rssEnd),
        peakByPhase: Object.fromEntries(Object.entries(phasePeaks).map(([k, v]) => [k, mib(v)])),
      },
      cpuCores: Object.fromEntries(Object.entries(meters).map(([k, m]) => [k, m.cores()])),
      photoUploadMBps: mbps(sum((o) => o.photosUploaded) * photoBytes, syncWindow(outcomes)),
      photoDownloadMBps: mbps(pulls.reduce((n, p) => n + p.photosDownloaded, 0) * photoBytes, pullSeconds),
      disk: {
        serverBytes: serverDisk.totalBytes,
        serverParts: serverDisk.parts,
        senderPhone: meanDisk(plans.map((p) => p.index).filter((i) => !pullers.has(i))),
        pullerPhone: meanDisk([...pullers]),
      },
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
  const mib = (b: number): string => (b / 1048576).toFixed(1);
  const phone = (d: PhoneDisk | null): string => (d === null ? 'none' : `databases ${mib(d.databaseBytes)} MiB, photos ${mib(d.photoBytes)} MiB`);
  const lines = [
    `fieldvault load: ${r.devices} phones (${r.pullers} pulling), ${r.users} users, ${r.recordsPerDevice} records + ${r.photosPerDevice} photos of ${Math.round(r.photoBytes / 1024)} KiB each, in ${r.wallSeconds.toFixed(1)} s (load average ${r.loadAverage.join(' ')})`,
    '',
    `${'endpoint'.padEnd(34)} ${'calls'.padStart(7)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)} ${'errors'.padStart(7)}`,
    ...r.endpoints.map((e) => `${e.endpoint.padEnd(34)} ${String(e.count).padStart(7)} ${ms(e.p50).padStart(8)} ${ms(e.p95).padStart(8)} ${ms(e.p99).padStart(8)} ${ms(e.max).padStart(8)} ${String(e.errors).padStart(7)}`),
    '',
    `phase 1, all ${r.devices} phones send: ${r.recordsPushed} records pushed and ${r.photosUploaded} photos uploaded in ${r.sendSeconds.toFixed(1)} s with the logins${r.sendTogether ? ` (all logged in and registered after ${r.registerSeconds.toFixed(1)} s, then sent together)` : ''} (${r.pushedPerSecond.toFixed(0)} records/s over the ${r.sendWindowSeconds.toFixed(1)} s the phones sent)`,
    `phase 2, ${r.pullers} phones run a full sync at once: ${r.recordsPulled} records pulled and ${r.photosDownloaded} photos downloaded in ${r.pullSeconds.toFixed(1)} s (${r.pulledPerSecond.toFixed(0)} records/s); pullers missing records: ${r.incompletePullers.length === 0 ? 'none' : r.incompletePullers.map((p) => `#${p.index} ${p.pulled}${p.error === undefined ? '' : ` ${p.error}`}`).join(', ')}`,
    `server RSS (with its store): start ${r.serverRssMiB.start} MiB, peak ${r.serverRssMiB.peak} MiB (${Object.entries(r.serverRssMiB.peakByPhase).map(([k, v]) => `${k} ${v}`).join(', ')}), end ${r.serverRssMiB.end} MiB`,
    `CPU, cores busy on average: ${Object.entries(r.cpuCores).map(([p, c]) => `${p} ${Object.entries(c).map(([k, v]) => `${k} ${v}`).join(' ')}`).join('; ')}`,
    `photo payload: ${r.photoUploadMBps} MB/s up (phase 1), ${r.photoDownloadMBps} MB/s down (phase 2)`,
    `disk: server data ${mib(r.disk.serverBytes)} MiB (${Object.entries(r.disk.serverParts).filter(([, b]) => b >= 1024).map(([k, b]) => `${k} ${mib(b)}`).join(', ')}); phone that sent: ${phone(r.disk.senderPhone)}; phone that pulled everything: ${phone(r.disk.pullerPhone)}`,
    `errors seen by phones (retried or reported): ${Object.keys(r.errors).length === 0 ? 'none' : Object.entries(r.errors).map(([k, v]) => `${k} ×${v}`).join(', ')}`,
    `phones that failed: ${r.phoneFailures.length === 0 ? 'none' : r.phoneFailures.map((f) => `${f.imei} ${f.error}`).join(', ')}`,
    `invariant (server holds exactly the acknowledged records): ${r.holding.ok ? 'holds' : 'BROKEN'} — ${r.holding.acknowledged} acknowledged, ${r.serverRecords} on the server, missing ${r.holding.missing.length}, unexpected ${r.holding.unexpected.length}, duplicates ${r.holding.duplicates.length}, photos missing ${r.holding.missingPhotos.length}`,
  ];
  return lines.join('\n');
}
