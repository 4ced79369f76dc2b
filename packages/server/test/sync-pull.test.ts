import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Value } from '@sinclair/typebox/value';
import { PullResponseSchema, addPhoto, isDeleted, type ChildRecord, type PullResponse } from '@fieldvault/protocol';
import { bearer, json, makeApp, setupAdmin, startStore } from './helpers.js';
import { edit, newRecord, phoneFor, pull, pullAll, push } from './sync-helpers.js';

// Issue 5 item 2: GET /v1/sync/pull — pages from an opaque checkpoint over CouchDB's changes feed.
const couch = await startStore(t);

t.test('pull pages from a checkpoint: every record once, tombstones included, nothing twice', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const records = Array.from({ length: 25 }, (_, i) => newRecord(amina, { name: `Child ${i}`, age: i % 15 }));
  await push(app, amina.token, records);

  const seen: string[] = [];
  const remaining: Array<number | undefined> = [];
  let since: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await pull(app, bilal.token, since, 10);
    t.ok(Value.Check(PullResponseSchema, page), 'the page matches the shared schema');
    remaining.push(page.remaining);
    pages += 1;
    seen.push(...page.records.map((r) => r.id));
    since = page.checkpoint;
    if (!page.more) break;
  }
  t.equal(pages, 3);
  // The first page has 9 records: the feed's first row is the records database's design document.
  t.same(remaining, [16, 6, 0], "each page says how many changes follow it (the store's pending), for the phone's progress bar");
  t.equal(seen.length, 25, 'no duplicates across pages');
  t.same([...new Set(seen)].sort(), records.map((r) => r.id).sort(), 'every record');

  const caughtUp = await pull(app, bilal.token, since, 10);
  t.same([caughtUp.records, caughtUp.more], [[], false], 'nothing new');
  t.equal(caughtUp.serverTime, clock.now(), "issue 5: the page carries the server's clock (a phone behind takes the page in relative to it)");
  t.equal(caughtUp.checkpoint, since, 'the checkpoint stays put');

  clock.advance(1_000);
  const deleted = edit(amina, records[3]!, '_deleted', true);
  const renamed = edit(amina, records[7]!, 'name', 'Renamed');
  await push(app, amina.token, [deleted, renamed]);
  const delta = await pull(app, bilal.token, since, 10);
  t.same(delta.records.map((r) => r.id).sort(), [deleted.id, renamed.id].sort(), 'only what changed since the checkpoint');
  const tombstone = delta.records.find((r) => r.id === deleted.id) as ChildRecord;
  t.ok(isDeleted(tombstone), 'a deletion is a record with _deleted true');
  t.equal(tombstone.fields['name']?.value, 'Child 3', 'the tombstone keeps its history and values');
  t.equal(delta.more, false);
});

t.test('a pulled record is exactly the stored record, every value type intact', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  let record = newRecord(amina, {
    name: 'Ünïcode “name” \u2028 <b>',
    age: 7.5,
    sex: 'other',
    caregiver: null,
    protection_concerns: ['separated', 'refugee'],
    flagged: false,
    reunited: true,
  });
  record = addPhoto(record, '3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d', { sha256: 'a'.repeat(64), size: 12, type: 'image/png', by: 'amina', ts: amina.clock.now() });
  record = edit(amina, record, 'age', 8);
  await push(app, amina.token, [record]);
  const [pulled] = (await pull(app, bilal.token)).records as [ChildRecord];
  t.strictSame(pulled, record);
});

t.test('a page stops at the byte budget and the rest follows', async (t) => {
  const ta = await makeApp(t, couch, { sync: { pullMaxBytes: 4_096 } });
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const records = Array.from({ length: 6 }, (_, i) => newRecord(amina, { name: `Long ${i}`, notes: 'n'.repeat(1_500) }));
  await push(app, amina.token, records);
  const first = await pull(app, amina.token, undefined, 100);
  t.ok(first.records.length >= 1 && first.records.length < 6, `a short page (${first.records.length})`);
  t.equal(first.more, true);
  const all = await pullAll(app, amina.token, 100);
  t.equal(new Set(all.records.map((r) => r.id)).size, 6);
  t.equal(all.records.length, 6);
});

t.test('a page written without the schema serializer is the same JSON: content type, headers, shape and budget in UTF-8 bytes', async (t) => {
  // The pull answer is serialised with JSON.stringify (http/json-reply.ts, docs/performance.md); this pins what that must keep.
  const ta = await makeApp(t, couch, { sync: { pullMaxBytes: 6_000 } });
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const records = Array.from({ length: 5 }, (_, i) => newRecord(amina, { name: `Budget ${i} “ü”`, notes: 'é'.repeat(1_000) }));
  await push(app, amina.token, records);
  const res = await app.inject({ method: 'GET', url: '/v1/sync/pull?limit=100', headers: bearer(amina.token) });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^application\/json; charset=utf-8$/, 'JSON, UTF-8');
  t.equal(res.headers['cache-control'], 'no-store', 'the security headers are still set');
  t.equal(res.headers['x-content-type-options'], 'nosniff');
  const page = JSON.parse(res.body) as PullResponse;
  t.ok(Value.Check(PullResponseSchema, page), 'the page matches the shared schema');
  t.same(Object.keys(page), ['records', 'checkpoint', 'more', 'deviceStatus', 'serverTime', 'remaining'], 'every member once');
  const sizes = page.records.map((r) => Buffer.byteLength(JSON.stringify(r), 'utf8'));
  t.ok(page.records.length >= 1 && page.more, `a short page (${page.records.length} records)`);
  t.ok(sizes.length === 1 || sizes.reduce((a, b) => a + b, 0) <= 6_000, 'the records fit the budget in bytes');
  const byId = new Map(records.map((r) => [r.id, r]));
  for (const r of page.records) t.same(r, byId.get(r.id), `record ${r.id} as pushed`);
  const bad = await app.inject({ method: 'GET', url: '/v1/sync/pull?since=not.valid', headers: bearer(amina.token) });
  t.same(Object.keys(bad.json() as object).sort(), ['code', 'error', 'message', 'statusCode'], 'an error is still the catalogued error body');
});

t.test('a tampered, foreign or malformed checkpoint is refused with SYNC_CHECKPOINT_INVALID', async (t) => {
  const ta = await makeApp(t, couch);
  const other = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const { token: otherAdmin } = await setupAdmin(other.app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  await push(app, amina.token, [newRecord(amina, { name: 'One' }), newRecord(amina, { name: 'Two' })]);
  const page = await pull(app, amina.token, undefined, 1);
  const [body, mac] = page.checkpoint.split('.') as [string, string];
  const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { v: number; s: unknown };
  const forgedBody = Buffer.from(JSON.stringify({ ...payload, s: 0 })).toString('base64url');
  const foreign = (await pull(other.app, otherAdmin)).checkpoint;
  const cases: Array<[string, string]> = [
    ['altered sequence', `${forgedBody}.${mac}`],
    ['altered mac', `${body}.${Buffer.from(randomBytes(16)).toString('base64url')}`],
    ['no mac', body],
    ['another server', foreign],
    ['not even base64url', '%7B%7D'],
  ];
  for (const [name, since] of cases) {
    const res = await app.inject({ method: 'GET', url: `/v1/sync/pull?since=${since}`, headers: bearer(amina.token) });
    t.equal(res.statusCode, 400, name);
    t.ok(['SYNC_CHECKPOINT_INVALID', 'INPUT_INVALID'].includes(json(res)['code'] as string), `${name}: ${String(json(res)['code'])}`);
  }
  const forged = await app.inject({ method: 'GET', url: `/v1/sync/pull?since=${forgedBody}.${mac}`, headers: bearer(amina.token) });
  t.equal(json(forged)['code'], 'SYNC_CHECKPOINT_INVALID');
  const limit = await app.inject({ method: 'GET', url: '/v1/sync/pull?limit=1001', headers: bearer(amina.token) });
  t.equal(json(limit)['code'], 'INPUT_INVALID', 'limit is capped at 1000');
});

t.test('read-ahead: pages served from the next page read early are the pages read on request, and it decides nothing', async (t) => {
  // The same pulls against one store with read-ahead on (default) and off.
  const on = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(on.app);
  const amina = await phoneFor(on.app, admin, on.clock, 'amina');
  const bilal = await phoneFor(on.app, admin, on.clock, 'bilal');
  const records = Array.from({ length: 35 }, (_, i) => newRecord(amina, { name: `Child ${i}`, age: i % 15 }));
  await push(on.app, amina.token, records);
  const off = await makeApp(t, couch, { couch: { dbPrefix: on.app.fieldvaultConfig.couch.dbPrefix }, sync: { pullReadAhead: 0 }, kek: on.config.kek, setupToken: null });

  const walk = async (app: typeof on.app, token: string, midway?: () => Promise<void>) => {
    const pages: Array<{ ids: string[]; checkpoint: string; more: boolean }> = [];
    let since: string | undefined;
    for (;;) {
      const page = await pull(app, token, since, 10);
      pages.push({ ids: page.records.map((r) => r.id), checkpoint: page.checkpoint, more: page.more });
      since = page.checkpoint;
      if (pages.length === 1) await midway?.();
      if (!page.more) return pages;
    }
  };
  const linesBefore = on.logs.lines.length;
  const withReadAhead = await walk(on.app, bilal.token);
  const served = on.logs.lines.slice(linesBefore).filter((l) => l.includes('"msg":"sync pull"')).map((l) => JSON.parse(l) as { readAhead: boolean });
  t.same(served.map((l) => l.readAhead), [false, true, true, true], 'every page after the first came from the read-ahead');
  // Same database and KEK: bilal's session is valid there and checkpoints encode the same.
  const withoutReadAhead = await walk(off.app, bilal.token);
  t.same(withReadAhead, withoutReadAhead, 'same records, same order, same checkpoints');

  // A record written after its page was read ahead still arrives, at its new position.
  const carol = await phoneFor(on.app, admin, on.clock, 'carol');
  const late = newRecord(amina, { name: 'Written while page 2 was held' });
  const seen = (await walk(on.app, carol.token, () => push(on.app, amina.token, [late]).then(() => undefined))).flatMap((p) => p.ids);
  t.ok(seen.includes(late.id), 'the late record is pulled');
  t.equal(new Set(seen).size, 36, 'every record, none twice');
});

t.test('read-ahead: a device blacklisted after its first page gets no held page', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  await push(app, amina.token, Array.from({ length: 15 }, (_, i) => newRecord(amina, { name: `Child ${i}` })));
  const first = await pull(app, bilal.token, undefined, 10);
  t.ok(first.more);
  await app.inject({ method: 'POST', url: `/v1/devices/${bilal.device.imei}/blacklist`, headers: bearer(admin), payload: {} });
  const res = await app.inject({ method: 'GET', url: `/v1/sync/pull?since=${encodeURIComponent(first.checkpoint)}&limit=10`, headers: bearer(bilal.token) });
  t.equal(res.statusCode, 403);
  t.equal(json(res)['code'], 'DEVICE_BLACKLISTED');
  t.notMatch(res.body, /Child 1[0-4]/, 'nothing of the held page is sent');
});
