// The sync protocol without the SDK: the same HTTPS requests a phone sends (`POST /v1/sync/push`,
// `GET /v1/sync/pull`) from a keep-alive undici client, with bodies prepared beforehand. What our
// server costs on its own; the SDK's share is the difference to the phone's timings.
import { performance } from 'node:perf_hooks';
import type { ChildRecord, PullResponse, PushResponse } from '@fieldvault/protocol';
import type { BenchServer } from './server-process.js';

/**
 * Push bodies of `batch` records each, serialised once (the JSON work a phone does is not the
 * server's). Every record is new to the server, so each body carries the `unacknowledged` hint
 * for all its records, as the SDK's first push of them does.
 */
export function pushBodies(records: readonly ChildRecord[], batch: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < records.length; i += batch) {
    const slice = records.slice(i, i + batch);
    out.push(JSON.stringify({ records: slice, unacknowledged: slice.map((_, j) => j) }));
  }
  return out;
}

/** Sends the bodies one after the other; every record must come back ok. */
export async function rawPush(server: BenchServer, token: string, bodies: readonly string[], expected: number): Promise<number> {
  let ok = 0;
  const t0 = performance.now();
  for (const body of bodies) {
    const res = await server.call<PushResponse>(200, 'POST', '/v1/sync/push', body, token);
    ok += res.results.filter((r) => r.status === 'ok' && r.changed === true).length;
  }
  const ms = performance.now() - t0;
  if (ok !== expected) throw new Error(`raw push: ${ok} of ${expected} records stored`);
  return ms;
}

/** Pulls from the start, `limit` per page, until the server says there is no more. */
export async function rawPull(server: BenchServer, token: string, limit: number, expected: number): Promise<number> {
  let since: string | undefined;
  let received = 0;
  const t0 = performance.now();
  for (;;) {
    const qs = new URLSearchParams({ limit: String(limit), ...(since === undefined ? {} : { since }) });
    const page = await server.call<PullResponse>(200, 'GET', `/v1/sync/pull?${qs.toString()}`, undefined, token);
    received += page.records.length;
    since = page.checkpoint;
    if (!page.more) break;
  }
  const ms = performance.now() - t0;
  if (received !== expected) throw new Error(`raw pull: ${received} records, expected ${expected}`);
  return ms;
}
