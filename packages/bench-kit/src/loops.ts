import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a load loop measured. Latencies are of successful operations only, in ms. */
export interface LoopResult {
  /** Operations that resolved. */
  readonly completed: number;
  /**
   * Operations that resolved within the planned duration. `completedInTime / durationMs` is the
   * throughput of a closed loop without the drain at its end (operations still running then).
   */
  readonly completedInTime: number;
  /** The planned duration. */
  readonly durationMs: number;
  /** Operations that threw; their latencies are not in `latenciesMs`. */
  readonly errors: number;
  /** Up to five distinct error messages, to say what went wrong without flooding the output. */
  readonly errorSamples: readonly string[];
  /** From the first start to the last completion. */
  readonly elapsedMs: number;
  readonly latenciesMs: readonly number[];
}

class Recorder {
  completed = 0;
  completedInTime = 0;
  errors = 0;
  readonly errorSamples: string[] = [];
  readonly latenciesMs: number[] = [];

  constructor(
    private readonly deadline: number,
    private readonly durationMs: number,
  ) {}

  async time(op: () => Promise<unknown>): Promise<void> {
    const t0 = performance.now();
    try {
      await op();
      const t1 = performance.now();
      this.latenciesMs.push(t1 - t0);
      this.completed += 1;
      if (t1 <= this.deadline) this.completedInTime += 1;
    } catch (err) {
      this.errors += 1;
      const message = err instanceof Error ? err.message : String(err);
      if (this.errorSamples.length < 5 && !this.errorSamples.includes(message)) this.errorSamples.push(message);
    }
  }

  result(elapsedMs: number): LoopResult {
    return {
      completed: this.completed,
      completedInTime: this.completedInTime,
      durationMs: this.durationMs,
      errors: this.errors,
      errorSamples: this.errorSamples,
      elapsedMs,
      latenciesMs: this.latenciesMs,
    };
  }
}

export interface ClosedLoopOptions {
  /** Workers running at once; each starts its next operation when the previous one ends. */
  readonly concurrency: number;
  /** No operation starts after this; running ones finish. */
  readonly durationMs: number;
  /** Upper bound on operations started, over all workers (a second bound besides time). */
  readonly maxOperations: number;
  /** One operation of worker `worker` (0-based); a throw counts as an error. */
  readonly op: (worker: number) => Promise<unknown>;
}

/**
 * Closed-loop load: `concurrency` workers, each issuing operations back to back, until the
 * duration or the operation budget is used up. See {@link throughputPerSecond}.
 */
export async function runClosedLoop(options: ClosedLoopOptions): Promise<LoopResult> {
  const start = performance.now();
  const deadline = start + options.durationMs;
  const rec = new Recorder(deadline, options.durationMs);
  let started = 0;
  const worker = async (w: number): Promise<void> => {
    while (performance.now() < deadline && started < options.maxOperations) {
      started += 1;
      await rec.time(() => options.op(w));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
  return rec.result(performance.now() - start);
}

export interface OpenLoopOptions {
  /** One operation starts every `intervalMs`, whether or not earlier ones have finished. */
  readonly intervalMs: number;
  readonly durationMs: number;
  /** Operations allowed in flight; a tick that finds this many is skipped and counted as an error. */
  readonly maxInFlight: number;
  readonly op: () => Promise<unknown>;
}

/**
 * Open-loop load at a fixed rate, for latency: a slow server does not slow the arrivals down, so
 * its queueing shows up in the latencies instead of being hidden (no coordinated omission).
 */
export async function runOpenLoop(options: OpenLoopOptions): Promise<LoopResult> {
  const start = performance.now();
  const rec = new Recorder(start + options.durationMs, options.durationMs);
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; start + i * options.intervalMs < start + options.durationMs; i += 1) {
    const wait = start + i * options.intervalMs - performance.now();
    if (wait > 0) await sleep(wait);
    if (inFlight.size >= options.maxInFlight) {
      rec.errors += 1;
      if (!rec.errorSamples.includes('skipped: too many requests in flight')) rec.errorSamples.push('skipped: too many requests in flight');
      continue;
    }
    const p: Promise<void> = rec.time(options.op).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return rec.result(performance.now() - start);
}

/** Operations per second of a closed loop, counting those that finished within its duration. */
export function throughputPerSecond(r: Pick<LoopResult, 'completedInTime' | 'durationMs'>): number {
  return r.completedInTime / (r.durationMs / 1000);
}
