import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { addPhoto, applyEdit, createClock, createRecord, type ChildRecord } from '@fieldvault/protocol';
import { AMINA, BARAKA, cli, errorCode, json, pushAs, recordsServer, type RecordsServer } from './helpers.js';

// Multi-server audit M4: after two phones had synced the same records through servers A and B,
// `inventory` showed different digests (it covers pushedBy, receivedAt, _rev…), and nothing told
// an admin whether A and B had converged. `records digest` compares the records' content only;
// `records diff` names the records that differ. Two real server processes on the embedded store,
// records sent with the protocol's push from device-signed phone sessions.
const dir = t.testdir();
const clock = createClock({ node: AMINA.imei, now: Date.now });

function edit(record: ChildRecord, field: string, value: string | number | boolean, by: { readonly name: string; readonly imei: string }): ChildRecord {
  return applyEdit(record, { field, value, by: by.name, device: by.imei, ts: clock.now() });
}

interface Digest {
  server: string;
  count: number;
  deleted: number;
  digest: string;
}

const a = await recordsServer(dir, 'a', { FIELDVAULT_SERVER_ID: 'srv-a' });
t.teardown(() => a.server.stop());
const b = await recordsServer(dir, 'b', { FIELDVAULT_SERVER_ID: 'srv-b' });
t.teardown(() => b.server.stop());
let final: ChildRecord[] = [];

// The same records reach A and B by different paths: on A amina pushes them as made, then baraka
// his edit and amina her deletion; on B baraka pushes the final state first, in reverse order, and
// amina's older copies arrive after it. pushedBy, receivedAt, revisions and seqs all differ.
t.before(async () => {
  const made = ['Amani', 'Baraka', 'Chiku'].map((name) => createRecord({ id: randomUUID(), createdBy: AMINA.name, device: AMINA.imei, clockTs: clock.now(), fields: { name, age: 7 } }));
  made[0] = addPhoto(made[0]!, randomUUID(), { sha256: 'cd'.repeat(32), size: 2048, type: 'image/jpeg', by: AMINA.name, ts: clock.now() });
  const edited = edit(made[1]!, 'age', 8, BARAKA);
  const deleted = edit(made[2]!, '_deleted', true, AMINA);
  final = [made[0]!, edited, deleted];
  await pushAs(a, AMINA.name, made);
  await pushAs(a, BARAKA.name, [edited]);
  await pushAs(a, AMINA.name, [deleted]);
  await pushAs(b, BARAKA.name, [...final].reverse());
  await pushAs(b, AMINA.name, made);
});

t.test('two servers that received the same records differently show the same records digest', async (t) => {
  const da = json<Digest>(await cli(a.home, ['--json', 'records', 'digest']));
  const db = json<Digest>(await cli(b.home, ['--json', 'records', 'digest']));
  t.equal(da.server, a.server.url);
  t.equal(db.server, b.server.url);
  t.match(da, { count: 3, deleted: 1, digest: /^[0-9a-f]{64}$/ });
  t.equal(da.digest, db.digest, 'equal digests');
  t.equal(da.count, db.count);

  const inventory = async (s: RecordsServer): Promise<string> => json<{ digests: Record<string, string> }>(await cli(s.home, ['--json', 'inventory'])).digests['records'] ?? '';
  t.not(await inventory(a), await inventory(b), 'the inventory still differs: it digests what each server stamped');

  const text = await cli(a.home, ['records', 'digest']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /^records\s+3 \(1 deleted\)$/m);
  t.match(text.stdout, new RegExp(`^digest\\s+${da.digest}$`, 'm'));
  t.match(text.stdout, 'Equal digests on two servers mean the same records with the same content.');

  const diff = await cli(a.home, ['records', 'diff', a.home, b.home]);
  t.equal(diff.code, 0, diff.stderr);
  t.match(diff.stdout, 'equal: A and B hold the same 3 records with the same content.');
  const same = json<{ equal: boolean; differences: unknown[] }>(await cli(a.home, ['--json', 'records', 'diff', a.home, b.home]));
  t.equal(same.equal, true, 'JSON: equal');
  t.equal(same.differences.length, 0);
});

t.test('a record that differs makes the digests differ, and diff names it, from homes or from saved lists', async (t) => {
  const changed = edit(final[0]!, 'name', 'Amani K.', BARAKA);
  await pushAs(b, BARAKA.name, [changed]);
  const extra = createRecord({ id: randomUUID(), createdBy: AMINA.name, device: AMINA.imei, clockTs: clock.now(), fields: { name: 'Dalila' } });
  await pushAs(a, AMINA.name, [extra]);

  const da = json<Digest>(await cli(a.home, ['--json', 'records', 'digest']));
  const db = json<Digest>(await cli(b.home, ['--json', 'records', 'digest']));
  t.not(da.digest, db.digest, 'different digests');
  t.equal(da.count, 4);
  t.equal(db.count, 3);

  type Diff = { equal: boolean; a: Digest & { source: string }; b: Digest & { source: string }; differences: Array<{ id: string; a: { digest: string; updatedAt: string } | null; b: { digest: string; updatedAt: string } | null }> };
  const live = json<Diff>(await cli(a.home, ['--json', 'records', 'diff', a.home, b.home]));
  t.equal(live.equal, false);
  t.match(live.a, { source: a.home, server: a.server.url, count: 4, digest: da.digest });
  t.match(live.b, { source: b.home, server: b.server.url, count: 3, digest: db.digest });
  const byId = new Map(live.differences.map((d) => [d.id, d]));
  t.same([...byId.keys()].sort(), [changed.id, extra.id].sort(), 'the changed record and the one only A holds');
  t.equal(byId.get(extra.id)?.b, null, 'only on A');
  t.ok((byId.get(changed.id)?.b?.updatedAt ?? '') > (byId.get(changed.id)?.a?.updatedAt ?? ''), 'B holds the later change');

  const fileA = join(dir, 'a.json');
  const fileB = join(dir, 'b.json');
  for (const [s, file] of [
    [a, fileA],
    [b, fileB],
  ] as const) {
    const listed = await cli(s.home, ['--json', 'records', 'digest', '--list']);
    t.equal(listed.code, 0, listed.stderr);
    writeFileSync(file, listed.stdout);
  }
  t.equal(json<Digest & { records: unknown[] }>({ code: 0, stdout: readFileSync(fileA, 'utf8'), stderr: '' }).records.length, 4);
  const saved = json<Diff>(await cli(a.home, ['--json', 'records', 'diff', fileA, fileB]));
  t.same(saved.differences, live.differences, 'saved lists give the same answer');
  t.equal(saved.a.digest, da.digest, 'a saved list adds up to the server\'s digest');

  const text = await cli(a.home, ['records', 'diff', fileA, b.home]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, 'not equal: 1 only on A, 0 only on B, 1 with different content');
  t.match(text.stdout, new RegExp(`^${extra.id}\\s+changed .*\\s+missing$`, 'm'));
  t.match(text.stdout, new RegExp(`^${changed.id}\\s+changed `, 'm'));

  const edited = JSON.parse(readFileSync(fileA, 'utf8')) as { records: Array<{ digest: string }> };
  edited.records[0]!.digest = '0'.repeat(64);
  writeFileSync(fileA, JSON.stringify(edited));
  t.equal(errorCode(await cli(a.home, ['--json', 'records', 'diff', fileA, fileB])), 'ADMIN_FILE_UNREADABLE', 'an edited list is refused');
  // Removing the digest (or making it no string) must not skip the check that refuses an edited list.
  for (const [label, digest] of [
    ['without its digest', undefined],
    ['with a digest that is no string', 42],
  ] as const) {
    const cut = JSON.parse(readFileSync(fileB, 'utf8')) as { digest?: unknown };
    if (digest === undefined) delete cut.digest;
    else cut.digest = digest;
    const file = join(dir, 'b-no-digest.json');
    writeFileSync(file, JSON.stringify(cut));
    t.equal(errorCode(await cli(a.home, ['--json', 'records', 'diff', fileB, file])), 'ADMIN_FILE_UNREADABLE', `a list ${label} is refused`);
  }
  t.equal(errorCode(await cli(a.home, ['--json', 'records', 'diff', join(dir, 'nothing-here'), fileB])), 'ADMIN_FILE_UNREADABLE');
  t.equal(errorCode(await cli(a.home, ['--json', 'records', 'diff', join(dir, 'a'), fileB])), 'ADMIN_NOT_LOGGED_IN', 'a directory that is no logged-in home');
});

t.test('only an admin session may ask for the digests', async (t) => {
  for (const path of ['/v1/admin/records/digest', '/v1/admin/records/digests']) {
    const res = await a.server.call('GET', path, undefined, a.tokens[AMINA.name]);
    t.equal(res.status, 403, path);
    t.equal(res.body['code'], 'AUTH_FORBIDDEN');
    t.equal((await a.server.call('GET', path)).status, 401);
  }
  await cli(a.home, ['logout']);
  t.equal(errorCode(await cli(a.home, ['--json', 'records', 'digest'])), 'ADMIN_NOT_LOGGED_IN');
});
