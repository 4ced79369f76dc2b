// The baselines, each on the same store kind (a fresh embedded store per round) and the same
// documents as our path: PouchDB replication (local LevelDB PouchDB ⇄ store), raw `_bulk_docs`
// and raw `_changes` reads through nano, and a plain file copy for photos.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import nano from 'nano';
import PouchDB, { type PouchDatabase } from 'pouchdb';
import type { ChildRecord } from '@fieldvault/protocol';

/** A record as the server stores it (couch/couch-repository.ts): the record inside its envelope. */
export function storedDoc(record: ChildRecord): Record<string, unknown> {
  return {
    _id: `rec:${record.id}`,
    type: 'record',
    record,
    pushedBy: record.createdBy,
    pushedFrom: record.device,
    receivedAt: Date.now(),
    firstPushedBy: record.createdBy,
    firstReceivedAt: Date.now(),
  };
}

/** A local PouchDB (LevelDB files under `dir`) holding `docs`, the source of the push replication. */
export async function localPouchWith(dir: string, docs: readonly object[], batch: number): Promise<PouchDatabase> {
  const db = new PouchDB(dir);
  for (let i = 0; i < docs.length; i += batch) {
    const res = await db.bulkDocs(docs.slice(i, i + batch));
    if (res.some((r) => r.error !== undefined)) throw new Error('loading the local PouchDB failed');
  }
  return db;
}

function checkReplication(what: string, r: { ok: boolean; docs_written: number; doc_write_failures: number }, expected: number): void {
  if (!r.ok || r.docs_written !== expected || r.doc_write_failures !== 0) {
    throw new Error(`${what}: wrote ${r.docs_written} of ${expected} documents (${r.doc_write_failures} failures)`);
  }
}

/** Local PouchDB → `<store>/<dbName>` (a new database), `batch` documents per batch. */
export async function pouchPush(local: PouchDatabase, storeUrl: string, dbName: string, expected: number, batch: number): Promise<number> {
  await nano(storeUrl).db.create(dbName);
  const t0 = performance.now();
  const r = await local.replicate.to(`${storeUrl}/${dbName}`, { batch_size: batch });
  const ms = performance.now() - t0;
  checkReplication('PouchDB push replication', r, expected);
  return ms;
}

/** `<store>/<dbName>` → a new local PouchDB under `dir`. */
export async function pouchPull(dir: string, storeUrl: string, dbName: string, expected: number, batch: number): Promise<number> {
  const local = new PouchDB(dir);
  try {
    const t0 = performance.now();
    const r = await local.replicate.from(`${storeUrl}/${dbName}`, { batch_size: batch });
    const ms = performance.now() - t0;
    checkReplication('PouchDB pull replication', r, expected);
    const info = await local.info();
    if (info.doc_count !== expected) throw new Error(`PouchDB pull replication: ${info.doc_count} documents locally, expected ${expected}`);
    return ms;
  } finally {
    await local.close();
  }
}

/** Raw `_bulk_docs` of `docs` into `<store>/<dbName>` (a new database), `batch` per request, one at a time. */
export async function bulkDocs(storeUrl: string, dbName: string, docs: readonly object[], batch: number): Promise<number> {
  const server = nano(storeUrl);
  await server.db.create(dbName);
  const db = server.use(dbName);
  const t0 = performance.now();
  for (let i = 0; i < docs.length; i += batch) {
    const res = await db.bulk({ docs: docs.slice(i, i + batch) as nano.MaybeDocument[] });
    if (res.some((r) => r.error !== undefined)) throw new Error('_bulk_docs: a document was refused');
  }
  return performance.now() - t0;
}

/**
 * Raw read of every document of `<store>/<dbName>` through `_changes?include_docs=true`, `batch`
 * per page — the store-side work of one pull page of our server, without the server.
 */
export async function changesRead(storeUrl: string, dbName: string, expected: number, batch: number): Promise<number> {
  const db = nano(storeUrl).use(dbName);
  let since: string | undefined;
  let read = 0;
  const t0 = performance.now();
  for (;;) {
    const res = await db.changes({ include_docs: true, limit: batch, ...(since === undefined ? {} : { since }) });
    const rows = res.results as Array<nano.DatabaseChangesResultItem & { doc?: object | null }>;
    read += rows.filter((r) => r.doc !== undefined && r.doc !== null).length;
    since = res.last_seq as string;
    if (res.results.length < batch) break;
  }
  const ms = performance.now() - t0;
  if (read !== expected) throw new Error(`_changes read ${read} documents, expected ${expected}`);
  return ms;
}

/** Copies every file of `files` into `toDir` (fs.copyFile: the kernel's copy, through the page cache). */
export async function copyFiles(files: readonly string[], toDir: string): Promise<number> {
  await mkdir(toDir, { recursive: true });
  const t0 = performance.now();
  for (const [i, f] of files.entries()) await copyFile(f, join(toDir, `copy-${i}`));
  return performance.now() - t0;
}
