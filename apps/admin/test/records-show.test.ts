import { randomUUID } from 'node:crypto';
import t from 'tap';
import { applyEdit, createClock, createRecord, type ChildRecord } from '@fieldvault/protocol';
import { AMINA, BARAKA, cli, errorCode, json, pushAs, recordsServer } from './helpers.js';

// Admin audit c-report F3: "which user and phone sent record X, and when" had no answer short of
// reading the store. `records show ID` prints the server's stamps and the record's state, never a
// field value. A real server process on the embedded store; records pushed from phone sessions
// (recordsServer in helpers.ts, shared with records.test.ts).
const dir = t.testdir();
const SECRET = 'Zawadi Mwanaisha-7731';
const SECRET_EDIT = 'Zawadi Mwanaisha-Kombo-4402';
const clock = createClock({ node: AMINA.imei, now: Date.now });

const s = await recordsServer(dir, 'srv');
t.teardown(() => s.server.stop());
const { home } = s;
const push = (user: string, records: readonly ChildRecord[]): Promise<void> => pushAs(s, user, records);

interface Shown {
  record: Record<string, unknown> & { lastVersion: { by: string; device: string } };
}

t.test('records show: who pushed a record first and last, from which phone, when; no values', async (t) => {
  const made = createRecord({ id: randomUUID(), createdBy: AMINA.name, device: AMINA.imei, clockTs: clock.now(), fields: { name: SECRET, age: 7 } });
  await push(AMINA.name, [made]);
  const edited = applyEdit(made, { field: 'name', value: SECRET_EDIT, by: BARAKA.name, device: BARAKA.imei, ts: clock.now() });
  await push(BARAKA.name, [edited]);

  const shown = await cli(home, ['--json', 'records', 'show', made.id]);
  t.equal(shown.code, 0, shown.stderr);
  const { record } = json<Shown>(shown);
  t.match(record, {
    id: made.id,
    deleted: false,
    createdBy: AMINA.name,
    createdFrom: AMINA.imei,
    versions: 3,
    firstVersion: { by: AMINA.name, device: AMINA.imei },
    lastVersion: { by: BARAKA.name, device: BARAKA.imei },
    pushedBy: BARAKA.name,
    pushedFrom: BARAKA.imei,
    firstPushedBy: AMINA.name,
    needsReview: false,
    openConflicts: 0,
    photos: 0,
  });
  t.ok(Date.parse(record['firstReceivedAt'] as string) <= Date.parse(record['receivedAt'] as string), 'first received no later than last');

  const text = await cli(home, ['records', 'show', made.id]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, new RegExp(`^record\\s+${made.id}$`, 'm'));
  t.match(text.stdout, /^deleted\s+no$/m);
  t.match(text.stdout, new RegExp(`^created\\s+by amina on ${AMINA.imei}, \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ \\(phone clock\\)$`, 'm'));
  t.match(text.stdout, /^first pushed\s+by amina, received \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/m);
  t.match(text.stdout, new RegExp(`^last pushed\\s+by baraka from ${BARAKA.imei}, received `, 'm'));
  t.match(text.stdout, /^versions\s+3$/m);
  t.match(text.stdout, new RegExp(`^last version\\s+.* by baraka on ${BARAKA.imei}$`, 'm'));
  t.match(text.stdout, /^conflicts\s+none open \(0 resolved\)$/m);
  t.match(text.stdout, 'Field values are not shown');
  for (const out of [shown.stdout, text.stdout]) {
    t.notMatch(out, SECRET, 'no field value');
    t.notMatch(out, 'Kombo', 'no field value');
  }

  const help = await cli(home, ['records', 'show', '--help']);
  t.match(help.stdout, 'who pushed one record, from which phone and when');
  t.match(help.stdout, 'Field values are not shown');
});

t.test('records show: an unknown id, a malformed id', async (t) => {
  const unknown = await cli(home, ['--json', 'records', 'show', randomUUID()]);
  t.not(unknown.code, 0);
  t.equal(errorCode(unknown), 'RECORD_NOT_FOUND');
  const bad = await cli(home, ['--json', 'records', 'show', 'not-a-record-id']);
  t.equal(bad.code, 2, 'a usage error');
  t.equal(errorCode(bad), 'ADMIN_USAGE');
});
