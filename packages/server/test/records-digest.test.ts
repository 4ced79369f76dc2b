import { createHash, randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { addPhoto, type ChildRecord } from '@fieldvault/protocol';
import { bearer, json, makeApp, setupAdmin, startStore, type TestApp } from './helpers.js';
import { edit, newRecord, phoneFor, pullAll, push as pushAny, type Phone } from './sync-helpers.js';

// Multi-server audit M4: `GET /v1/admin/records/digest` (and the per-record list) compare two
// servers' records by content only, as the scenario harness does, so two servers that converged
// show the same digest whatever each stamped around the records (pushedBy, receivedAt, _rev, seq)
// and whatever order the records arrived in.
const couch = await startStore(t);

/** A push every record of which the server took (an error would make "equal" vacuous). */
async function push(app: Server['ta']['app'], token: string, records: readonly ChildRecord[]): Promise<void> {
  const res = await pushAny(app, token, records);
  const failed = res.results.filter((r) => r.status === 'error');
  if (failed.length > 0) throw new Error(`push refused: ${JSON.stringify(failed)}`);
}

interface Server {
  readonly ta: TestApp;
  readonly admin: string;
  readonly amina: Phone;
  readonly baraka: Phone;
}

async function server(t: Test, serverId: string): Promise<Server> {
  const ta = await makeApp(t, couch, { serverId });
  const admin = (await setupAdmin(ta.app)).token;
  const amina = await phoneFor(ta.app, admin, ta.clock, 'amina');
  const baraka = await phoneFor(ta.app, admin, ta.clock, 'baraka');
  return { ta, admin, amina, baraka };
}

async function get(s: Server, url: string, token = s.admin): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await s.ta.app.inject({ method: 'GET', url, headers: bearer(token) });
  return { status: res.statusCode, body: json(res) };
}

async function digestOf(s: Server): Promise<{ count: number; deleted: number; digest: string }> {
  const res = await get(s, '/v1/admin/records/digest');
  if (res.status !== 200) throw new Error(`digest: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { count: number; deleted: number; digest: string };
}

interface Entry {
  id: string;
  digest: string;
  deleted: boolean;
  updatedAt: string;
}

async function listOf(s: Server, limit: number): Promise<{ records: Entry[]; pages: number }> {
  const records: Entry[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await get(s, `/v1/admin/records/digests?limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`);
    if (res.status !== 200) throw new Error(`list: ${res.status} ${JSON.stringify(res.body)}`);
    pages += 1;
    records.push(...(res.body['records'] as Entry[]));
    cursor = res.body['nextCursor'] as string | null;
  } while (cursor !== null);
  return { records, pages };
}

/**
 * The scenario harness's comparison (packages/scenarios, invariants.ts), written out here apart
 * from the server's code: canonical JSON of each record as the sync pull returns it.
 */
function harnessCanonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(harnessCanonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${harnessCanonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** The documented digest computed from what the harness reads (every record, pulled by the admin). */
async function expectedDigest(s: Server): Promise<string> {
  const { records } = await pullAll(s.ta.app, s.admin);
  const lines = records
    .map((r) => ({ id: r.id, digest: sha256(harnessCanonical(r)) }))
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((e) => `${e.id} ${e.digest}\n`);
  return sha256(lines.join(''));
}

/**
 * The same three records reach A and B by different paths: on A amina pushes them as made, then
 * baraka pushes his edit and amina her deletion; on B baraka pushes the final state first, in
 * reverse order, and amina's older copies arrive afterwards (they merge into nothing new). Both
 * servers then hold the same content, with different pushedBy, receivedAt, revisions and seqs.
 */
async function sameRecordsDifferentPaths(t: Test): Promise<{ a: Server; b: Server; records: ChildRecord[] }> {
  const a = await server(t, 'server-a');
  const b = await server(t, 'server-b');
  b.ta.clock.advance(300_000); // B's receivedAt differs from A's (within the admin session)
  const made = ['Amani', 'Baraka', 'Chiku'].map((name) => newRecord(a.amina, { name, age: 7 }));
  made[0] = addPhoto(made[0]!, randomUUID(), { sha256: 'ab'.repeat(32), size: 1234, type: 'image/jpeg', by: 'amina', ts: a.amina.clock.now() });
  a.ta.clock.advance(1_000); // the edits are later than the records they change
  const edited = edit(a.baraka, made[1]!, 'age', 8);
  const deleted = edit(a.amina, made[2]!, '_deleted', true);
  const final = [made[0]!, edited, deleted];

  await push(a.ta.app, a.amina.token, made);
  await push(a.ta.app, a.baraka.token, [edited]);
  await push(a.ta.app, a.amina.token, [deleted]);

  await push(b.ta.app, b.baraka.token, [...final].reverse());
  b.ta.clock.advance(60_000);
  await push(b.ta.app, b.amina.token, made);
  return { a, b, records: final };
}

t.test('two servers holding the same records by different paths show the same digest', async (t) => {
  const { a, b } = await sameRecordsDifferentPaths(t);
  const da = await digestOf(a);
  const db = await digestOf(b);
  t.same(da, db, 'equal digests');
  t.equal(da.count, 3);
  t.equal(da.deleted, 1, 'the deleted record is counted, and said deleted');
  t.match(da.digest, /^[0-9a-f]{64}$/);
  t.equal(da.digest, await expectedDigest(a), 'the digest is the documented one over the records the harness compares');

  // Why a new route: the inventory digests the stored documents with their server-local data.
  const inventory = async (s: Server): Promise<string> => ((await get(s, '/v1/admin/backup/inventory')).body['digests'] as Record<string, string>)['records'] ?? '';
  t.not(await inventory(a), await inventory(b), 'the inventory differs (pushedBy, receivedAt, _rev)');
});

t.test('a record that differs on one server changes its digest, and the per-record list names it', async (t) => {
  const { a, b, records } = await sameRecordsDifferentPaths(t);
  const changed = edit(b.amina, records[0]!, 'name', 'Amani K.');
  await push(b.ta.app, b.amina.token, [changed]);
  t.not((await digestOf(a)).digest, (await digestOf(b)).digest, 'one changed field: different digests');

  const la = (await listOf(a, 1000)).records;
  const lb = (await listOf(b, 1000)).records;
  const differ = la.filter((e, i) => lb[i]?.id === e.id && lb[i]?.digest !== e.digest).map((e) => e.id);
  t.same(differ, [changed.id], 'only the edited record differs');
  t.ok((lb.find((e) => e.id === changed.id)?.updatedAt ?? '') > (la.find((e) => e.id === changed.id)?.updatedAt ?? ''), 'B holds the later change');

  // The same change reaching A makes them equal again.
  a.ta.clock.advance(600_000); // A's clock catches up with B's (else the change is too far ahead)
  await push(a.ta.app, a.baraka.token, [changed]);
  t.same(await digestOf(a), await digestOf(b), 'converged again');

  // A record only one server holds: the count and the digest differ.
  await push(a.ta.app, a.amina.token, [newRecord(a.amina, { name: 'Dalila' })]);
  const [da, db] = [await digestOf(a), await digestOf(b)];
  t.equal(da.count, 4);
  t.equal(db.count, 3);
  t.not(da.digest, db.digest);
});

t.test('the per-record list pages by record id and adds up to the digest', async (t) => {
  const a = await server(t, 'server-a');
  const records = Array.from({ length: 7 }, (_, i) => newRecord(a.amina, { name: `child ${i}` }));
  await push(a.ta.app, a.amina.token, records);
  const whole = await listOf(a, 1000);
  const paged = await listOf(a, 2);
  t.equal(whole.pages, 1);
  t.equal(paged.pages, 4, '2 + 2 + 2 + 1');
  t.same(paged.records, whole.records);
  t.same(whole.records.map((e) => e.id), records.map((r) => r.id).sort(), 'every record, in id order');
  t.ok(whole.records.every((e) => !e.deleted));
  const total = sha256(whole.records.map((e) => `${e.id} ${e.digest}\n`).join(''));
  t.equal(total, (await digestOf(a)).digest, 'the digest is the hash of the list lines');
  const bad = await get(a, '/v1/admin/records/digests?cursor=not-a-record-id');
  t.equal(bad.status, 400);
  t.equal(bad.body['code'], 'INPUT_INVALID');
});

t.test('a server without records has the digest of nothing', async (t) => {
  const a = await server(t, 'server-a');
  t.same(await digestOf(a), { count: 0, deleted: 0, digest: sha256('') });
  t.same((await listOf(a, 10)).records, []);
});

t.test('only admins may ask: other roles are refused, no session is refused', async (t) => {
  const a = await server(t, 'server-a');
  const supervisor = await phoneFor(a.ta.app, a.admin, a.ta.clock, 'sam', 'supervisor');
  for (const url of ['/v1/admin/records/digest', '/v1/admin/records/digests']) {
    for (const [who, token] of [
      ['field worker', a.amina.token],
      ['supervisor', supervisor.token],
    ] as const) {
      const res = await get(a, url, token);
      t.equal(res.status, 403, `${who}: ${url}`);
      t.equal(res.body['code'], 'AUTH_FORBIDDEN');
    }
    const anonymous = await a.ta.app.inject({ method: 'GET', url });
    t.equal(anonymous.statusCode, 401, `no session: ${url}`);
  }
});
