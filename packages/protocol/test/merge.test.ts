import fc from 'fast-check';
import t from 'tap';
import {
  applyEdit,
  conflictId,
  createRecord,
  mergeRecords,
  needsReview,
  normalizeRecord,
  openConflicts,
  parseRecord,
  resolutionKey,
  resolveConflict,
  resolvedConflictId,
  visibleFields,
  type ChildRecord,
} from '../src/index.js';
import { DEVICES, FIELDS, RECORD_ID, USERS, createWorld, edit, opsArb, pick, same, simulate, sync, valueArb } from './fixtures/replicas.js';

const RUNS = 200;
const pickArb = fc.nat(10_000);

t.test('merge is commutative', async () => {
  fc.assert(
    fc.property(opsArb, fc.boolean(), pickArb, pickArb, (ops, shared, i, j) => {
      const { snapshots } = simulate(ops, shared);
      const a = pick(snapshots, i);
      const b = pick(snapshots, j);
      return same(mergeRecords(a, b), mergeRecords(b, a));
    }),
    { numRuns: RUNS },
  );
});

t.test('merge is associative', async () => {
  fc.assert(
    fc.property(opsArb, fc.boolean(), pickArb, pickArb, pickArb, (ops, shared, i, j, k) => {
      const { snapshots } = simulate(ops, shared);
      const [a, b, c] = [pick(snapshots, i), pick(snapshots, j), pick(snapshots, k)];
      return same(mergeRecords(mergeRecords(a, b), c), mergeRecords(a, mergeRecords(b, c)));
    }),
    { numRuns: RUNS },
  );
});

t.test('merge is idempotent', async () => {
  fc.assert(
    fc.property(opsArb, fc.boolean(), pickArb, pickArb, (ops, shared, i, j) => {
      const { snapshots } = simulate(ops, shared);
      const a = pick(snapshots, i);
      const ab = mergeRecords(a, pick(snapshots, j));
      return same(mergeRecords(a, a), a) && same(mergeRecords(ab, a), ab) && same(normalizeRecord(ab), ab);
    }),
    { numRuns: RUNS },
  );
});

t.test('no value ever written disappears from fields and history', async () => {
  fc.assert(
    fc.property(opsArb, (ops) => {
      const world = simulate(ops);
      const all = world.replicas.filter((r): r is ChildRecord => r !== undefined).reduce((x, y) => mergeRecords(x, y));
      const kept = new Set(all.history.map((v) => JSON.stringify(v)));
      const current = Object.values(all.fields).every((v) => kept.has(JSON.stringify(v)));
      return current && world.written.every((v) => kept.has(JSON.stringify(v)));
    }),
    { numRuns: RUNS },
  );
});

t.test('the newest write of each field is the visible value after merging everything', async () => {
  fc.assert(
    fc.property(opsArb, (ops) => {
      const world = simulate(ops);
      const all = world.replicas.filter((r): r is ChildRecord => r !== undefined).reduce((x, y) => mergeRecords(x, y));
      for (const [name, v] of Object.entries(all.fields)) {
        const newest = all.history.filter((h) => h.field === name).at(-1);
        if (newest === undefined || newest.ts !== v.ts) return false;
        if (world.written.some((w) => w.field === name && w.ts > v.ts)) return false;
      }
      return true;
    }),
    { numRuns: RUNS },
  );
});

t.test('replicas that exchanged everything converge, whatever the sync order', async () => {
  fc.assert(
    fc.property(opsArb, fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { maxLength: 12 }), (ops, gossip) => {
      const world = simulate(ops);
      for (const [from, to] of gossip) sync(world, from, to);
      // Finish with a full round so every device has seen every other.
      for (let round = 0; round < 2; round++) for (let from = 0; from < 3; from++) for (let to = 0; to < 3; to++) sync(world, from, to);
      const [r0, r1, r2] = world.replicas;
      return r0 !== undefined && r1 !== undefined && r2 !== undefined && same(r0, r1) && same(r1, r2);
    }),
    { numRuns: RUNS },
  );
});

t.test('a merged record survives the wire: parseRecord of its JSON gives it back', async () => {
  fc.assert(
    fc.property(opsArb, pickArb, pickArb, (ops, i, j) => {
      const { snapshots } = simulate(ops);
      const m = mergeRecords(pick(snapshots, i), pick(snapshots, j));
      return same(parseRecord(JSON.parse(JSON.stringify(m))), m);
    }),
    { numRuns: RUNS },
  );
});

t.test('two devices editing a field without seeing each other are flagged for review', async () => {
  fc.assert(
    fc.property(opsArb, fc.nat(FIELDS.length - 2), fc.constantFrom<[number, number]>([0, 1], [1, 2], [2, 0]), (ops, f, [d0, d1]) => {
      const world = simulate(ops);
      sync(world, 0, d0);
      sync(world, 0, d1);
      const field = FIELDS[f]!;
      // Values the generator never produces, so neither edit is a no-op.
      const a = edit(world, d0, field, `from device ${d0}`)!;
      const b = edit(world, d1, field, `from device ${d1}`)!;
      const m = mergeRecords(a, b);
      const [ta, tb] = [a.fields[field]!.ts, b.fields[field]!.ts];
      const open = openConflicts(m);
      return (
        needsReview(m) &&
        open.some((c) => c.field === field && c.winner === (ta > tb ? ta : tb) && c.loser === (ta > tb ? tb : ta))
      );
    }),
    { numRuns: RUNS },
  );
});

t.test('sequential edits by different devices that synced in between are not flagged', async () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ device: fc.nat(2), field: fc.nat(FIELDS.length - 1), value: fc.string({ maxLength: 4 }), tick: fc.integer({ min: -200, max: 500 }) }), {
        maxLength: 30,
      }),
      (steps) => {
        const world = createWorld();
        let last = 0;
        for (const s of steps) {
          world.time.ms += s.tick;
          sync(world, last, s.device);
          const field = FIELDS[s.field]!;
          edit(world, s.device, field, field === '_deleted' ? s.value.length % 2 === 0 : s.value);
          last = s.device;
        }
        const all = world.replicas.filter((r): r is ChildRecord => r !== undefined).reduce((x, y) => mergeRecords(x, y));
        return all.conflicts.length === 0 && !needsReview(all);
      },
    ),
    { numRuns: RUNS },
  );
});

/** Two replicas edit `name` concurrently (Ada K on 0, Ada M on 1); replica 0 then holds both, in conflict. */
function concurrentNameEdits(): ReturnType<typeof createWorld> {
  const world = createWorld();
  sync(world, 0, 1);
  edit(world, 0, 'name', 'Ada K');
  edit(world, 1, 'name', 'Ada M');
  sync(world, 1, 0);
  return world;
}

t.test('a resolved conflict stays resolved when the winning branch is edited again', async (t) => {
  const world = concurrentNameEdits();
  const merged = world.replicas[0]!;
  const [c] = openConflicts(merged);
  t.ok(c, 'the concurrent edit is flagged');
  const resolved = resolveConflict(merged, conflictId(c!), { by: USERS[2], device: DEVICES[0], ts: world.clocks[0]!.now() });
  t.notOk(needsReview(resolved));
  world.replicas[0] = resolved;
  edit(world, 0, 'name', 'Ada Kamara');
  t.notOk(needsReview(world.replicas[0]!), 'a later edit on top of the winner does not re-open it');
  t.same(resolved.conflicts, world.replicas[0]!.conflicts);
});

t.test('an edit on the losing branch after resolution opens a new conflict', async (t) => {
  const ts = (ms: number, node: string) => `17000000000${String(ms).padStart(2, '0')}-0000-${node}`;
  const [devA, devB] = [DEVICES[0], DEVICES[1]];
  const r0 = createRecord({ id: RECORD_ID, createdBy: USERS[0], device: devA, clockTs: ts(0, devA), fields: { name: 'Ada' } });
  const a1 = applyEdit(r0, { field: 'name', value: 'Ada K', by: USERS[0], device: devA, ts: ts(10, devA) });
  const b1 = applyEdit(r0, { field: 'name', value: 'Ada M', by: USERS[1], device: devB, ts: ts(20, devB) });
  const merged = mergeRecords(a1, b1);
  t.same(openConflicts(merged), [{ field: 'name', winner: ts(20, devB), loser: ts(10, devA) }]);
  const reviewed = resolveConflict(merged, conflictId(openConflicts(merged)[0]!), { by: USERS[2], device: devA, ts: ts(25, devA) });
  t.notOk(needsReview(reviewed));
  // Device A never synced and keeps editing on top of its own (losing) value.
  const a2 = applyEdit(a1, { field: 'name', value: 'Ada Kamara', by: USERS[0], device: devA, ts: ts(30, devA) });
  const m = mergeRecords(reviewed, a2);
  t.equal(visibleFields(m)['name'], 'Ada Kamara');
  t.same(openConflicts(m), [{ field: 'name', winner: ts(30, devA), loser: ts(20, devB) }]);
});

t.test('a concurrent delete and edit are flagged and both survive in history', async (t) => {
  const world = createWorld();
  sync(world, 0, 1);
  const deleted = edit(world, 0, '_deleted', true)!;
  const edited = edit(world, 1, 'name', 'Ada M')!;
  const m = mergeRecords(deleted, edited);
  t.equal(m.fields['_deleted']?.value, true);
  t.equal(m.fields['name']?.value, 'Ada M');
  t.notOk(needsReview(m), 'different fields do not conflict');
  const restored = edit(world, 1, '_deleted', false)!;
  const m2 = mergeRecords(m, restored);
  t.ok(needsReview(m2), 'delete and restore written concurrently conflict');
  t.same(
    m2.history.filter((v) => v.field === '_deleted').map((v) => v.value).sort(),
    [false, true],
  );
});

t.test('merging two different records throws RECORD_MERGE_MISMATCH', async (t) => {
  const { replicas } = createWorld();
  const other = { ...replicas[0]!, id: '9f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b' };
  t.throws(() => mergeRecords(replicas[0]!, other), { code: 'RECORD_MERGE_MISMATCH' });
});

t.test('differing creation data is settled by the smallest createdAt', async (t) => {
  const base = { id: RECORD_ID, fields: { name: 'Ada' } };
  const early = createRecord({ ...base, createdBy: USERS[1], device: DEVICES[1], clockTs: '1700000000000-0000-a' });
  const late = createRecord({ ...base, createdBy: USERS[0], device: DEVICES[0], clockTs: '1700000000001-0000-a' });
  for (const m of [mergeRecords(early, late), mergeRecords(late, early)]) {
    t.equal(m.createdBy, USERS[1]);
    t.equal(m.createdAt, '1700000000000-0000-a');
    t.equal(m.device, DEVICES[1]);
  }
});

t.test('photos merge by union and a removal is never undone', async (t) => {
  const world = createWorld();
  sync(world, 0, 1);
  world.replicas[0] = addPhotoAt(world.replicas[0]!, 0);
  sync(world, 0, 1);
  world.replicas[1] = addPhotoAt(world.replicas[1]!, 1);
  const removed = removeAt(world.replicas[0]!, 0, world);
  const m = mergeRecords(removed, world.replicas[1]!);
  t.same(Object.keys(m.photos).length, 2);
  const gone = Object.values(m.photos).find((p) => p.removedAt !== undefined);
  t.ok(gone, 'the tombstone survives the merge');
  t.equal(Object.values(m.photos).filter((p) => p.removedAt === undefined).length, 1);

  function addPhotoAt(r: ChildRecord, n: number): ChildRecord {
    return mergeRecords(r, withPhoto(r, n));
  }
  function removeAt(r: ChildRecord, n: number, w: typeof world): ChildRecord {
    const id = Object.keys(r.photos)[n]!;
    return { ...r, photos: { ...r.photos, [id]: { ...r.photos[id]!, removedAt: w.clocks[0]!.now(), removedBy: USERS[0] } } };
  }
  function withPhoto(r: ChildRecord, n: number): ChildRecord {
    const id = `0b9a3c1e-0000-4aaa-8bbb-00000000000${n}`;
    return {
      ...r,
      photos: { ...r.photos, [id]: { sha256: 'f'.repeat(64), size: 10 + n, type: 'image/png', addedAt: world.clocks[0]!.now(), by: USERS[0] } },
    };
  }
});

t.test('visibleFields gives the current value of every field except _deleted', async (t) => {
  const world = createWorld();
  edit(world, 0, 'name', 'Ada K');
  edit(world, 0, '_deleted', true);
  t.strictSame(visibleFields(world.replicas[0]!), { age: 7, name: 'Ada K' });
});

t.test('applyEdit with an unchanged value adds nothing to history', async (t) => {
  const world = createWorld();
  const r = world.replicas[0]!;
  const same = applyEdit(r, { field: 'name', value: 'Ada', by: USERS[0], device: DEVICES[0], ts: world.clocks[0]!.now() });
  t.equal(same, r);
});

t.test('merge stays commutative, associative and idempotent on forged histories', async () => {
  // Duplicate timestamps, dangling or cyclic bases and stray resolved ids: data no honest device
  // writes, which the derivation must still handle deterministically.
  const tsPool = ['1700000000000-0000-a', '1700000000000-0001-a', '1700000000000-0000-b', '1700000000005-0000-a', '1700000000009-0003-c'];
  const tsArb = fc.constantFrom(...tsPool);
  const versionArb = fc.record(
    {
      field: fc.constantFrom('name', 'age'),
      value: valueArb,
      ts: tsArb,
      by: fc.constantFrom(...USERS),
      device: fc.constantFrom(...DEVICES),
      base: tsArb,
    },
    { requiredKeys: ['field', 'value', 'ts', 'by', 'device'] },
  );
  // Bare ids (records from before resolutions had authors) mixed with authored resolutions, the
  // same conflict often resolved by several people.
  const conflictArb = fc.tuple(fc.constantFrom('name', 'age'), tsArb, tsArb).map(([f, w, l]) => `${f}:${w}:${l}`);
  const resolvedArb = fc.array(
    fc.oneof(
      conflictArb,
      fc.record({ conflict: conflictArb, ts: tsArb, by: fc.constantFrom(...USERS), device: fc.constantFrom(...DEVICES) }),
    ),
    { maxLength: 4 },
  );
  const recordArb = fc.record({ history: fc.array(versionArb, { maxLength: 8 }), resolved: resolvedArb }).map(({ history, resolved }) =>
    normalizeRecord({
      id: RECORD_ID,
      type: 'child',
      createdBy: USERS[0],
      createdAt: tsPool[0]!,
      device: DEVICES[0],
      fields: {},
      history,
      photos: {},
      conflicts: [],
      resolved,
    }),
  );
  fc.assert(
    fc.property(recordArb, recordArb, recordArb, (a, b, c) => {
      const ab = mergeRecords(a, b);
      return (
        same(ab, mergeRecords(b, a)) &&
        same(mergeRecords(ab, c), mergeRecords(a, mergeRecords(b, c))) &&
        same(mergeRecords(a, a), a) &&
        same(mergeRecords(ab, b), ab) &&
        [...a.history, ...b.history].every((v) => ab.history.some((h) => JSON.stringify(h) === JSON.stringify(v))) &&
        [...a.resolved, ...b.resolved].every((e) => ab.resolved.some((x) => resolutionKey(x) === resolutionKey(e)))
      );
    }),
    { numRuns: 300 },
  );
});

t.test('no resolution ever made disappears: the merge of all replicas holds each one, with its author', async () => {
  fc.assert(
    fc.property(opsArb, (ops) => {
      const world = simulate(ops);
      const all = world.replicas.filter((r): r is ChildRecord => r !== undefined).reduce((x, y) => mergeRecords(x, y));
      const kept = new Set(all.resolved.map(resolutionKey));
      const made = world.snapshots.flatMap((r) => r.resolved);
      const done = new Set(all.resolved.map(resolvedConflictId));
      return (
        made.every((e) => typeof e !== 'string' && kept.has(resolutionKey(e))) &&
        openConflicts(all).every((c) => !done.has(conflictId(c)))
      );
    }),
    { numRuns: RUNS },
  );
});

t.test('issue 5: the same conflict resolved by two supervisors on two phones is resolved once merged, keeping both authors', async (t) => {
  const world = createWorld();
  sync(world, 0, 1);
  sync(world, 0, 2);
  edit(world, 0, 'name', 'Ada K');
  edit(world, 1, 'name', 'Ada M');
  sync(world, 1, 0);
  sync(world, 1, 2);
  sync(world, 0, 2);
  const [c] = openConflicts(world.replicas[0]!);
  const id = conflictId(c!);
  const byA = resolveConflict(world.replicas[0]!, id, { by: 'sam', device: DEVICES[0], ts: world.clocks[0]!.now() });
  const byC = resolveConflict(world.replicas[2]!, id, { by: 'sara', device: DEVICES[2], ts: world.clocks[2]!.now() });
  const m = mergeRecords(byA, byC);
  t.notOk(needsReview(m));
  t.same(m.resolved.map((e) => (typeof e === 'string' ? e : [e.conflict, e.by])).sort(), [[id, 'sam'], [id, 'sara']]);
  t.ok(same(m, mergeRecords(byC, byA)), 'commutative');
  t.ok(same(mergeRecords(m, byA), m), 'idempotent');
});

t.test('a bare conflict id from an old record and an authored resolution of the same conflict are both kept', async (t) => {
  const world = concurrentNameEdits();
  const r = world.replicas[0]!;
  const id = conflictId(openConflicts(r)[0]!);
  const legacy = normalizeRecord({ ...r, resolved: [id] });
  const authored = resolveConflict(r, id, { by: 'sam', device: DEVICES[0], ts: world.clocks[0]!.now() });
  const m = mergeRecords(legacy, authored);
  t.equal(m.resolved.length, 2);
  t.ok(m.resolved.includes(id), 'the bare id stays a bare id');
  t.notOk(needsReview(m));
  t.ok(same(m, mergeRecords(authored, legacy)));
});
