// The server under test, in its own process (as in production), so that the load generator's
// work does not share its event loop. Driven by the bench over IPC; also runs the Argon2
// baseline, so the baseline uses this very process's libuv threadpool and argon2 binding.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import argon2 from 'argon2';
import { runClosedLoop } from '@fieldvault/bench-kit';
import { buildApp, resolveConfig, type BuildAppInput } from '@fieldvault/server';

export type ToServer =
  | { type: 'start'; couchUrl: string; setupToken: string; tls: { key: string; cert: string } }
  | { type: 'baseline'; concurrency: number; durationMs: number; maxOperations: number }
  | { type: 'loop-delay-start'; phase: string }
  | { type: 'loop-delay-stop' }
  | { type: 'loop-delay-report' }
  | { type: 'stop' };

export type FromServer =
  | { type: 'ready'; port: number; argon2: { memoryKiB: number; timeCost: number; parallelism: number }; threadpool: string }
  | { type: 'baseline-done'; completed: number; completedInTime: number; durationMs: number; errors: number; latenciesMs: number[] }
  | { type: 'loop-delay'; phases: Record<string, { p50Ms: number; p99Ms: number; maxMs: number }> }
  | { type: 'failed'; message: string };

function send(msg: FromServer): void {
  process.send?.(msg);
}

// Never outlive the bench, whatever happens to it.
process.on('disconnect', () => process.exit(1));

let app: Awaited<ReturnType<typeof buildApp>> | undefined;
let input: BuildAppInput | undefined;
/** Event-loop delay of this server, one histogram per phase kind, pooled over the rounds. */
const loopDelay = new Map<string, IntervalHistogram>();
let measuring: IntervalHistogram | undefined;

async function handle(msg: ToServer): Promise<void> {
  switch (msg.type) {
    case 'start': {
      input = {
        couch: { url: msg.couchUrl, dbPrefix: 'bench_' },
        kek: new Uint8Array(randomBytes(32)),
        serverId: 'bench-a',
        setupToken: msg.setupToken,
        // Production Argon2id parameters: memory, time and parallelism are left at their defaults (64 MiB, t=3, p=1).
        // All bench traffic comes from 127.0.0.1, so the per-IP limits (600/min, 60/min on
        // login routes) would turn the storm into 429s: raise them to their maximum.
        rateLimit: { max: 1_000_000, authMax: 1_000_000 },
        // For the same reason the per-address share of the Argon2 queue (4 by default, security
        // audit M4) is raised to the whole queue; the queue itself keeps its production size.
        argon2: { maxQueuedPerClient: 32 },
        // The bench's admin logs in from a device with its password alone (no TOTP enrolment).
        adminTotp: { required: false },
        sweepIntervalSeconds: 0,
        // Logs are produced at the production level (their cost is part of a request) but dropped.
        logLevel: 'info',
        logStream: { write: () => undefined },
        https: { key: msg.tls.key, cert: msg.tls.cert },
      };
      app = await buildApp(input);
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      send({ type: 'ready', port, argon2: { ...resolveConfig(input).argon2 }, threadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)' });
      return;
    }
    case 'baseline': {
      if (input === undefined) throw new Error('baseline before start');
      // The same parameters and the same call the server's password hasher makes.
      const p = resolveConfig(input).argon2;
      const password = `baseline password ${randomBytes(8).toString('hex')}`;
      const digest = await argon2.hash(password, { type: argon2.argon2id, memoryCost: p.memoryKiB, timeCost: p.timeCost, parallelism: p.parallelism });
      const r = await runClosedLoop({
        concurrency: msg.concurrency,
        durationMs: msg.durationMs,
        maxOperations: msg.maxOperations,
        op: async () => {
          if (!(await argon2.verify(digest, password))) throw new Error('argon2.verify returned false');
        },
      });
      send({ type: 'baseline-done', completed: r.completed, completedInTime: r.completedInTime, durationMs: r.durationMs, errors: r.errors, latenciesMs: [...r.latenciesMs] });
      return;
    }
    case 'loop-delay-start': {
      measuring = loopDelay.get(msg.phase) ?? monitorEventLoopDelay({ resolution: 10 });
      loopDelay.set(msg.phase, measuring);
      measuring.enable();
      return;
    }
    case 'loop-delay-stop': {
      measuring?.disable();
      measuring = undefined;
      return;
    }
    case 'loop-delay-report': {
      const ms = (ns: number): number => ns / 1e6;
      const phases = Object.fromEntries(
        [...loopDelay].map(([phase, h]) => [phase, { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) }]),
      );
      send({ type: 'loop-delay', phases });
      return;
    }
    case 'stop': {
      await app?.close();
      process.exit(0);
    }
  }
}

process.on('message', (msg: ToServer) => {
  handle(msg).catch((err: unknown) => {
    send({ type: 'failed', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  });
});
