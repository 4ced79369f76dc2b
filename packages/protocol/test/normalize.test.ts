// normalizeRecord's fast path (a history already in canonical order is copied, not deduplicated
// and sorted) and the version order without JSON keys must not change a single output byte:
// records are compared as JSON text elsewhere (the client's pull commit compares
// JSON.stringify(merged) with the stored document). Each property compares with the full
// rebuild and with the merge as it was before (fixtures/merge-reference.ts), as JSON text and as
// deep-strict equality (which also tells -0 from 0).
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import {
  compareVersions,
  mergeRecords,
  normalizeRecord,
  parseRecord,
  type ChildRecord,
  type Conflict,
  type FieldValue,
  type FieldVersion,
  type PhotoRef,
  type ResolvedEntry,
} from '../src/index.js';
import { buildRecord, canonicalHistory, recordParts } from '../src/merge.js';
import * as reference from './fixtures/merge-reference.js';
import { RECORD_ID, opsArb, simulate } from './fixtures/replicas.js';

const RUNS = 1_500;

/** JSON-identical and deep-strict-equal; on failure fast-check prints the input. */
function identical(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b) && isDeepStrictEqual(a, b);
}

// Small pools so that ties (one ts, one field), duplicates and prefixes happen often. The strings
// are the ones a JSON-based order is sensitive to: quotes, backslashes, characters that sort
// below '"' (space, '!'), non-ASCII, astral, NUL, and one string a prefix of another.
const ODD = ['a', 'ab', 'a!', 'a b', 'a"b', 'a\\b', 'é', '😀', '\u0000', '', '1', '0'] as const;
const TS = [
  '1700000000000-0000-356938035643809',
  '1700000000000-0001-356938035643809',
  '1700000000000-0000-490154203237518',
  '1700000000001-0000-012345678901237',
  '1700000000002-00ff-356938035643809',
  '1700000000000-0000-a"b',
  '1700000000000-0000-a\\b',
] as const;
const FIELD_NAMES = ['name', 'age', 'notes', '_deleted', 'a"b', 'a\\b'] as const;
const PHOTO_IDS = ['0b9a3c1e-1111-4aaa-8bbb-000000000001', '0b9a3c1e-2222-4aaa-9bbb-000000000002'] as const;

const oddArb = fc.constantFrom(...ODD);
const tsArb = fc.constantFrom(...TS);
const strArb = fc.oneof(oddArb, fc.string({ unit: fc.constantFrom('a', '"', '\\', '!', ' ', 'é', '😀', '\u0000'), maxLength: 4 }));
const valueArb: fc.Arbitrary<FieldValue> = fc.oneof(
  strArb,
  fc.integer({ min: -2, max: 2 }),
  fc.constantFrom(-0, 0.1, -1.5, 1e21, 1e-7, 2 ** 53),
  fc.boolean(),
  fc.constant(null),
  fc.array(strArb, { maxLength: 3 }),
);
const versionArb: fc.Arbitrary<FieldVersion> = fc.record(
  {
    field: fc.constantFrom(...FIELD_NAMES),
    value: valueArb,
    ts: tsArb,
    by: fc.oneof(fc.constantFrom('amina', 'bo'), oddArb),
    device: fc.oneof(fc.constantFrom('356938035643809', '490154203237518'), oddArb),
    base: tsArb,
  },
  { requiredKeys: ['field', 'value', 'ts', 'by', 'device'] },
);
const photoArb: fc.Arbitrary<PhotoRef> = fc.record(
  {
    sha256: fc.constantFrom('a'.repeat(64), 'b'.repeat(64)),
    size: fc.constantFrom(1, 2),
    type: fc.constantFrom('image/jpeg' as const, 'image/png' as const),
    addedAt: tsArb,
    by: fc.constantFrom('amina', 'bo'),
    removedAt: tsArb,
    removedBy: fc.constantFrom('amina', 'bo'),
  },
  { requiredKeys: ['sha256', 'size', 'type', 'addedAt', 'by'] },
);
const conflictIdArb = fc.tuple(fc.constantFrom(...FIELD_NAMES), tsArb, tsArb).map(([f, w, l]) => `${f}:${w}:${l}`);
const resolvedArb: fc.Arbitrary<ResolvedEntry[]> = fc.array(
  fc.oneof(conflictIdArb, fc.record({ conflict: conflictIdArb, ts: tsArb, by: fc.constantFrom('amina', 'bo'), device: fc.constantFrom('356938035643809') })),
  { maxLength: 3 },
);
const conflictArb: fc.Arbitrary<Conflict> = fc.record({ field: fc.constantFrom(...FIELD_NAMES), winner: tsArb, loser: tsArb });

/**
 * Any record the trusted path can be handed: shuffled history with duplicates and ties, `fields`
 * that may be stale, missing, extra or under the wrong key, photos with or without tombstones,
 * garbage `conflicts`, bare and authored resolutions.
 */
const rawRecordArb: fc.Arbitrary<ChildRecord> = fc
  .record({
    history: fc.array(versionArb, { maxLength: 12 }),
    fields: fc.array(fc.tuple(fc.option(fc.constantFrom(...FIELD_NAMES), { nil: undefined }), versionArb), { maxLength: 4 }),
    photos: fc.array(fc.tuple(fc.constantFrom(...PHOTO_IDS), photoArb), { maxLength: 2 }),
    conflicts: fc.array(conflictArb, { maxLength: 2 }),
    resolved: resolvedArb,
  })
  .map(({ history, fields, photos, conflicts, resolved }) => ({
    id: RECORD_ID,
    type: 'child' as const,
    createdBy: 'amina',
    createdAt: TS[0],
    device: '356938035643809',
    fields: Object.fromEntries(fields.map(([key, v]) => [key ?? v.field, v])),
    history,
    photos: Object.fromEntries(photos),
    conflicts,
    resolved,
  }));

/** The same version with its keys in another order (JSON text differs, the write does not). */
function reordered(v: FieldVersion): FieldVersion {
  const tail = { device: v.device, by: v.by, ts: v.ts, value: v.value, field: v.field };
  return v.base === undefined ? tail : { base: v.base, ...tail };
}

type Mutation = (r: ChildRecord, i: number, extra: FieldVersion) => ChildRecord;
/** Ways a canonical record is made slightly non-canonical; `i` picks a position, `extra` a version. */
const MUTATIONS: Record<string, Mutation> = {
  none: (r) => r,
  reverseHistory: (r) => ({ ...r, history: [...r.history].reverse() }),
  swapTwo: (r, i) => {
    const h = [...r.history];
    const j = i % Math.max(h.length - 1, 1);
    if (h.length >= 2) [h[j], h[j + 1]] = [h[j + 1]!, h[j]!];
    return { ...r, history: h };
  },
  duplicateOne: (r, i) => {
    const h = [...r.history];
    if (h.length > 0) h.splice(i % h.length, 0, { ...h[i % h.length]! });
    return { ...r, history: h };
  },
  dropOne: (r, i) => ({ ...r, history: r.history.filter((_, j) => j !== i % Math.max(r.history.length, 1)) }),
  addVersion: (r, _i, extra) => ({ ...r, history: [...r.history, extra] }),
  insertVersion: (r, i, extra) => {
    const h = [...r.history];
    h.splice(i % (h.length + 1), 0, extra);
    return { ...r, history: h };
  },
  tieOnTs: (r, i, extra) => {
    // Another write of one field at the same ts: only the JSON tie-break orders it.
    const v = r.history[i % Math.max(r.history.length, 1)];
    return v === undefined ? r : { ...r, history: [...r.history, { ...v, value: extra.value, by: extra.by }] };
  },
  staleField: (r, _i, extra) => ({ ...r, fields: { ...r.fields, [extra.field]: extra } }),
  changeFieldValue: (r, i) => {
    const names = Object.keys(r.fields);
    const name = names[i % Math.max(names.length, 1)];
    return name === undefined ? r : { ...r, fields: { ...r.fields, [name]: { ...r.fields[name]!, value: 'changed' } } };
  },
  changeFieldListItem: (r, i) => {
    // The same write but for one item of a list: an equal length must not pass for an equal value.
    const name = Object.keys(r.fields)[i % Math.max(Object.keys(r.fields).length, 1)];
    const v = name === undefined ? undefined : r.fields[name];
    if (name === undefined || v === undefined) return r;
    const value = Array.isArray(v.value) && v.value.length > 0 ? [`${v.value[0]}x`, ...v.value.slice(1)] : ['x'];
    const h = r.history.map((x) => (x === v || JSON.stringify(x) === JSON.stringify(v) ? { ...x, value: Array.isArray(v.value) ? v.value : ['y'] } : x));
    return { ...r, history: h, fields: { ...r.fields, [name]: { ...v, value } } };
  },
  tieOnTsListItem: (r, i) => {
    const v = r.history[i % Math.max(r.history.length, 1)];
    if (v === undefined) return r;
    const list = Array.isArray(v.value) && v.value.length > 0 ? v.value : ['a', 'b'];
    return { ...r, history: [...r.history.map((x) => (x === v ? { ...x, value: list } : x)), { ...v, value: [...list.slice(0, -1), `${list.at(-1)}!`] }] };
  },
  dropField: (r, i) => {
    const names = Object.keys(r.fields);
    return { ...r, fields: Object.fromEntries(Object.entries(r.fields).filter(([n]) => n !== names[i % Math.max(names.length, 1)])) };
  },
  fieldUnderWrongKey: (r) => {
    const entries = Object.entries(r.fields);
    const vals = entries.map(([, v]) => v).reverse();
    return { ...r, fields: Object.fromEntries(entries.map(([n], j) => [n, vals[j]!])) };
  },
  keyOrder: (r) => ({
    ...r,
    history: r.history.map(reordered),
    fields: Object.fromEntries(Object.entries(r.fields).reverse().map(([n, v]) => [n, reordered(v)])),
  }),
  minusZero: (r) => {
    const neg = (v: FieldVersion): FieldVersion => (v.value === 0 ? { ...v, value: -0 } : v);
    return { ...r, history: r.history.map(neg), fields: Object.fromEntries(Object.entries(r.fields).map(([n, v]) => [n, neg(v)])) };
  },
  nanValue: (r, i) => {
    // JSON writes NaN as null: the full rebuild treats the two as one write.
    const h = [...r.history];
    const v = h[i % Math.max(h.length, 1)];
    if (v !== undefined) h.push({ ...v, value: Number.NaN });
    return { ...r, history: h };
  },
  garbageConflicts: (r) => ({ ...r, conflicts: [{ field: 'name', winner: TS[1], loser: TS[0] }] }),
  unsortedPhotosAndResolved: (r) => ({
    ...r,
    photos: Object.fromEntries(Object.entries(r.photos).reverse()),
    resolved: [...r.resolved].reverse(),
  }),
};

/** A canonical record (as the reference builds it), sometimes mutated, sometimes JSON round-tripped. */
const nearCanonicalArb: fc.Arbitrary<ChildRecord> = fc
  .tuple(rawRecordArb, fc.constantFrom(...Object.keys(MUTATIONS)), fc.nat(20), versionArb, fc.boolean())
  .map(([raw, mutation, i, extra, roundTrip]) => {
    const canonical = reference.normalizeRecord(raw);
    const r = (MUTATIONS[mutation] as Mutation)(roundTrip ? (JSON.parse(JSON.stringify(canonical)) as ChildRecord) : canonical, i, extra);
    return r;
  });

const anyRecordArb = fc.oneof(rawRecordArb, nearCanonicalArb);

t.test('normalizeRecord equals the full rebuild, to the JSON key order, on any record', async () => {
  fc.assert(
    fc.property(anyRecordArb, (r) => identical(normalizeRecord(r), buildRecord(recordParts(r)))),
    { numRuns: RUNS },
  );
});

t.test('normalizeRecord equals the merge before the fast path on any record', async () => {
  fc.assert(
    fc.property(anyRecordArb, (r) => identical(normalizeRecord(r), reference.normalizeRecord(r))),
    { numRuns: RUNS },
  );
});

t.test('mergeRecords equals the merge before the fast path on any two records', async () => {
  fc.assert(
    fc.property(anyRecordArb, anyRecordArb, (a, b) => identical(mergeRecords(a, b), reference.mergeRecords(a, b))),
    { numRuns: RUNS },
  );
});

t.test('compareVersions orders any two versions as the JSON-keyed order did', async () => {
  type Pair = readonly [FieldVersion, FieldVersion];
  const pairArb: fc.Arbitrary<Pair> = fc.oneof(
    fc.tuple(versionArb, versionArb),
    // Same ts and field, so only the last tie-break decides.
    fc.tuple(versionArb, versionArb).map(([a, b]): Pair => [a, { ...b, ts: a.ts, field: a.field }]),
    // Near-duplicates: one part changed, or the same write with -0 for 0.
    fc.tuple(versionArb, fc.constantFrom('value', 'by', 'device', 'base', 'same', 'minusZero', 'listItem'), valueArb, oddArb).map(([a, part, value, s]): Pair => {
      if (part === 'same') return [a, { ...a }];
      if (part === 'listItem') return [{ ...a, value: ['a', s] }, { ...a, value: ['a', `${s}"`] }];
      if (part === 'minusZero') return [{ ...a, value: 0 }, { ...a, value: -0 }];
      if (part === 'value') return [a, { ...a, value }];
      return [a, { ...a, [part]: s }];
    }),
  );
  fc.assert(
    fc.property(pairArb, ([a, b]) => Math.sign(compareVersions(a, b)) === Math.sign(reference.compareVersions(a, b))),
    { numRuns: RUNS * 2 },
  );
});

t.test('parseRecord returns what the merge before the fast path made of real replicas', async () => {
  fc.assert(
    fc.property(opsArb, fc.nat(1_000), (ops, i) => {
      const { snapshots } = simulate(ops);
      const r = snapshots[i % snapshots.length]!;
      const wire = JSON.parse(JSON.stringify(r)) as unknown;
      const parsed = parseRecord(wire);
      return identical(parsed, reference.normalizeRecord(r)) && JSON.stringify(parsed) === JSON.stringify(r);
    }),
    { numRuns: 300 },
  );
});

t.test('canonical records take the fast path, also after a JSON round trip', async () => {
  fc.assert(
    fc.property(rawRecordArb, fc.boolean(), (raw, roundTrip) => {
      const canonical = reference.normalizeRecord(raw);
      // Two writes of one field at one ts (forged) need the JSON tie-break: the full rebuild's job.
      fc.pre(new Set(canonical.history.map((v) => JSON.stringify([v.ts, v.field]))).size === canonical.history.length);
      const r = roundTrip ? (JSON.parse(JSON.stringify(canonical)) as ChildRecord) : canonical;
      return canonicalHistory(r) !== undefined;
    }),
    { numRuns: RUNS },
  );
});

t.test('every state of real replicas takes the fast path', async () => {
  fc.assert(
    fc.property(opsArb, (ops) => simulate(ops).snapshots.every((r) => canonicalHistory(JSON.parse(JSON.stringify(r)) as ChildRecord) !== undefined)),
    { numRuns: 200 },
  );
});

t.test('a history out of order, with a duplicate or a tie on ts and field, does not take the fast path', async (t) => {
  const v = (ts: string, field: string, value: FieldValue): FieldVersion => ({ field, value, ts, by: 'amina', device: '356938035643809' });
  const base = reference.normalizeRecord({
    id: RECORD_ID,
    type: 'child',
    createdBy: 'amina',
    createdAt: TS[0],
    device: '356938035643809',
    fields: {},
    history: [v(TS[0], 'name', 'Ada'), v(TS[1], 'name', 'Ada K')],
    photos: {},
    conflicts: [],
    resolved: [],
  });
  t.ok(canonicalHistory(base), 'the canonical record does');
  t.equal(canonicalHistory({ ...base, history: [...base.history].reverse() }), undefined, 'out of order');
  t.equal(canonicalHistory({ ...base, history: [...base.history, base.history[1]!] }), undefined, 'duplicate');
  t.equal(canonicalHistory({ ...base, history: [...base.history, v(TS[1], 'name', 'Ada M')] }), undefined, 'tie on ts and field');
  t.equal(canonicalHistory({ ...base, fields: { name: v(TS[1], 'name', 'Ada M') } }), undefined, 'fields not in history');
});

t.test('normalizeRecord shares no object or array with its input', async () => {
  fc.assert(
    fc.property(nearCanonicalArb, (r) => {
      const out = normalizeRecord(r);
      const inputs = new Set<unknown>([r, r.fields, r.history, r.photos, r.conflicts, r.resolved]);
      for (const v of [...r.history, ...Object.values(r.fields)]) inputs.add(v).add(v.value);
      for (const p of Object.values(r.photos)) inputs.add(p);
      for (const e of r.resolved) if (typeof e !== 'string') inputs.add(e);
      const outputs: unknown[] = [out, out.fields, out.history, out.photos, out.conflicts, out.resolved];
      for (const v of out.history) outputs.push(v, v.value);
      outputs.push(...Object.values(out.photos), ...out.resolved.filter((e) => typeof e !== 'string'));
      return outputs.every((o) => typeof o !== 'object' || o === null || !inputs.has(o));
    }),
    { numRuns: 500 },
  );
});
