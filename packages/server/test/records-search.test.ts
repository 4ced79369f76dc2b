import t from 'tap';
import type { FastifyInstance } from 'fastify';
import type { ChildRecord, RecordSearchResponse } from '@fieldvault/protocol';
import { bearer, json, makeApp, setupAdmin, startStore } from './helpers.js';
import { edit, newRecord, phoneFor, push, type Phone } from './sync-helpers.js';

// Issue 5 item 4: GET /v1/records/search — typed criteria only, over a CouchDB view, paged.
const couch = await startStore(t);

async function search(app: FastifyInstance, token: string, query: string): Promise<RecordSearchResponse> {
  const res = await app.inject({ method: 'GET', url: `/v1/records/search?${query}`, headers: bearer(token) });
  if (res.statusCode !== 200) throw new Error(`search failed: ${res.statusCode} ${res.body}`);
  return res.json() as RecordSearchResponse;
}

/** Every page of a search; checks no record comes twice. */
async function searchAll(app: FastifyInstance, token: string, query: string): Promise<{ names: string[]; pages: number }> {
  const names: string[] = [];
  const ids = new Set<string>();
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: RecordSearchResponse = await search(app, token, `${query}${cursor === null ? '' : `&cursor=${cursor}`}`);
    pages += 1;
    for (const r of page.records) {
      if (ids.has(r.id)) throw new Error(`record ${r.id} came twice`);
      ids.add(r.id);
      names.push(String(r.fields['name']?.value));
    }
    cursor = page.nextCursor;
  } while (cursor !== null);
  return { names: names.sort(), pages };
}

async function world(t: Parameters<typeof makeApp>[0], overrides: Parameters<typeof makeApp>[2] = {}): Promise<{ app: FastifyInstance; amina: Phone; records: ChildRecord[] }> {
  const { app, clock } = await makeApp(t, couch, overrides);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const records = [
    newRecord(amina, { name: 'Amina Yusuf', age: 7, location: 'Gulu town', flagged: true }),
    newRecord(amina, { name: 'Amira Okello', age: 9, location: 'Kitgum', reunited: true }),
    newRecord(amina, { name: 'Omar Yusuf', age: 12, location: 'Gulu', flagged: true, reunited: true }),
    newRecord(amina, { name: 'Grace Amito', age: 4, sex: 'female', location: 'Lira' }),
    newRecord(bilal, { name: 'Amani Amani Amos', age: 15, location: 'Gulu', flagged: true }),
    newRecord(bilal, { name: 'Peter', location: 'Arua' }),
  ];
  await push(app, amina.token, records.slice(0, 4));
  await push(app, bilal.token, records.slice(4));
  return { app, amina, records };
}

t.test('search by name finds words by prefix, case-insensitively, each record once', async (t) => {
  const { app, amina } = await world(t);
  t.same((await searchAll(app, amina.token, 'name=AM')).names, ['Amani Amani Amos', 'Amina Yusuf', 'Amira Okello', 'Grace Amito']);
  t.same((await searchAll(app, amina.token, 'name=yus%20ami')).names, ['Amina Yusuf']);
  t.same((await searchAll(app, amina.token, 'name=zzz')).names, []);
  t.same((await searchAll(app, amina.token, 'name=am&location=gulu')).names, ['Amani Amani Amos', 'Amina Yusuf']);
  t.same((await searchAll(app, amina.token, 'location=gulu')).names, ['Amani Amani Amos', 'Amina Yusuf', 'Omar Yusuf']);
});

t.test('search by age range, flags, sex and creator', async (t) => {
  const { app, amina } = await world(t);
  t.same((await searchAll(app, amina.token, 'ageMin=5&ageMax=12')).names, ['Amina Yusuf', 'Amira Okello', 'Omar Yusuf']);
  t.same((await searchAll(app, amina.token, 'ageMin=12')).names, ['Amani Amani Amos', 'Omar Yusuf']);
  t.same((await searchAll(app, amina.token, 'flagged=true')).names, ['Amani Amani Amos', 'Amina Yusuf', 'Omar Yusuf']);
  t.same((await searchAll(app, amina.token, 'flagged=true&reunited=true')).names, ['Omar Yusuf']);
  t.same((await searchAll(app, amina.token, 'flagged=true&reunited=false&ageMax=10')).names, ['Amina Yusuf']);
  t.same((await searchAll(app, amina.token, 'sex=female')).names, ['Grace Amito']);
  t.same((await searchAll(app, amina.token, 'createdBy=bilal')).names, ['Amani Amani Amos', 'Peter']);
  t.same((await searchAll(app, amina.token, '')).names.length, 6, 'no criteria: every record');
});

t.test('pages follow the cursor without duplicates, also when the work cap ends a page early', async (t) => {
  const { app, amina } = await world(t, { search: { maxScan: 100 } });
  const many = Array.from({ length: 130 }, (_, i) => newRecord(amina, { name: `Bulk child ${String(i).padStart(3, '0')}`, flagged: i % 2 === 0 }));
  await push(app, amina.token, many);
  const first = await search(app, amina.token, 'name=bulk&limit=7');
  t.equal(first.records.length, 7);
  t.type(first.nextCursor, 'string');
  const all = await searchAll(app, amina.token, 'name=bulk&limit=7');
  t.equal(all.names.length, 130);
  const flagged = await searchAll(app, amina.token, 'flagged=true&name=bulk&limit=100');
  t.equal(flagged.names.length, 65);
  // Only 5 of the 130 rows scanned per page can match: the cap (100 rows) ends pages early.
  const sparse = await searchAll(app, amina.token, 'limit=100&name=child%200%20bulk&ageMax=100');
  t.same(sparse.names, []);
  const capped = await search(app, amina.token, 'createdBy=amina&name=zzz');
  t.same(capped.records, []);
});

t.test('search terms never reach the log', async (t) => {
  const ta = await makeApp(t, couch, { logLevel: 'trace' });
  const { app, clock, logs } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  await push(app, amina.token, [newRecord(amina, { name: 'Zawadi Nakato', location: 'Bidibidi' })]);
  t.equal((await search(app, amina.token, 'name=zawadi&location=bidibidi')).records.length, 1);
  t.match(logs.text(), /\/v1\/records\/search\?\[redacted\]/, 'the request is logged');
  t.notOk(/zawadi|bidibidi/i.test(logs.text()), 'without what was searched for');
});

t.test('deleted records are left out unless asked for', async (t) => {
  const { app, amina, records } = await world(t);
  await push(app, amina.token, [edit(amina, records[0]!, '_deleted', true)]);
  t.same((await searchAll(app, amina.token, 'name=amina')).names, []);
  t.same((await searchAll(app, amina.token, 'name=amina&includeDeleted=true')).names, ['Amina Yusuf']);
});

t.test('bad criteria and foreign cursors are refused', async (t) => {
  const { app, amina } = await world(t);
  const page = await search(app, amina.token, 'name=am&limit=1');
  const cases: Array<[string, string]> = [
    [`name=om&limit=1&cursor=${page.nextCursor as string}`, 'SYNC_CHECKPOINT_INVALID'],
    ['name=am&cursor=abc.def', 'SYNC_CHECKPOINT_INVALID'],
    ['ageMin=10&ageMax=5', 'INPUT_INVALID'],
    ['ageMin=ten', 'INPUT_INVALID'],
    ['name=%24%2C%20-', 'INPUT_INVALID'],
    ['selector=%7B%7D', 'INPUT_INVALID'],
    ['flagged=maybe', 'INPUT_INVALID'],
    ['limit=1000', 'INPUT_INVALID'],
    ['createdBy=%7B%22%24gt%22%3Anull%7D', 'INPUT_INVALID'],
  ];
  for (const [query, code] of cases) {
    const res = await app.inject({ method: 'GET', url: `/v1/records/search?${query}`, headers: bearer(amina.token) });
    t.equal(json(res)['code'], code, query);
  }
  t.same((await search(app, amina.token, `name=${encodeURIComponent('{"$gt":null}')}`)).records, [], 'an operator is just text');
  t.equal((await app.inject({ method: 'GET', url: '/v1/records/search?name=am' })).statusCode, 401);
});
