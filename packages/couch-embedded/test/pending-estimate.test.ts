// A paged `_changes` answer of the stand-in says how many changes follow it (`pending`, as CouchDB 3
// does), estimated from the update sequence (src/pending-estimate.ts): the server passes it on to
// phones for their pull progress bar.
import t from 'tap';
import { freshDb, startStore } from './fixtures/store.js';

t.test('pending counts the changes after each page, down to 0 on the last one', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  await db.bulk({ docs: Array.from({ length: 10 }, (_, i) => ({ _id: `record:${i}`, n: i })) });

  const seen: number[] = [];
  const rows: string[] = [];
  let since: unknown = undefined;
  for (let page = 0; page < 5; page++) {
    const res = await db.changes({ limit: 4, ...(since === undefined ? {} : { since: since as string }) });
    seen.push((res as unknown as { pending: number }).pending);
    rows.push(...res.results.map((r) => r.id));
    since = res.last_seq;
    if (res.results.length < 4) break;
  }
  t.same(seen, [6, 2, 0], 'after 4, 8 and 10 of 10 changes');
  t.equal(new Set(rows).size, 10, 'the pages themselves are unchanged: every document once');
});

t.test('pending is an upper bound: a document updated twice after the page counts twice', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  const written = await db.bulk({ docs: Array.from({ length: 5 }, (_, i) => ({ _id: `record:${i}`, n: i })) });
  const first = await db.changes({ limit: 2 });
  let rev = written[4]?.rev ?? '';
  for (let i = 0; i < 2; i++) rev = (await db.insert({ _id: 'record:4', _rev: rev, n: `edit ${i}` })).rev;
  const after = await db.changes({ limit: 2 });
  t.equal((first as unknown as { pending: number }).pending, 3);
  // 3 documents follow the page, but 5 updates did: CouchDB would say 3.
  t.equal((after as unknown as { pending: number }).pending, 5);
  const rest = await db.changes({ since: after.last_seq as string });
  t.equal(rest.results.length, 3, 'the feed itself has each document once');
});

t.test('an unpaged feed has no pending; a long poll with changes waiting still answers at once', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store);
  await db.bulk({ docs: [{ _id: 'record:a' }, { _id: 'record:b' }] });
  const all = await db.changes();
  t.equal(all.results.length, 2);
  t.notOk('pending' in all, 'no limit: nothing to estimate');
  const longpoll = await db.changes({ feed: 'longpoll', limit: 1 });
  t.equal(longpoll.results.length, 1, 'a long poll with changes waiting answers at once');
});
