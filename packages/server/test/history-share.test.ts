import t from 'tap';
import type { ChildRecord } from '@fieldvault/protocol';
import { makeApp, setupAdmin, startStore } from './helpers.js';
import { edit, newRecord, phoneFor, pull, push, recordDoc } from './sync-helpers.js';

// Security audit (s9, H3): one field worker could fill someone else's record up to maxHistory
// with junk versions, after which nobody could edit it. The last quarter of the history is kept
// for the record's creator, supervisors and admins (records/access.ts, assertHistoryShare).
const couch = await startStore(t);
const MAX_HISTORY = 40; // three quarters: 30 versions anyone who can edit may fill

/** `record` with `n` more versions of `field` by `phone`'s user (or the author named). */
function stuffed(phone: Parameters<typeof edit>[0], record: ChildRecord, n: number, by?: string): ChildRecord {
  let r = record;
  for (let i = 0; i < n; i++) {
    const next = edit(phone, r, 'location', `junk ${i}`);
    r = by === undefined ? next : { ...next, history: next.history.map((v, k) => (k === next.history.length - 1 ? { ...v, by } : v)) };
  }
  return r;
}

t.test("a field worker cannot fill the last quarter of someone else's record; its creator and supervisors still edit it", async (t) => {
  const ta = await makeApp(t, couch, { sync: { maxHistory: MAX_HISTORY } });
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const sam = await phoneFor(app, admin, clock, 'sam', 'supervisor');
  const record = newRecord(amina, { name: 'Child of Amina' });
  t.equal((await push(app, amina.token, [record])).results[0]?.status, 'ok');
  const start = record.history.length;

  // Bilal may add versions up to three quarters of the limit (30 versions in all)...
  clock.advance(1_000);
  const upToShare = stuffed(bilal, record, 30 - start);
  t.match((await push(app, bilal.token, [upToShare])).results[0], { status: 'ok', changed: true }, 'up to the shared part: accepted');

  // ...but not one more, also not attributed to the creator (versions are unsigned).
  const before = await recordDoc(couch.url, ta, record.id);
  for (const [why, attempt] of [
    ['as himself', stuffed(bilal, upToShare, 5)],
    ['naming amina as the author', stuffed(bilal, upToShare, 5, 'amina')],
  ] as const) {
    const refused = (await push(app, bilal.token, [attempt])).results[0];
    t.same([refused?.status, refused?.code, refused?.field], ['error', 'RECORD_HISTORY_RESERVED', 'history'], `over the shared part, ${why}: refused`);
  }
  t.same(await recordDoc(couch.url, ta, record.id), before, 'the stored record is unchanged (same revision)');

  // The creator and a supervisor can still edit it, up to the limit itself.
  const [current] = (await pull(app, amina.token)).records.filter((r) => r.id === record.id) as [ChildRecord];
  t.equal(current.history.length, 30);
  clock.advance(1_000);
  const byAmina = stuffed(amina, current, 5);
  t.match((await push(app, amina.token, [byAmina])).results[0], { status: 'ok', changed: true }, 'the creator edits it');
  clock.advance(1_000);
  const bySam = stuffed(sam, byAmina, 5);
  t.match((await push(app, sam.token, [bySam])).results[0], { status: 'ok', changed: true }, 'a supervisor edits it');
  const overLimit = (await push(app, sam.token, [stuffed(sam, bySam, 1)])).results[0];
  t.equal(overLimit?.code, 'RECORD_TOO_LARGE', 'the limit itself still holds for everyone');

  // A push that adds no versions (the same record again) is not refused by the share.
  t.match((await push(app, bilal.token, [bySam])).results[0], { status: 'ok', changed: false }, 'a field worker may push it again unchanged');
});

t.test('a field worker relaying a new record of someone else is held to the shared part too; their own records are not', async (t) => {
  const { app, clock } = await makeApp(t, couch, { sync: { maxHistory: MAX_HISTORY } });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const foreign = stuffed(bilal, newRecord(bilal, { name: 'Relayed' }, { createdBy: 'amina' }), 35);
  t.equal((await push(app, bilal.token, [foreign])).results[0]?.code, 'RECORD_HISTORY_RESERVED', 'a relayed record already in the reserved part is refused');
  const own = stuffed(bilal, newRecord(bilal, { name: 'His own' }), 35);
  t.match((await push(app, bilal.token, [own])).results[0], { status: 'ok', changed: true }, 'his own record may use the whole history');
  t.match((await push(app, amina.token, [foreign])).results[0], { status: 'ok', changed: true }, "the creator's phone brings it in");
});
