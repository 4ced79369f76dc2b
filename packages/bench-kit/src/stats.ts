/** Latency summary of one series of samples (milliseconds unless said otherwise). */
export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/**
 * The `p`-th percentile (0 < p ≤ 100) of `samples` by the nearest-rank method: the smallest
 * sample with at least p % of the samples at or below it. It is always a measured value, never
 * an interpolation, so a p99 of 500 samples is the 5th worst one.
 *
 * @throws RangeError for an empty series or p outside (0, 100].
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of an empty series');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1] as number;
}

/**
 * count, min, mean, p50, p95, p99 and max of a series.
 * @throws RangeError for an empty series.
 */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('summary of an empty series');
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.ceil((p / 100) * sorted.length) - 1] as number;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    min: sorted[0] as number,
    mean: sum / sorted.length,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: sorted[sorted.length - 1] as number,
  };
}
