import nano from 'nano';
import t from 'tap';
import { freshDb, rejectionStatus, startStore } from './fixtures/store.js';

t.test('_changes with filter=_selector gets a 400 and the store stays up', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  await db.insert({ _id: 'a', type: 'child' });

  t.equal(await rejectionStatus(db.changes({ filter: '_selector' })), 400);
  const viaPost = await fetch(`${store.origin}/${db.config.db}/_changes?filter=_selector`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: store.authorization },
    body: JSON.stringify({ selector: { type: 'child' } }),
  });
  t.equal(viaPost.status, 400, 'also when the selector comes in a POST body');
  t.match(await viaPost.json(), { error: 'bad_request' });

  t.equal((await db.info()).doc_count, 1, 'the store still answers');
  t.equal(store.crashed, false);
});

t.test('_changes with a filter naming a missing design doc gets a 404 and the store stays up', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  await db.insert({ _id: 'a' });

  t.equal(await rejectionStatus(db.changes({ filter: 'missing/filter' })), 404);
  t.equal(await rejectionStatus(db.changes({ filter: '_view', view: 'missing/view' } as never)), 404);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.ok((await nano(store.url).db.list()).includes(db.config.db), 'the store still answers');
  t.equal(store.crashed, false);
});
