import type { Context } from '../context.js';
import { CliError } from '../errors.js';

/** `--limit` as an integer in 1..500. */
export function pageSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new CliError('ADMIN_USAGE', '--limit must be an integer in 1..500');
  return n;
}

/**
 * One page of a list route, or (all) every page, following `nextCursor`; a progress bar counts
 * the items on a terminal. Returns `{ [key]: items, nextCursor }` as the route does.
 */
export async function fetchAll<T, K extends string>(
  ctx: Context,
  path: string,
  key: K,
  query: Readonly<Record<string, string | undefined>>,
  limit: string,
  all: boolean,
): Promise<{ [P in K]: T[] } & { nextCursor: string | null }> {
  const size = pageSize(limit);
  const items: T[] = [];
  let cursor: string | undefined;
  const progress = all ? ctx.progress() : undefined;
  try {
    for (;;) {
      const qs = new URLSearchParams({ limit: String(size) });
      for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, v);
      if (cursor !== undefined) qs.set('cursor', cursor);
      const page = await ctx.api<Record<string, unknown>>({ method: 'GET', path: `${path}?${qs.toString()}` });
      const got = (page[key] ?? []) as T[];
      items.push(...got);
      const next = page['nextCursor'];
      cursor = typeof next === 'string' ? next : undefined;
      progress?.update({ label: key, done: items.length, total: items.length + (cursor === undefined ? 0 : size) });
      if (!all || cursor === undefined) return { [key]: items, nextCursor: cursor ?? null } as { [P in K]: T[] } & { nextCursor: string | null };
    }
  } finally {
    progress?.stop();
  }
}
