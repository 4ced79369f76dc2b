/**
 * A target on the ratio `ours / baseline`: at least (`>=`, throughput-like workloads) or at most
 * (`<=`, time- and latency-like workloads) `ratio`.
 */
export interface Goal {
  readonly op: '>=' | '<=';
  readonly ratio: number;
}

/** One line of the bench table, also one element of the JSON results. */
export interface BenchRow {
  readonly workload: string;
  readonly ours: number;
  readonly oursUnit: string;
  readonly baseline: number;
  readonly baselineUnit: string;
  /** Always `ours / baseline`. */
  readonly ratio: number;
  readonly goal: Goal;
  readonly met: boolean;
  /** Package that measured it. */
  readonly source?: string;
  /** Extra measurements kept in the JSON (not in the table): p50/p95, counts, settings. */
  readonly details?: Readonly<Record<string, number | string | boolean>>;
  /** One sentence printed under the table, e.g. why a goal was missed. */
  readonly note?: string;
}

export type BenchRowInput = Omit<BenchRow, 'ratio' | 'met'>;

/** Completes a row: the ratio and whether the goal is met. */
export function benchRow(input: BenchRowInput): BenchRow {
  const ratio = input.baseline === 0 ? Number.NaN : input.ours / input.baseline;
  const met = Number.isFinite(ratio) && (input.goal.op === '>=' ? ratio >= input.goal.ratio : ratio <= input.goal.ratio);
  return { ...input, ratio, met };
}

/** `≥ 0.8×`, `≤ 2×`. */
export function formatGoal(goal: Goal): string {
  return `${goal.op === '>=' ? '≥' : '≤'} ${formatNumber(goal.ratio)}×`;
}

/** Three significant digits, no exponent: 0.0123, 1.23, 12.3, 1234. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 100) return String(Math.round(value));
  return String(Number(value.toPrecision(3)));
}
