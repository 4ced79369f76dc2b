import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** A seeded source of choices: the same seed gives the same sequence, on every machine. */
export interface Random {
  /** An integer in [from, to], both included. */
  int(from: number, to: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** True with probability `p` (0…1). */
  chance(p: number): boolean;
  /** An element chosen by weight (weights > 0). */
  weighted<T>(items: ReadonlyArray<readonly [T, number]>): T;
}

export function createRandom(seed: number): Random {
  const rng = xoroshiro128plus(seed);
  const int = (from: number, to: number): number => uniformInt(rng, from, to);
  return {
    int,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[int(0, items.length - 1)] as T;
    },
    chance: (p) => int(0, 999_999) < p * 1_000_000,
    weighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
      const total = items.reduce((n, [, w]) => n + w, 0);
      let x = int(1, total);
      for (const [item, w] of items) {
        x -= w;
        if (x <= 0) return item;
      }
      throw new Error('weighted pick from an empty list');
    },
  };
}
