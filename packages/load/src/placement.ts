// Which phones run phase 2 (the pullers) and which worker thread hosts each phone.

export interface Placement {
  /** Indexes of the phones that run the full sync of phase 2, spread over the phones (and so over the users). */
  readonly pullers: ReadonlySet<number>;
  /** Phone indexes per worker thread; no thread is left without phones. */
  readonly threads: ReadonlyArray<readonly number[]>;
}

/**
 * Pullers are dealt to the threads first, then the other phones, round-robin: dealt by index
 * alone, 5 pullers of 20 phones (0, 4, 8…) would all land on one thread of two, and phase 2 would
 * measure that one thread. Each thread gets the same number of phones, give or take one.
 */
export function placePhones(devices: number, pullerCount: number, workers: number): Placement {
  const pullerList = Array.from({ length: pullerCount }, (_, i) => Math.floor((i * devices) / pullerCount));
  const pullers = new Set(pullerList);
  const order = [...pullerList, ...Array.from({ length: devices }, (_, i) => i).filter((i) => !pullers.has(i))];
  const threads = Array.from({ length: workers }, (_, w) => order.filter((_, position) => position % workers === w).sort((a, b) => a - b));
  return { pullers, threads: threads.filter((t) => t.length > 0) };
}
