import { randomBytes } from 'node:crypto';
import t from 'tap';
import { RecordStore, isDeleted, recordUpdatedAt, visibleFields } from '@fieldvault/client';
import { createClock, defaultChildForm, parseHlc, UUID_V4_PATTERN } from '@fieldvault/protocol';
import { ensureSchema } from '@fieldvault/client';
import { SqlCipherStorage } from '../src/index.js';
import { IMEI, PASSWORD_A, newDevice, rejection } from './helpers.js';

async function session(t: Parameters<typeof newDevice>[0], now?: () => number) {
  const { device } = await newDevice(t, now === undefined ? {} : { now });
  await device.signUpOffline('amina', PASSWORD_A);
  return device.loginOffline('amina', PASSWORD_A);
}

t.test('a new record gets a client UUID v4, its creator, the device and a device-clock timestamp', async (t) => {
  const s = await session(t);
  const r = await s.createRecord({ name: 'Kofi', age: 7, sex: 'male' });
  t.match(r.id, UUID_V4_PATTERN);
  t.equal(r.createdBy, 'amina');
  t.equal(r.device, IMEI);
  t.equal(parseHlc(r.createdAt).node, IMEI, 'the clock node is the IMEI');
  t.same(r.fields['age']?.value, 7);
  t.same(await s.getRecord(r.id), r);
});

t.test('an update adds a version per changed field and keeps the old value in the history', async (t) => {
  const s = await session(t);
  const r = await s.createRecord({ name: 'Kofi', age: 7 });
  const u = await s.updateRecord(r.id, { age: 8, location: 'Tamale' });
  t.same(u.fields['age']?.value, 8);
  t.equal(u.fields['age']?.base, r.fields['age']?.ts, 'the edit names the version it replaced');
  t.ok((u.fields['age']?.ts ?? '') > (r.fields['age']?.ts ?? ''));
  t.ok(u.history.some((v) => v.field === 'age' && v.value === 7), 'old value kept');
  t.same((await s.getRecord(r.id)).fields['location']?.value, 'Tamale');
});

t.test('setting a field to its current value changes nothing', async (t) => {
  const s = await session(t);
  const r = await s.createRecord({ name: 'Kofi', age: 7 });
  t.same(await s.updateRecord(r.id, { age: 7 }), r);
});

t.test('writes are validated against the form', async (t) => {
  const s = await session(t);
  const missing = await rejection(s.createRecord({ age: 3 }));
  t.match(missing, { code: 'RECORD_INVALID', details: { field: 'name', problem: 'required' } });
  t.match(await rejection(s.createRecord({ name: 'A', shoe_size: 3 })), { code: 'RECORD_INVALID', details: { field: 'shoe_size', problem: 'unknown' } });
  t.match(await rejection(s.createRecord({ name: 'A', age: 'seven' })), { code: 'RECORD_INVALID', details: { field: 'age', problem: 'type' } });
  const r = await s.createRecord({ name: 'A' });
  t.match(await rejection(s.updateRecord(r.id, { sex: 'unsure' })), { code: 'RECORD_INVALID', details: { field: 'sex', problem: 'option' } });
  t.match(await rejection(s.updateRecord(r.id, { name: null })), { code: 'RECORD_INVALID', details: { field: 'name', problem: 'required' } });
  t.equal((await rejection(s.updateRecord(r.id, { 'Bad Name': 1 }))).code, 'INPUT_INVALID');
  t.same(await s.getRecord(r.id), r, 'a refused update wrote nothing');
  // Text must be readable (s16 input audit F4): NUL, other control characters, unpaired surrogates.
  for (const bad of ['a\u0000b', 'esc\u001b[2J', 'lone \ud800']) {
    t.match(await rejection(s.createRecord({ name: bad })), { code: 'RECORD_INVALID', details: { field: 'name', problem: 'text' } }, JSON.stringify(bad));
    t.match(await rejection(s.updateRecord(r.id, { location: bad })), { code: 'RECORD_INVALID', details: { field: 'location', problem: 'text' } });
  }
  t.same(await s.getRecord(r.id), r, 'refused text wrote nothing');
  t.equal((await s.updateRecord(r.id, { location: 'Camp 3\nnear the well 😀' })).fields['location']?.value, 'Camp 3\nnear the well 😀', 'line breaks and emoji are text');
  // An undefined value is a field not given (as in JSON), not an error naming no field.
  const u = await s.createRecord({ name: 'B', age: undefined });
  t.notOk('age' in u.fields, 'age not given');
  t.equal((await s.updateRecord(u.id, { age: undefined, sex: 'female' })).fields['age'], undefined);
});

t.test('local search matches name and location in any case, age ranges and flags', async (t) => {
  const s = await session(t);
  const zoe = await s.createRecord({ name: 'Zoë Mensah', age: 4, location: 'North Camp', flagged: true });
  const kofi = await s.createRecord({ name: 'Kofi Mensah', age: 11, location: 'South camp' });
  await s.createRecord({ name: 'Ama Owusu', age: 16, location: 'north camp', reunited: true });
  const ids = async (q: Parameters<typeof s.searchRecords>[0]): Promise<string[]> => (await s.searchRecords(q)).map((r) => r.id).sort();
  t.same(await ids({ name: 'ZOË' }), [zoe.id]);
  t.same(await ids({ name: 'mensah' }), [zoe.id, kofi.id].sort());
  t.same(await ids({ name: 'mensah', ageMin: 10 }), [kofi.id]);
  t.same(await ids({ location: 'NORTH', ageMax: 10 }), [zoe.id]);
  t.same(await ids({ flags: { flagged: true } }), [zoe.id]);
  t.same(await ids({ flags: { reunited: false }, location: 'camp', name: 'o' }), [zoe.id, kofi.id].sort());
  t.same(await ids({ createdBy: 'someone-else' }), []);
  // countRecords applies the same criteria, on all pages (limit and offset do not cut it).
  t.equal(await s.countRecords({ name: 'mensah' }), 2);
  t.equal(await s.countRecords({ name: 'mensah', limit: 1, offset: 1 }), 2, 'limit and offset are ignored');
  t.equal(await s.countRecords({ flags: { reunited: false }, location: 'camp', name: 'o' }), 2);
  t.equal(await s.countRecords({ createdBy: 'someone-else' }), 0);
  t.equal(await s.countRecords(), 3);
  t.match(await rejection(s.countRecords({ nmae: 'x' } as never)), { code: 'INPUT_INVALID', details: { field: 'nmae' } }, 'a typo is refused as in search');
  t.match(await rejection(s.countRecords({ limit: 5000 })), { code: 'INPUT_INVALID', details: { field: 'limit' } }, 'paging options are still checked');
});

t.test('search options are validated', async (t) => {
  const s = await session(t);
  t.match(await rejection(s.searchRecords({ ageMin: Number.NaN })), { code: 'INPUT_INVALID', details: { field: 'ageMin' } });
  t.match(await rejection(s.searchRecords({ flags: { lost: true } as never })), { code: 'INPUT_INVALID', details: { field: 'flags.lost' } });
  t.match(await rejection(s.searchRecords({ limit: 5000 })), { code: 'INPUT_INVALID', details: { field: 'limit' } });
  t.match(await rejection(s.searchRecords({ name: '' })), { code: 'INPUT_INVALID', details: { field: 'name' } });
});

t.test('a search with an unknown key or a value of the wrong type is refused, not widened to every record', async (t) => {
  const s = await session(t);
  await s.createRecord({ name: 'Ana Lopes', age: 9 });
  await s.createRecord({ name: 'Ben Okoro', age: 12 });
  const allowed = 'name, location, ageMin, ageMax, flags, needsReview, createdBy, includeDeleted, limit, offset';
  // A typo of `name` used to be no criterion at all: both records came back.
  const typo = await rejection(s.searchRecords({ nmae: 'Ana' } as never));
  t.match(typo, { code: 'INPUT_INVALID', details: { field: 'nmae', allowed } });
  t.match(typo.message, /"nmae": not a search criterion; allowed: name, location, /);
  t.match(await rejection(s.searchRecords({ name: 'Ana', agemin: 5 } as never)), { code: 'INPUT_INVALID', details: { field: 'agemin', allowed } }, 'also next to known keys');
  t.match(await rejection(s.searchRecords({ nmae: undefined } as never)), { code: 'INPUT_INVALID', details: { field: 'nmae' } }, 'also when its value is undefined');
  t.match(await rejection(s.searchRecords({ flags: { flaged: true } as never })), { code: 'INPUT_INVALID', details: { field: 'flags.flaged' }, message: /allowed: flagged, reunited, /u });
  for (const [query, field] of [
    [{ ageMin: 'ten' }, 'ageMin'],
    [{ ageMax: '10' }, 'ageMax'],
    [{ name: 3 }, 'name'],
    [{ location: ['camp'] }, 'location'],
    [{ flags: { flagged: 'yes' } }, 'flags.flagged'],
    [{ flags: 'flagged' }, 'flags'],
    [{ needsReview: 'true' }, 'needsReview'],
    [{ includeDeleted: 1 }, 'includeDeleted'],
    [{ createdBy: 7 }, 'createdBy'],
    [{ limit: '5' }, 'limit'],
    [{ offset: 1.5 }, 'offset'],
  ] as const) {
    t.match(await rejection(s.searchRecords(query as never)), { code: 'INPUT_INVALID', details: { field } }, `${JSON.stringify(query)} is refused`);
  }
  t.equal((await s.searchRecords({ name: 'Ana' })).length, 1, 'the right key still filters');
  // The same for listing: `limt` used to list the default 100.
  t.match(await rejection(s.listRecords({ limt: 1 } as never)), { code: 'INPUT_INVALID', details: { field: 'limt', allowed: 'limit, offset, includeDeleted' } });
  t.match(await rejection(s.listRecords({ limit: 1, name: 'Ana' } as never)), { code: 'INPUT_INVALID', details: { field: 'name' } }, 'a search criterion is not a list option');
  t.equal((await s.listRecords({ limit: 1 })).length, 1, 'the right key still pages');
});

t.test('lists are newest first and paged', async (t) => {
  let clock = 1_700_000_000_000;
  const s = await session(t, () => clock);
  const made = [];
  for (let i = 0; i < 5; i++) {
    clock += 1000;
    made.push(await s.createRecord({ name: `Child ${i}` }));
  }
  const newestFirst = made.map((r) => r.id).reverse();
  t.same((await s.listRecords()).map((r) => r.id), newestFirst);
  t.same((await s.listRecords({ limit: 2, offset: 1 })).map((r) => r.id), newestFirst.slice(1, 3));
});

t.test('a deleted record disappears from get, list and search but stays readable with includeDeleted', async (t) => {
  const s = await session(t);
  const r = await s.createRecord({ name: 'Gone' });
  await s.deleteRecord(r.id);
  t.equal((await rejection(s.getRecord(r.id))).code, 'VAULT_RECORD_NOT_FOUND');
  t.same(await s.listRecords(), []);
  t.same(await s.searchRecords({ name: 'gone' }), []);
  t.equal(await s.countRecords(), 0);
  t.equal((await s.getRecord(r.id, { includeDeleted: true })).fields['_deleted']?.value, true);
  t.equal((await s.listRecords({ includeDeleted: true })).length, 1);
  t.equal(await s.countRecords({ includeDeleted: true }), 1);
});

t.test('timestamps keep increasing when the wall clock steps back, also across logins', async (t) => {
  let clock = 1_700_000_100_000;
  const { device } = await newDevice(t, { now: () => clock });
  await device.signUpOffline('amina', PASSWORD_A);
  const s = await device.loginOffline('amina', PASSWORD_A);
  const r = await s.createRecord({ name: 'Kofi', age: 1 });
  clock -= 60_000;
  const u = await s.updateRecord(r.id, { age: 2 });
  t.ok((u.fields['age']?.ts ?? '') > (r.fields['age']?.ts ?? ''));
  await s.logout();
  clock -= 60_000;
  const s2 = await device.loginOffline('amina', PASSWORD_A);
  const u2 = await s2.updateRecord(r.id, { age: 3 });
  t.ok((u2.fields['age']?.ts ?? '') > (u.fields['age']?.ts ?? ''), 'the clock resumed from the database');
});

t.test('the visibility rule is applied in SQL: in one database, an own-records view sees only its creator\'s records', async (t) => {
  // Two users' records in one database file (as after a merge): RecordStore over a real handle.
  const storage = new SqlCipherStorage({ directory: t.testdir() });
  const db = await storage.open('e'.repeat(64), randomBytes(32), { create: true });
  t.teardown(() => db.close());
  await ensureSchema(db);
  const view = (username: string, onlyOwn: boolean): RecordStore =>
    new RecordStore(db, { username, device: IMEI, onlyOwn, clock: createClock({ node: IMEI }), form: defaultChildForm });
  const amina = await view('amina', true).create({ name: 'Same name', location: 'Camp' });
  const bilal = await view('bilal', true).create({ name: 'Same name', location: 'Camp' });
  const a = view('amina', true);
  t.equal((await rejection(a.get(bilal.id))).code, 'VAULT_RECORD_NOT_FOUND');
  t.equal((await rejection(a.update(bilal.id, { age: 3 }))).code, 'VAULT_RECORD_NOT_FOUND');
  t.equal((await rejection(a.remove(bilal.id))).code, 'VAULT_RECORD_NOT_FOUND');
  t.same((await a.list()).map((r) => r.id), [amina.id]);
  t.same((await a.search({ name: 'same', location: 'camp' })).map((r) => r.id), [amina.id]);
  t.same((await a.search({ createdBy: 'bilal' })).map((r) => r.id), []);
  t.equal(await a.count({ name: 'same' }), 1, 'the count sees only what the view sees');
  t.equal(await view('supervisor', false).count({ name: 'same' }), 2);
  t.same((await view('supervisor', false).list()).map((r) => r.id).sort(), [amina.id, bilal.id].sort(), 'a verified view sees both');
});

t.test("a record is read for display with the helpers the SDK exports (docs/sdk.md, \"A record's shape\")", async (t) => {
  const s = await session(t);
  const created = await s.createRecord({ name: 'Ana Lopes', age: 9, location: 'Camp 3' });
  const edited = await s.updateRecord(created.id, { age: 10 });
  t.same(visibleFields(edited), { name: 'Ana Lopes', age: 10, location: 'Camp 3' }, 'the current value of each field');
  t.equal(edited.history.filter((v) => v.field === 'age').length, 2, 'both ages are in the history');
  t.equal(recordUpdatedAt(edited), edited.fields['age']?.ts, 'updated at the newest write');
  t.notOk(isDeleted(edited));
  await s.deleteRecord(created.id);
  const gone = (await s.listRecords({ includeDeleted: true })).find((r) => r.id === created.id);
  t.ok(gone !== undefined && isDeleted(gone), 'a deletion is a record with _deleted');
  t.notOk(gone !== undefined && '_deleted' in visibleFields(gone), 'which visibleFields leaves out');
});
