import t from 'tap';
import {
  MAX_FIELDS,
  MAX_VALUE_LENGTH,
  addPhoto,
  applyEdit,
  checkRecordLimits,
  createRecord,
  isDeleted,
  needsReview,
  parseRecord,
  removePhoto,
  resolveConflict,
  type ChildRecord,
} from '../src/index.js';
import { DEVICES, RECORD_ID, USERS, createSharedWorld, edit, sync } from './fixtures/replicas.js';

const TS = '1700000000000-0000-356938035643809';
const TS2 = '1700000000001-0000-356938035643809';
const PHOTO = '0b9a3c1e-1111-4aaa-8bbb-000000000001';

function fresh(fields: Record<string, string | number | boolean | null | string[]> = { name: 'Ada', age: 7 }): ChildRecord {
  return createRecord({ id: RECORD_ID, createdBy: USERS[0], device: DEVICES[0], clockTs: TS, fields });
}

/** A JSON copy with `mutate` applied, as an untrusted body would arrive. */
function tampered(mutate: (r: Record<string, any>) => void): unknown {
  const r = JSON.parse(JSON.stringify(fresh())) as Record<string, any>;
  mutate(r);
  return r;
}

t.test('createRecord writes every initial field as a first version by the creator', async (t) => {
  const r = fresh();
  t.equal(r.createdAt, TS);
  t.strictSame(r.fields['name'], { field: 'name', value: 'Ada', ts: TS, by: USERS[0], device: DEVICES[0] });
  t.equal(r.history.length, 2);
  t.strictSame(r.conflicts, []);
  t.notOk(needsReview(r));
});

t.test('a valid record parses to itself', async (t) => {
  const r = fresh();
  t.strictSame(parseRecord(JSON.parse(JSON.stringify(r))), r);
});

t.test('malformed records are rejected as RECORD_INVALID naming the field', async (t) => {
  const cases: [string, (r: Record<string, any>) => void][] = [
    ['id', (r) => (r.id = RECORD_ID.toUpperCase())],
    ['id', (r) => (r.id = '3f2b8c1e-9a4d-1e6f-8b2a-1c3d5e7f9a0b')], // version 1 UUID
    ['type', (r) => (r.type = 'adult')],
    ['createdBy', (r) => (r.createdBy = 'Amina Smith')],
    ['createdAt', (r) => (r.createdAt = '2024-01-01')],
    ['device', (r) => (r.device = '12345')],
    ['pushedBy', (r) => (r.pushedBy = 'amina')],
    ['seq', (r) => (r.seq = 5)],
    ['fields.Name', (r) => (r.fields.Name = r.fields.name)],
    ['fields.__proto__', (r) => Object.defineProperty(r.fields, '__proto__', { value: r.fields.name, enumerable: true })],
    ['fields.name.value', (r) => (r.fields.name.value = { nested: true })],
    ['fields.name.extra', (r) => (r.fields.name.extra = 1)],
    ['fields.name.field', (r) => (r.fields.name.field = 'age')],
    ['history.0.ts', (r) => (r.history[0].ts = 'yesterday')],
    ['history.0.base', (r) => (r.history[0].base = r.history[0].ts)],
    ['fields._deleted.value', (r) => (r.fields._deleted = { ...r.fields.name, field: '_deleted', value: 'yes' })],
    ['photos.not-a-uuid', (r) => (r.photos['not-a-uuid'] = {})],
    [`photos.${PHOTO}.type`, (r) => (r.photos[PHOTO] = { sha256: 'a'.repeat(64), size: 1, type: 'image/gif', addedAt: TS, by: 'amina' })],
    [`photos.${PHOTO}.removedBy`, (r) => (r.photos[PHOTO] = { sha256: 'a'.repeat(64), size: 1, type: 'image/png', addedAt: TS, by: 'amina', removedAt: TS2 })],
    ['resolved.0', (r) => (r.resolved = ['name:oops'])],
  ];
  for (const [field, mutate] of cases) {
    t.throws(() => parseRecord(tampered(mutate)), { code: 'RECORD_INVALID', details: { field } }, field);
  }
  t.throws(() => parseRecord('not a record'), { code: 'RECORD_INVALID' });
});

t.test('oversized values are rejected as RECORD_TOO_LARGE', async (t) => {
  const long = 'x'.repeat(MAX_VALUE_LENGTH + 1);
  t.throws(() => parseRecord(tampered((r) => (r.fields.name.value = long))), { code: 'RECORD_TOO_LARGE', details: { field: 'fields.name.value' } });
  t.throws(() => parseRecord(tampered((r) => (r.fields.name.value = ['a'.repeat(6_000), 'b'.repeat(6_000)]))), { code: 'RECORD_TOO_LARGE' });
  t.throws(() => fresh({ notes: long }), { code: 'RECORD_TOO_LARGE' });
  t.ok(fresh({ notes: 'x'.repeat(MAX_VALUE_LENGTH) }), 'exactly at the limit is fine');
});

t.test('a record over the history limit is rejected, never trimmed', async (t) => {
  let r = fresh();
  for (let i = 1; i <= 8; i++) r = applyEdit(r, { field: 'notes', value: `v${i}`, by: 'amina', device: DEVICES[0], ts: `17000000000${String(i).padStart(2, '0')}-0000-a` });
  t.equal(r.history.length, 10);
  t.throws(() => parseRecord(JSON.parse(JSON.stringify(r)), { maxHistory: 9 }), { code: 'RECORD_TOO_LARGE', details: { field: 'history' } });
  t.throws(() => checkRecordLimits(r, { maxHistory: 9 }), { code: 'RECORD_TOO_LARGE' });
  t.throws(
    () => applyEdit(r, { field: 'notes', value: 'one more', by: 'amina', device: DEVICES[0], ts: '1700000000099-0000-a' }, { maxHistory: 10 }),
    { code: 'RECORD_TOO_LARGE' },
  );
  t.throws(() => checkRecordLimits(r, { maxHistory: 0 }), { code: 'INPUT_INVALID' });
});

t.test('a record cannot grow beyond the field limit', async (t) => {
  const many: Record<string, string> = {};
  for (let i = 0; i < MAX_FIELDS; i++) many[`f${i}`] = 'x';
  const r = fresh(many);
  t.throws(() => applyEdit(r, { field: 'one_more', value: 'x', by: 'amina', device: DEVICES[0], ts: TS2 }), { code: 'RECORD_TOO_LARGE' });
  t.throws(() => fresh({ ...many, one_more: 'x' }), { code: 'RECORD_TOO_LARGE' });
});

t.test('createRecord refuses malformed input with RECORD_INVALID', async (t) => {
  const ok = { id: RECORD_ID, createdBy: 'amina', device: DEVICES[0], clockTs: TS, fields: {} };
  t.throws(() => createRecord({ ...ok, id: 'abc' }), { code: 'RECORD_INVALID', details: { field: 'id' } });
  t.throws(() => createRecord({ ...ok, createdBy: '' }), { code: 'RECORD_INVALID', details: { field: 'createdBy' } });
  t.throws(() => createRecord({ ...ok, device: 'phone' }), { code: 'RECORD_INVALID', details: { field: 'device' } });
  t.throws(() => createRecord({ ...ok, clockTs: 'now' }), { code: 'RECORD_INVALID', details: { field: 'clockTs' } });
  t.throws(() => createRecord({ ...ok, fields: { 'Bad Name': 'x' } }), { code: 'RECORD_INVALID' });
  t.throws(() => createRecord({ ...ok, fields: { age: Number.NaN } }), { code: 'RECORD_INVALID' });
});

t.test('applyEdit links the new version to the one it replaces', async (t) => {
  const r = applyEdit(fresh(), { field: 'name', value: 'Ada K', by: 'bo', device: DEVICES[1], ts: TS2 });
  t.strictSame(r.fields['name'], { field: 'name', value: 'Ada K', ts: TS2, by: 'bo', device: DEVICES[1], base: TS });
  t.equal(r.history.length, 3);
});

t.test('applyEdit of a new field is a first write without base', async (t) => {
  const r = applyEdit(fresh(), { field: 'notes', value: 'hi', by: 'bo', device: DEVICES[1], ts: TS2 });
  t.notOk('base' in r.fields['notes']!);
});

t.test('applyEdit with a timestamp not newer than the current value throws RECORD_EDIT_STALE', async (t) => {
  const r = fresh();
  t.throws(() => applyEdit(r, { field: 'name', value: 'Ada K', by: 'bo', device: DEVICES[1], ts: TS }), { code: 'RECORD_EDIT_STALE' });
  t.throws(() => applyEdit(r, { field: 'name', value: 'Ada K', by: 'bo', device: DEVICES[1], ts: '1699999999999-0000-z' }), { code: 'RECORD_EDIT_STALE' });
});

t.test('applyEdit refuses malformed edits with RECORD_INVALID', async (t) => {
  const r = fresh();
  const ok = { field: 'name', value: 'x', by: 'bo', device: DEVICES[1], ts: TS2 };
  t.throws(() => applyEdit(r, { ...ok, field: 'constructor ' }), { code: 'RECORD_INVALID' });
  t.throws(() => applyEdit(r, { ...ok, by: 'Bo' }), { code: 'RECORD_INVALID' });
  t.throws(() => applyEdit(r, { ...ok, device: '1' }), { code: 'RECORD_INVALID' });
  t.throws(() => applyEdit(r, { ...ok, ts: 'x' }), { code: 'RECORD_INVALID' });
  t.throws(() => applyEdit(r, { ...ok, field: '_deleted', value: 'yes' }), { code: 'RECORD_INVALID' });
});

t.test('field names that are Object.prototype members are ordinary fields', async (t) => {
  const r = fresh();
  const edited = applyEdit(r, { field: 'constructor', value: 'x', by: 'bo', device: DEVICES[1], ts: TS2 });
  t.notOk('base' in edited.fields['constructor']!, 'no inherited "current version" is found');
  // Compared as JSON: tap's deep equality reads an own `constructor` key as the object's class.
  t.equal(JSON.stringify(parseRecord(JSON.parse(JSON.stringify(edited)))), JSON.stringify(edited));
});

t.test('deleting a record is an LWW edit of _deleted and can be undone', async (t) => {
  const deleted = applyEdit(fresh(), { field: '_deleted', value: true, by: 'bo', device: DEVICES[1], ts: TS2 });
  t.ok(isDeleted(deleted));
  const restored = applyEdit(deleted, { field: '_deleted', value: false, by: 'bo', device: DEVICES[1], ts: '1700000000002-0000-a' });
  t.notOk(isDeleted(restored));
  t.equal(restored.history.filter((v) => v.field === '_deleted').length, 2);
});

t.test('photos are added once, removed by tombstone and never dropped', async (t) => {
  const photo = { sha256: 'a'.repeat(64), size: 2048, type: 'image/jpeg' as const, by: 'amina', ts: TS2 };
  const withPhoto = addPhoto(fresh(), PHOTO, photo);
  t.strictSame(withPhoto.photos[PHOTO], { sha256: 'a'.repeat(64), size: 2048, type: 'image/jpeg', addedAt: TS2, by: 'amina' });
  t.equal(addPhoto(withPhoto, PHOTO, photo), withPhoto, 'adding the same photo again is a no-op');
  t.throws(() => addPhoto(withPhoto, PHOTO, { ...photo, sha256: 'b'.repeat(64) }), { code: 'RECORD_INVALID' });
  const removed = removePhoto(withPhoto, PHOTO, { by: 'bo', ts: '1700000000002-0000-a' });
  t.equal(removed.photos[PHOTO]?.removedAt, '1700000000002-0000-a');
  t.equal(removed.photos[PHOTO]?.removedBy, 'bo');
  t.equal(removePhoto(removed, PHOTO, { by: 'bo', ts: '1700000000003-0000-a' }), removed, 'removing twice is a no-op');
});

t.test('malformed photos are rejected as RECORD_INVALID', async (t) => {
  const photo = { sha256: 'a'.repeat(64), size: 2048, type: 'image/jpeg' as const, by: 'amina', ts: TS2 };
  t.throws(() => addPhoto(fresh(), 'photo-1', photo), { code: 'RECORD_INVALID', details: { field: 'photoId' } });
  t.throws(() => addPhoto(fresh(), PHOTO, { ...photo, size: 0 }), { code: 'RECORD_INVALID', details: { field: 'size' } });
  t.throws(() => addPhoto(fresh(), PHOTO, { ...photo, type: 'image/gif' as 'image/png' }), { code: 'RECORD_INVALID', details: { field: 'type' } });
  t.throws(() => removePhoto(fresh(), PHOTO, { by: 'bo', ts: TS2 }), { code: 'RECORD_INVALID', details: { field: 'photoId' } });
});

const SUPERVISOR = { by: 'sam', device: DEVICES[2], ts: '1700000009000-0000-012345678901237' };

function conflicted(): { r: ChildRecord; id: string } {
  const world = createSharedWorld();
  edit(world, 0, 'name', 'Ada K');
  edit(world, 1, 'name', 'Ada M');
  sync(world, 1, 0);
  const r = world.replicas[0]!;
  const [c] = r.conflicts;
  return { r, id: `${c!.field}:${c!.winner}:${c!.loser}` };
}

t.test('resolving a conflict clears needsReview, records who resolved it, when and where, and is idempotent', async (t) => {
  const { r, id } = conflicted();
  t.ok(needsReview(r));
  const done = resolveConflict(r, id, SUPERVISOR);
  t.notOk(needsReview(done));
  t.strictSame(done.resolved, [{ conflict: id, ts: SUPERVISOR.ts, by: 'sam', device: DEVICES[2] }]);
  t.equal(resolveConflict(done, id, SUPERVISOR), done);
  t.equal(resolveConflict(done, id, { ...SUPERVISOR, by: 'sara' }), done, 'a conflict already resolved by someone else is left as is');
  t.strictSame(parseRecord(JSON.parse(JSON.stringify(done))), done, 'a resolution survives the wire');
});

t.test('resolving an unknown conflict throws RECORD_CONFLICT_NOT_FOUND', async (t) => {
  t.throws(() => resolveConflict(fresh(), `name:${TS}:${TS2}`, SUPERVISOR), { code: 'RECORD_CONFLICT_NOT_FOUND' });
});

t.test('a resolution with a malformed author, device or timestamp is RECORD_INVALID and changes nothing', async (t) => {
  const { r, id } = conflicted();
  const before = JSON.stringify(r);
  t.throws(() => resolveConflict(r, id, { ...SUPERVISOR, by: 'Sam Smith' }), { code: 'RECORD_INVALID', details: { field: 'by' } });
  t.throws(() => resolveConflict(r, id, { ...SUPERVISOR, device: '12345' }), { code: 'RECORD_INVALID', details: { field: 'device' } });
  t.throws(() => resolveConflict(r, id, { ...SUPERVISOR, ts: 'now' }), { code: 'RECORD_INVALID', details: { field: 'ts' } });
  t.equal(JSON.stringify(r), before);
});

t.test('records stored before resolutions had authors (bare conflict ids) parse unchanged and stay resolved', async (t) => {
  const { r, id } = conflicted();
  const legacy = JSON.parse(JSON.stringify({ ...r, resolved: [id] })) as unknown;
  const parsed = parseRecord(legacy);
  t.strictSame(parsed.resolved, [id], 'the bare id is kept as it is');
  t.notOk(needsReview(parsed));
  t.equal(resolveConflict(parsed, id, SUPERVISOR), parsed, 'resolving it again adds nothing');
});

t.test('malformed resolutions are rejected as RECORD_INVALID naming the entry', async (t) => {
  const { r, id } = conflicted();
  const good = { conflict: id, ts: SUPERVISOR.ts, by: 'sam', device: DEVICES[2] };
  const cases: Array<[string, unknown]> = [
    ['extra key', { ...good, role: 'supervisor' }],
    ['no author', { conflict: id, ts: SUPERVISOR.ts, device: DEVICES[2] }],
    ['bad author', { ...good, by: 'Sam Smith' }],
    ['bad conflict id', { ...good, conflict: 'name:oops' }],
    ['bad device', { ...good, device: 'phone' }],
    ['a number', 7],
  ];
  for (const [what, entry] of cases) {
    const body = JSON.parse(JSON.stringify({ ...r, resolved: [entry] })) as unknown;
    t.throws(() => parseRecord(body), { code: 'RECORD_INVALID', details: { field: /^resolved\.0/ } }, what);
  }
});

t.test('resolutions count against the history limit (RECORD_TOO_LARGE)', async (t) => {
  const { r, id } = conflicted();
  const other = `name:${TS2}:${TS}`;
  const three = { ...fresh(), resolved: [other, `age:${TS2}:${TS}`, `notes:${TS2}:${TS}`] }; // history: 2 versions
  t.throws(() => checkRecordLimits(three, { maxHistory: 2 }), { code: 'RECORD_TOO_LARGE', details: { field: 'resolved' } });
  t.doesNotThrow(() => checkRecordLimits(three, { maxHistory: 3 }));
  t.throws(() => resolveConflict({ ...r, resolved: [other] }, id, SUPERVISOR, { maxHistory: 1 }), { code: 'RECORD_TOO_LARGE', details: { field: 'resolved' } });
});

t.test('stored conflicts are recomputed, never trusted', async (t) => {
  const forged = tampered((r) => (r.conflicts = [{ field: 'name', winner: TS2, loser: TS }]));
  t.strictSame(parseRecord(forged).conflicts, []);
});
