import { FieldvaultError } from './errors.js';
import type { ChildRecord, Conflict, FieldValue, FieldVersion, PhotoRef, Resolution, ResolvedEntry } from './record.js';

/*
 * The record is a state-based CRDT: a grow-only set of field versions (the history), a map of
 * photo refs merged per id by a semilattice, a grow-only set of resolutions (each with its author;
 * two supervisors resolving one conflict are two entries, and either resolves it), and the
 * creation triple merged by min. Everything else (`fields`, `conflicts`, the canonical order) is a
 * pure function of those sets, recomputed on every merge. Merge is therefore set union followed by
 * the same derivation, which makes it commutative, associative and idempotent by construction.
 * Stored `conflicts` are never read back: they are derived data.
 */

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The conflict's stable id, as a resolution names it: `field:winnerTs:loserTs`. */
export function conflictId(conflict: Conflict): string {
  return `${conflict.field}:${conflict.winner}:${conflict.loser}`;
}

/** The conflict id an entry of `resolved` resolves (a bare id is one written before resolutions had authors). */
export function resolvedConflictId(entry: ResolvedEntry): string {
  return typeof entry === 'string' ? entry : entry.conflict;
}

/** A fresh entry with a fixed key order (canonical JSON). */
function canonicalResolution(entry: ResolvedEntry): ResolvedEntry {
  if (typeof entry === 'string') return entry;
  const out: Resolution = { conflict: entry.conflict, ts: entry.ts, by: entry.by, device: entry.device };
  return out;
}

/**
 * Identity of an entry of `resolved`, also its sort key (the conflict id first, so the entries of
 * one conflict sit together). Two entries are the same resolution iff their keys are equal.
 */
export function resolutionKey(entry: ResolvedEntry): string {
  return typeof entry === 'string' ? JSON.stringify([entry]) : JSON.stringify([entry.conflict, entry.ts, entry.by, entry.device]);
}

function copyValue(value: FieldValue): FieldValue {
  if (Array.isArray(value)) return [...value];
  // -0 and 0 are the same value on the wire (JSON); keep one so equality is exact.
  if (typeof value === 'number' && Object.is(value, -0)) return 0;
  return value;
}

/** A fresh version with a fixed key order (canonical JSON) and no shared arrays. */
function canonicalVersion(v: FieldVersion): FieldVersion {
  const out: FieldVersion = { field: v.field, value: copyValue(v.value), ts: v.ts, by: v.by, device: v.device };
  if (v.base !== undefined) out.base = v.base;
  return out;
}

/** Identity of a version: two versions are the same write iff these keys are equal. */
function versionKey(v: FieldVersion): string {
  return JSON.stringify([v.field, v.ts, v.value, v.by, v.device, v.base ?? null]);
}

interface Keyed {
  readonly v: FieldVersion;
  readonly key: string;
}

/**
 * The total order on versions: by `ts`, then `field`, then the version's canonical JSON. Two
 * different versions of one field share a `ts` only through a bug or forgery; the last tie-break
 * still picks the same winner everywhere.
 */
function compareKeyed(x: Keyed, y: Keyed): number {
  return cmp(x.v.ts, y.v.ts) || cmp(x.v.field, y.v.field) || cmp(x.key, y.key);
}

/** Orders two versions by the merge order (positive when `a` wins). */
export function compareVersions(a: FieldVersion, b: FieldVersion): number {
  const x = canonicalVersion(a);
  const y = canonicalVersion(b);
  return compareKeyed({ v: x, key: versionKey(x) }, { v: y, key: versionKey(y) });
}

function photoBaseKey(p: PhotoRef): string {
  return JSON.stringify([p.addedAt, p.sha256, p.size, p.type, p.by]);
}

function removalKey(p: PhotoRef): string | undefined {
  return p.removedAt === undefined ? undefined : JSON.stringify([p.removedAt, p.removedBy ?? '']);
}

/**
 * Joins two refs of one photo id. The added part is picked by min (they are identical unless
 * forged), the tombstone by max, so a removal is never undone and the ref itself is never lost.
 */
function mergePhoto(p: PhotoRef, q: PhotoRef): PhotoRef {
  const base = cmp(photoBaseKey(p), photoBaseKey(q)) <= 0 ? p : q;
  const rp = removalKey(p);
  const rq = removalKey(q);
  const removal = rp === undefined ? q : rq === undefined ? p : cmp(rp, rq) >= 0 ? p : q;
  const out: PhotoRef = { sha256: base.sha256, size: base.size, type: base.type, addedAt: base.addedAt, by: base.by };
  if (removal.removedAt !== undefined) {
    out.removedAt = removal.removedAt;
    if (removal.removedBy !== undefined) out.removedBy = removal.removedBy;
  }
  return out;
}

/** The parts a record is built from; `fields` versions are folded into the history. */
export interface RecordParts {
  readonly id: string;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly device: string;
  readonly versions: Iterable<FieldVersion>;
  readonly photos: Iterable<readonly [string, PhotoRef]>;
  readonly resolved: Iterable<ResolvedEntry>;
}

/** Indexes resolved conflict ids by `field` + loser timestamp → the winner timestamps they were resolved against. */
function indexResolved(resolved: Iterable<string>): Map<string, string[]> {
  const byLoser = new Map<string, string[]>();
  for (const id of resolved) {
    const [field, winner, loser] = id.split(':');
    if (field === undefined || winner === undefined || loser === undefined) continue;
    const key = `${field}\u0000${loser}`;
    const list = byLoser.get(key);
    if (list === undefined) byLoser.set(key, [winner]);
    else list.push(winner);
  }
  return byLoser;
}

/**
 * The conflicts of one field. `versions` are all versions of the field in merge order, so the last
 * is the winner W. A version is superseded, not lost, when it is on W's `base` chain (the editor of
 * W, or of one of its ancestors, saw it). Every other version lost to a concurrent edit; of those,
 * only the newest of each losing branch (a "head": no other loser was written on top of it) is
 * reported, once, as `{ winner, loser: head }`.
 *
 * A conflict a supervisor resolved keeps its identity while the winning branch moves on: if
 * `field:X:head` is in `resolved` for some X on W's chain, the conflict is reported as X vs head
 * (resolved) instead of W vs head (open). A new edit on a losing branch is a new head, so it opens
 * a new conflict.
 */
function fieldConflicts(versions: readonly FieldVersion[], resolvedByLoser: ReadonlyMap<string, readonly string[]>): Conflict[] {
  const winner = versions[versions.length - 1];
  if (winner === undefined || versions.length < 2) return [];
  const byTs = new Map<string, FieldVersion[]>();
  for (const v of versions) {
    const list = byTs.get(v.ts);
    if (list === undefined) byTs.set(v.ts, [v]);
    else list.push(v);
  }
  // Walk W's base chain (breadth first, so `depth` is the distance from W). Following only to
  // strictly older versions keeps the walk finite even on forged data with base cycles.
  const inChain = new Set<FieldVersion>();
  const depthOfTs = new Map<string, number>();
  let level: FieldVersion[] = [winner];
  for (let depth = 0; level.length > 0; depth++) {
    const next: FieldVersion[] = [];
    for (const v of level) {
      if (inChain.has(v)) continue;
      inChain.add(v);
      if (!depthOfTs.has(v.ts)) depthOfTs.set(v.ts, depth);
      if (v.base === undefined) continue;
      for (const p of byTs.get(v.base) ?? []) if (p.ts < v.ts) next.push(p);
    }
    level = next;
  }
  const losers = versions.filter((v) => !inChain.has(v));
  const buriedTs = new Set<string>();
  for (const v of losers) if (v.base !== undefined && v.base < v.ts) buriedTs.add(v.base);
  const out: Conflict[] = [];
  for (const head of losers) {
    if (buriedTs.has(head.ts)) continue;
    let against = winner.ts;
    let best = Number.POSITIVE_INFINITY;
    for (const w of resolvedByLoser.get(`${winner.field}\u0000${head.ts}`) ?? []) {
      const d = depthOfTs.get(w);
      if (d !== undefined && d < best) {
        best = d;
        against = w;
      }
    }
    out.push({ field: winner.field, winner: against, loser: head.ts });
  }
  return out;
}

/**
 * Builds the canonical record from its sets: deduplicated, sorted history; `fields` = the newest
 * version of each field; `conflicts` derived from the history and `resolved` (see
 * `fieldConflicts`); photos and `resolved` deduplicated and sorted. A pure function of the sets, which is what
 * makes merge commutative, associative and idempotent.
 */
export function buildRecord(parts: RecordParts): ChildRecord {
  const unique = new Map<string, Keyed>();
  for (const raw of parts.versions) {
    const v = canonicalVersion(raw);
    const key = versionKey(v);
    if (!unique.has(key)) unique.set(key, { v, key });
  }
  const sorted = [...unique.values()].sort(compareKeyed);

  const perField = new Map<string, FieldVersion[]>();
  for (const { v } of sorted) {
    const list = perField.get(v.field);
    if (list === undefined) perField.set(v.field, [v]);
    else list.push(v);
  }
  const fieldNames = [...perField.keys()].sort(cmp);
  const uniqueResolved = new Map<string, ResolvedEntry>();
  for (const raw of parts.resolved) {
    const entry = canonicalResolution(raw);
    const key = resolutionKey(entry);
    if (!uniqueResolved.has(key)) uniqueResolved.set(key, entry);
  }
  const resolved = [...uniqueResolved.keys()].sort(cmp).map((k) => uniqueResolved.get(k) as ResolvedEntry);
  const resolvedByLoser = indexResolved(new Set(resolved.map(resolvedConflictId)));

  const fields: Record<string, FieldVersion> = {};
  const conflicts = new Map<string, Conflict>();
  for (const name of fieldNames) {
    const versions = perField.get(name) as FieldVersion[];
    fields[name] = versions[versions.length - 1] as FieldVersion;
    for (const c of fieldConflicts(versions, resolvedByLoser)) conflicts.set(conflictId(c), c);
  }

  const photoMap = new Map<string, PhotoRef>();
  for (const [id, ref] of parts.photos) {
    const prev = photoMap.get(id);
    photoMap.set(id, mergePhoto(prev ?? ref, ref));
  }
  const photos: Record<string, PhotoRef> = {};
  for (const id of [...photoMap.keys()].sort(cmp)) photos[id] = photoMap.get(id) as PhotoRef;

  return {
    id: parts.id,
    type: 'child',
    createdBy: parts.createdBy,
    createdAt: parts.createdAt,
    device: parts.device,
    fields,
    history: sorted.map((k) => k.v),
    photos,
    conflicts: [...conflicts.values()].sort(
      (x, y) => cmp(x.field, y.field) || cmp(x.winner, y.winner) || cmp(x.loser, y.loser),
    ),
    resolved,
  };
}

/** Everything a record holds, as the sets merge works on. */
function partsOf(r: ChildRecord): RecordParts {
  return {
    id: r.id,
    createdBy: r.createdBy,
    createdAt: r.createdAt,
    device: r.device,
    versions: [...r.history, ...Object.values(r.fields)],
    photos: Object.entries(r.photos),
    resolved: r.resolved,
  };
}

/**
 * The canonical form of a record (what {@link mergeRecords} would return for it alone): history
 * deduplicated and sorted, current values and conflicts recomputed from it.
 */
export function normalizeRecord(record: ChildRecord): ChildRecord {
  return buildRecord(partsOf(record));
}

/**
 * Merges two replicas of one record (LWW-map CRDT). Per field the version with the greatest
 * `ts` wins; the history is the union of both histories, so no value ever written is lost;
 * concurrent edits of a field are listed in `conflicts` for a supervisor; `resolved` is the union.
 * If the creation fields differ, the ones with the smallest `createdAt` are kept.
 *
 * Commutative, associative and idempotent. Inputs are trusted (validate with `parseRecord` at the
 * boundary); a merged record can exceed the limits both inputs met, so check it with
 * `checkRecordLimits` before storing.
 *
 * @throws RECORD_MERGE_MISMATCH when the records have different ids.
 */
export function mergeRecords(a: ChildRecord, b: ChildRecord): ChildRecord {
  if (a.id !== b.id) {
    throw new FieldvaultError('RECORD_MERGE_MISMATCH', { details: { left: a.id, right: b.id } });
  }
  const first =
    cmp(a.createdAt, b.createdAt) || cmp(a.createdBy, b.createdBy) || cmp(a.device, b.device);
  const creator = first <= 0 ? a : b;
  const pa = partsOf(a);
  const pb = partsOf(b);
  return buildRecord({
    id: a.id,
    createdBy: creator.createdBy,
    createdAt: creator.createdAt,
    device: creator.device,
    versions: [...pa.versions, ...pb.versions],
    photos: [...pa.photos, ...pb.photos],
    resolved: [...pa.resolved, ...pb.resolved],
  });
}
