import type { PouchDatabase } from 'pouchdb';

/*
 * `pending` in the stand-in's `_changes` answers. CouchDB 3 tells a paged `_changes` reader how
 * many changes follow the page (`pending`), which a client needs for a progress bar that knows
 * its end; PouchDB does not. Counting the rows that follow would cost a scan of the rest of the
 * feed for every page, so the stand-in estimates: the database's update sequence minus the page's
 * last sequence. That counts every update after the page, not every document (a document updated
 * twice counts twice, where CouchDB counts it once), so it is an upper bound, exact when each
 * document changed once. Both numbers are in memory: the estimate costs no read.
 *
 * Only `_changes` requests that came over HTTP with a `limit` and not as a live feed get it (they
 * carry express-pouchdb's `query_params`); PouchDB's own internal feeds (views, replication
 * helpers) are left as they are.
 */

type Then = (onFulfilled?: (value: unknown) => unknown, onRejected?: (reason: unknown) => unknown) => Promise<unknown>;

function isPagedHttpRead(opts: unknown): boolean {
  if (typeof opts !== 'object' || opts === null) return false;
  const o = opts as Record<string, unknown>;
  return o['query_params'] !== undefined && o['limit'] !== undefined && o['live'] !== true && o['continuous'] !== true;
}

async function withPending(db: PouchDatabase, result: unknown): Promise<unknown> {
  if (typeof result !== 'object' || result === null) return result;
  const lastSeq = (result as { last_seq?: unknown }).last_seq;
  if (typeof lastSeq !== 'number') return result;
  const info = (await db.info()) as { update_seq?: unknown };
  if (typeof info.update_seq !== 'number') return result;
  return { ...result, pending: Math.max(0, info.update_seq - lastSeq) };
}

/** Makes the database's paged HTTP `_changes` answers carry the `pending` estimate (see above). */
export function installPendingEstimate(db: PouchDatabase): void {
  const changes = db.changes.bind(db) as (...args: unknown[]) => unknown;
  db.changes = ((...args: unknown[]): unknown => {
    const feed = changes(...args);
    if (!isPagedHttpRead(args[0]) || typeof feed !== 'object' || feed === null) return feed;
    const original = (feed as { then?: unknown }).then;
    if (typeof original !== 'function') return feed;
    const then = (original as Then).bind(feed);
    // The estimate is added where the route reads the answer; an error stays the feed's own.
    (feed as { then: Then }).then = (onFulfilled, onRejected) => then((result) => withPending(db, result)).then(onFulfilled, onRejected);
    return feed;
  }) as typeof db.changes;
}
