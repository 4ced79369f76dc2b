// `_all_docs` with `keys` takes a faster path in the stand-in (src/keyed-read.ts, issue 5: the
// server reads every pushed record this way). Its answers must be exactly PouchDB's own: each case
// is compared with the same request plus `conflicts=false`, an option that changes nothing in the
// answer but sends the request down PouchDB's own path.
import t from 'tap';
import { freshDb, startStore } from './fixtures/store.js';

t.test('a keyed read answers exactly as PouchDB: live, missing, deleted, design and repeated ids, in order', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  const docs = Array.from({ length: 50 }, (_, i) => ({ _id: `record:${String(i).padStart(3, '0')}`, n: i, nested: { text: 'x'.repeat(i) } }));
  const written = await db.bulk({ docs });
  const gone = written.find((r) => r.id === 'record:007');
  await db.destroy('record:007', gone?.rev ?? '');
  const edited = await db.get('record:003');
  await db.insert({ ...edited, n: 'edited' });
  await db.insert({ _id: '_design/search', views: { by_n: { map: 'function (doc) { emit(doc.n); }' } } });
  // A deleted document written again (a new revision on top of the tombstone).
  const back = written.find((r) => r.id === 'record:009');
  await db.destroy('record:009', back?.rev ?? '');
  await db.insert({ _id: 'record:009', n: 'back' });

  const keys = ['record:040', 'record:007', 'nope', 'record:003', '_design/search', 'record:040', 'record:009', '_local/x', 'record:000'];
  const fast = await db.fetch({ keys });
  const reference = await db.fetch({ keys }, { conflicts: false } as never);
  t.same(fast.rows, reference.rows, 'the same rows');
  t.equal(fast.total_rows, reference.total_rows, 'the same total_rows');
  t.same(
    fast.rows.map((r) => ('error' in r ? r.error : 'deleted' in (r.value ?? {}) ? 'deleted' : r.id)),
    ['record:040', 'deleted', 'not_found', 'record:003', '_design/search', 'record:040', 'record:009', 'not_found', 'record:000'],
    'what each row says',
  );
  const edit = fast.rows[3];
  t.equal(edit !== undefined && 'doc' in edit ? edit.doc?.['n'] : undefined, 'edited', 'the current revision');
});

t.test('a keyed read of many documents returns every one with its current revision', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  const docs = Array.from({ length: 600 }, (_, i) => ({ _id: `record:${crypto.randomUUID()}`, n: i }));
  const written = await db.bulk({ docs });
  const keys = docs.map((d) => d._id).reverse();
  const res = await db.fetch({ keys });
  t.equal(res.rows.length, 600);
  const revs = new Map(written.map((w) => [w.id, w.rev]));
  t.ok(
    res.rows.every((r, i) => 'doc' in r && r.id === keys[i] && r.value.rev === revs.get(r.id) && r.doc?._rev === r.value.rev),
    'in the order asked, each at the revision written',
  );
});

t.test('keys that are not strings and requests with other options are answered by PouchDB', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  await db.bulk({ docs: [{ _id: 'a' }, { _id: 'b' }] });
  const odd = await db.fetch({ keys: ['a', 42 as unknown as string, 'b'] });
  t.same(odd.rows.map((r) => ('error' in r ? r.error : r.id)), ['a', 'not_found', 'b']);
  const noDocs = await db.fetchRevs({ keys: ['a', 'missing'] });
  t.same(noDocs.rows.map((r) => ('error' in r ? r.error : r.id)), ['a', 'not_found'], 'without include_docs');
});
