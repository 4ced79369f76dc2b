import { createHash, randomBytes } from 'node:crypto';
import nano from 'nano';
import t from 'tap';
import { freshDb, rejectionStatus, startStore } from './fixtures/store.js';

t.test('a document can be created, read, updated and deleted', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);

  const created = await db.insert({ _id: 'child-1', name: 'Amina', age: 7 });
  t.ok(created.ok);
  const read = await db.get('child-1');
  t.match(read, { _id: 'child-1', _rev: created.rev, name: 'Amina', age: 7 });

  const updated = await db.insert({ ...read, age: 8 });
  t.not(updated.rev, created.rev);
  t.equal((await db.get('child-1'))['age'], 8);

  t.equal(await rejectionStatus(db.insert({ _id: 'child-1', _rev: created.rev, age: 9 })), 409, 'a stale rev conflicts');

  await db.destroy('child-1', updated.rev);
  t.equal(await rejectionStatus(db.get('child-1')), 404);
});

t.test('_bulk_docs stores 1000 documents in one request', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  const docs = Array.from({ length: 1000 }, (_, i) => ({ _id: `doc-${String(i).padStart(4, '0')}`, n: i, text: 'x'.repeat(200) }));

  const began = process.hrtime.bigint();
  const results = await db.bulk({ docs });
  const ms = Number(process.hrtime.bigint() - began) / 1e6;
  t.comment(`_bulk_docs 1000 docs: ${ms.toFixed(0)} ms (~${Math.round(1000 / (ms / 1000))} docs/s)`);

  t.equal(results.length, 1000);
  t.ok(results.every((r) => r.error === undefined && typeof r.rev === 'string'), 'every document is ok');
  t.equal((await db.info()).doc_count, 1000);
  const page = await db.list({ start_key: 'doc-0500', limit: 3 });
  t.same(page.rows.map((r) => r.id), ['doc-0500', 'doc-0501', 'doc-0502'], '_all_docs pages by key');
});

t.test('_changes since a checkpoint returns only later changes, deletions included', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  const first = await db.bulk({ docs: [{ _id: 'a' }, { _id: 'b' }, { _id: 'c' }] });
  const checkpoint = (await db.changes()).last_seq;

  await db.bulk({ docs: [{ _id: 'd' }, { _id: 'e' }] });
  const b = first.find((r) => r.id === 'b');
  await db.destroy('b', b?.rev ?? '');

  // The seq is opaque: it goes back exactly as it came.
  const later = await db.changes({ since: checkpoint });
  t.same(later.results.map((r) => r.id).sort(), ['b', 'd', 'e']);
  t.equal(later.results.find((r) => r.id === 'b')?.deleted, true, 'the deletion is in the feed');
  t.notOk(later.results.find((r) => r.id === 'd')?.deleted, 'a live document is not marked deleted');

  const none = await db.changes({ since: later.last_seq });
  t.same(none.results, [], 'nothing after the latest checkpoint');
});

t.test('a binary attachment reads back byte for byte with its md5 digest', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  const bytes = randomBytes(256 * 1024);
  await db.insert({ _id: 'photo-1', kind: 'photo' });
  const rev = (await db.get('photo-1'))._rev;

  await db.attachment.insert('photo-1', 'image.bin', bytes, 'application/octet-stream', { rev });
  const back = await db.attachment.get('photo-1', 'image.bin');
  t.ok(Buffer.compare(back, bytes) === 0, 'same bytes');

  const doc = await db.get('photo-1');
  const stub = doc._attachments?.['image.bin'];
  t.match(stub, { content_type: 'application/octet-stream', length: bytes.length, stub: true });
  t.equal(stub?.digest, `md5-${createHash('md5').update(bytes).digest('base64')}`);
});

t.test('a Mango query uses an index created through _index', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  await db.bulk({ docs: [{ _id: 'x1', type: 'child', age: 4 }, { _id: 'x2', type: 'child', age: 9 }, { _id: 'x3', type: 'note' }] });

  const index = await db.createIndex({ index: { fields: ['type'] }, name: 'by-type' });
  t.equal(index.result, 'created');
  const found = await db.find({ selector: { type: 'child' }, fields: ['_id'] });
  t.same(found.docs.map((d) => d._id).sort(), ['x1', 'x2']);
});

t.test('a _security object is stored and returned', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  const security = { admins: { names: [], roles: ['fv-admin'] }, members: { names: ['fieldvault-app'], roles: [] } };
  const couch = nano(store.url);
  await couch.request({ method: 'PUT', db: db.config.db, path: '_security', body: security });
  t.same(await couch.request({ db: db.config.db, path: '_security' }), security);
});

t.test('a database can be deleted and created again empty', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store, 'recycled');
  await db.insert({ _id: 'gone' });
  const couch = nano(store.url);
  await couch.db.destroy('recycled');
  t.notOk((await couch.db.list()).includes('recycled'));
  await couch.db.create('recycled');
  t.equal((await couch.use('recycled').info()).doc_count, 0);
});
