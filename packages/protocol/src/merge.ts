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

/** True when two field values have the same JSON; false may also mean "not cheaply known" (NaN, objects). */
function sameJsonValue(a: FieldValue, b: FieldValue): boolean {
  if (a === b) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * True when two versions are certainly the same write (equal {@link versionJson}), checked without
 * serialising; false can still be the same write in odd cases (a NaN value), which the JSON
 * comparison then settles.
 */
function sameWrite(a: FieldVersion, b: FieldVersion): boolean {
  return (
    a.ts === b.ts &&
    a.field === b.field &&
    a.by === b.by &&
    a.device === b.device &&
    (a.base ?? null) === (b.base ?? null) &&
    sameJsonValue(a.value, b.value)
  );
}

/**
 * Identity of a (canonical) version and the last tie-break of the version order: two versions
 * are the same write iff these are equal. Serialising is what made normalising a record slow, so
 * it is computed lazily, only for two versions with one `ts` and `field` that are not
 * {@link sameWrite} — a bug or a forgery, never a normal record.
 */
function versionJson(k: Keyed): string {
  if (k.json === undefined) {
    const v = k.v;
    k.json = JSON.stringify([v.field, v.ts, v.value, v.by, v.device, v.base ?? null]);
  }
  return k.json;
}

interface Keyed {
  readonly v: FieldVersion;
  /** {@link versionJson} of `v`, once computed. */
  json?: string;
}

/**
 * The total order on versions: by `ts`, then `field`, then the version's canonical JSON. Two
 * different versions of one field share a `ts` only through a bug or forgery; the last tie-break
 * still picks the same winner everywhere. Zero exactly for the same write, so it also deduplicates.
 */
function compareKeyed(x: Keyed, y: Keyed): number {
  // sameWrite implies equal JSON, so answering 0 early is the JSON comparison's own answer.
  return cmp(x.v.ts, y.v.ts) || cmp(x.v.field, y.v.field) || (sameWrite(x.v, y.v) ? 0 : cmp(versionJson(x), versionJson(y)));
}

/** Orders two versions by the merge order (positive when `a` wins). */
export function compareVersions(a: FieldVersion, b: FieldVersion): number {
  return compareKeyed({ v: canonicalVersion(a) }, { v: canonicalVersion(b) });
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
 * True when each version was written on top of the one before it (strictly newer, `base` = its
 * `ts`): the usual edits of one field. Then every version is on the winner's base chain and the
 * field has no conflict, which this settles without walking the chain.
 */
function isLinear(versions: readonly FieldVersion[]): boolean {
  for (let i = 1; i < versions.length; i++) {
    const prev = versions[i - 1] as FieldVersion;
    const v = versions[i] as FieldVersion;
    if (!(prev.ts < v.ts) || v.base !== prev.ts) return false;
  }
  return true;
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
  if (winner === undefined || versions.length < 2 || isLinear(versions)) return [];
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

/** A fresh photo ref with a fixed key order (canonical JSON): what {@link mergePhoto} makes of a ref alone. */
function canonicalPhoto(p: PhotoRef): PhotoRef {
  const out: PhotoRef = { sha256: p.sha256, size: p.size, type: p.type, addedAt: p.addedAt, by: p.by };
  if (p.removedAt !== undefined) {
    out.removedAt = p.removedAt;
    if (p.removedBy !== undefined) out.removedBy = p.removedBy;
  }
  return out;
}

/** The creation triple and id of a record, copied as they are. */
type RecordHeader = Pick<RecordParts, 'id' | 'createdBy' | 'createdAt' | 'device'>;

/**
 * The canonical record from its header, its history already canonical (fresh canonical versions,
 * deduplicated, in merge order), its photos and its resolutions: everything else is derived here,
 * in one place for the full rebuild and the fast path alike.
 */
function assembleRecord(
  header: RecordHeader,
  history: FieldVersion[],
  photoEntries: Iterable<readonly [string, PhotoRef]>,
  resolvedEntries: Iterable<ResolvedEntry>,
): ChildRecord {
  const perField = new Map<string, FieldVersion[]>();
  for (const v of history) {
    const list = perField.get(v.field);
    if (list === undefined) perField.set(v.field, [v]);
    else list.push(v);
  }
  const fieldNames = [...perField.keys()].sort(cmp);
  const uniqueResolved = new Map<string, ResolvedEntry>();
  for (const raw of resolvedEntries) {
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
  for (const [id, ref] of photoEntries) {
    const prev = photoMap.get(id);
    // A ref alone joins to its canonical copy (mergePhoto(ref, ref)), without building its keys.
    photoMap.set(id, prev === undefined ? canonicalPhoto(ref) : mergePhoto(prev, ref));
  }
  const photos: Record<string, PhotoRef> = {};
  for (const id of [...photoMap.keys()].sort(cmp)) photos[id] = photoMap.get(id) as PhotoRef;

  return {
    id: header.id,
    type: 'child',
    createdBy: header.createdBy,
    createdAt: header.createdAt,
    device: header.device,
    fields,
    history,
    photos,
    conflicts: [...conflicts.values()].sort(
      (x, y) => cmp(x.field, y.field) || cmp(x.winner, y.winner) || cmp(x.loser, y.loser),
    ),
    resolved,
  };
}

/**
 * Builds the canonical record from its sets: deduplicated, sorted history; `fields` = the newest
 * version of each field; `conflicts` derived from the history and `resolved` (see
 * `fieldConflicts`); photos and `resolved` deduplicated and sorted. A pure function of the sets, which is what
 * makes merge commutative, associative and idempotent.
 */
export function buildRecord(parts: RecordParts): ChildRecord {
  const keyed: Keyed[] = [];
  for (const raw of parts.versions) keyed.push({ v: canonicalVersion(raw) });
  // The sort is stable and compares the same write as equal, so each write's copies end up
  // adjacent in input order: keeping the first of each run keeps its first occurrence.
  keyed.sort(compareKeyed);
  const history: FieldVersion[] = [];
  let prev: Keyed | undefined;
  for (const k of keyed) {
    if (prev === undefined || compareKeyed(prev, k) !== 0) history.push(k.v);
    prev = k;
  }
  return assembleRecord(parts, history, parts.photos, parts.resolved);
}

/**
 * Everything a record holds, as the sets merge works on. `buildRecord(recordParts(r))` is the
 * full rebuild {@link normalizeRecord} short-cuts (tests compare the two).
 */
export function recordParts(r: ChildRecord): RecordParts {
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
 * Fresh canonical copies of the record's history when it is already what the full rebuild would
 * make of the record's versions, else undefined. That holds when the history is strictly
 * increasing by (`ts`, `field`) — then it has no duplicates and no two versions reach the JSON
 * tie-break, so sorting would keep its order — and every `fields` entry is the same write as the
 * newest version of its field in the history, so the union merge takes adds nothing to it.
 * `fields` and `conflicts` need no check: the rebuild derives them from the history alone.
 * Exported for tests (not from the package): they check that canonical records take this path.
 */
export function canonicalHistory(record: ChildRecord): FieldVersion[] | undefined {
  const history: FieldVersion[] = [];
  const newest = new Map<string, FieldVersion>();
  let prev: FieldVersion | undefined;
  for (const v of record.history) {
    if (prev !== undefined && !(prev.ts < v.ts || (prev.ts === v.ts && prev.field < v.field))) return undefined;
    prev = v;
    newest.set(v.field, v);
    history.push(canonicalVersion(v));
  }
  for (const v of Object.values(record.fields)) {
    const h = newest.get(v.field);
    if (h === undefined || !sameWrite(h, v)) return undefined;
  }
  return history;
}

/**
 * The canonical form of a record (what {@link mergeRecords} would return for it alone): history
 * deduplicated and sorted, current values and conflicts recomputed from it. Always a fresh
 * object sharing nothing with `record`.
 *
 * Records are almost always canonical already (every one a server or phone stored was built
 * here), so a history found in order is copied as it is instead of deduplicated and sorted; the
 * result is the same, to the JSON key order, as the full rebuild's.
 */
export function normalizeRecord(record: ChildRecord): ChildRecord {
  const history = canonicalHistory(record);
  if (history === undefined) return buildRecord(recordParts(record));
  return assembleRecord(record, history, Object.entries(record.photos), record.resolved);
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
  const pa = recordParts(a);
  const pb = recordParts(b);
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
