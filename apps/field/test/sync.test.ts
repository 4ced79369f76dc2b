// Sync through the CLI (issue 5): two phones (two CLI homes, two IMEIs) and a REAL server process.
// A record registered offline with a photo reaches the other phone with its photo; the same record
// edited on both phones while apart ends the same on both, with the full history and a conflict
// marker; a supervisor resolves it; status shows pending counts per server before and after.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PASSWORD_A, PASSWORD_B, cli, cliWith, json, png, snapshot, startFileServer, type CliResult } from './helpers.js';

const PASSWORD_S = 'granite owls measure the slow river';

interface Summary {
  id: string;
  fields: Record<string, unknown>;
  photos: number;
  needsReview: boolean;
}

interface SyncJson {
  server: string;
  serverId: string;
  pushed: number;
  pulled: number;
  pulledChanged: number;
  failed: { id: string; code: string }[];
  conflicts: number;
  photos: { uploaded: number; downloaded: number; failed: unknown[] };
  deviceStatus: string;
  wiped: boolean;
}

interface StatusServer {
  name: string | null;
  serverId: string;
  lastSyncAt: string | null;
  pending: { records: number; photos: number } | null;
  role: string | null;
}

const { root, server: A } = await startFileServer(t, 'sync');
await A.createUser('amina', PASSWORD_A);
await A.createUser('bilal', PASSWORD_B);
await A.createUser('sam', PASSWORD_S, 'supervisor');

function ok(t: Test, r: CliResult, what: string): CliResult {
  t.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

async function sync(t: Test, home: string, password: string): Promise<SyncJson> {
  return json<SyncJson>(ok(t, await cliWith(home, password, ['--json', 'sync']), 'sync'));
}

async function servers(home: string, password: string): Promise<StatusServer[]> {
  return json<{ servers: StatusServer[] }>(await cliWith(home, password, ['--json', 'status'])).servers;
}

t.test('two phones share a record and its photo, and converge after concurrent edits', async (t) => {
  const phone1 = join(root, 'phone-1');
  const phone2 = join(root, 'phone-2');
  const photoFile = join(root, 'child.png');
  writeFileSync(photoFile, png());

  // Phone 1: amina works offline first.
  ok(t, await cliWith(phone1, PASSWORD_A, ['--user', 'amina', 'signup']), 'signup');
  const { record } = json<{ record: Summary }>(
    ok(t, await cliWith(phone1, PASSWORD_A, ['--json', 'register', '--name', 'Amina Yusuf', '--age', '7', '--location', 'Camp 3', '--photo', photoFile]), 'register'),
  );
  ok(t, await cli(phone1, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'servers add');
  t.match(await servers(phone1, PASSWORD_A), [{ name: 'office', pending: null, lastSyncAt: null }], 'unverified: nothing to sync with a server yet');

  // A sync before any online login is an online login (flow 1) followed by the sync.
  const first = await sync(t, phone1, PASSWORD_A);
  t.match(first, { server: 'office', serverId: 'server-a', failed: [], photos: { uploaded: 1, failed: [] }, deviceStatus: 'active', wiped: false });
  t.ok(first.pushed >= 1, 'the record was pushed');
  const after1 = await servers(phone1, PASSWORD_A);
  t.match(after1, [{ name: 'office', pending: { records: 0, photos: 0 }, role: 'field_worker' }]);
  t.type(after1[0]?.lastSyncAt, 'string', 'the last sync time is kept per server');

  // Phone 2: bilal logs in (his own phone, its own key) and pulls amina's record with its photo.
  ok(t, await cli(phone2, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--ca', A.certFile]), 'servers add --ca');
  ok(t, await cliWith(phone2, PASSWORD_B, ['--user', 'bilal', 'login']), 'login');
  const pulled = await sync(t, phone2, PASSWORD_B);
  t.match(pulled, { pushed: 0, photos: { downloaded: 1 }, failed: [] });
  t.ok(pulled.pulled >= 1);
  const onPhone2 = json<{ record: Summary; raw: { photos: Record<string, unknown> } }>(await cliWith(phone2, PASSWORD_B, ['--json', 'show', record.id]));
  t.same(onPhone2.record.fields, { name: 'Amina Yusuf', age: 7, location: 'Camp 3' });
  const photoId = Object.keys(onPhone2.raw.photos)[0] ?? '';
  const out1 = join(root, 'from-phone-1.png');
  const out2 = join(root, 'from-phone-2.png');
  ok(t, await cliWith(phone1, PASSWORD_A, ['photo', 'save', record.id, photoId, '--out', out1]), 'photo save 1');
  ok(t, await cliWith(phone2, PASSWORD_B, ['photo', 'save', record.id, photoId, '--out', out2]), 'photo save 2');
  t.ok(readFileSync(out1).equals(readFileSync(out2)), 'the same photo on both phones');

  // Both edit the same field while apart.
  ok(t, await cliWith(phone2, PASSWORD_B, ['edit', record.id, '--location', 'Camp 4']), 'edit on phone 2');
  ok(t, await cliWith(phone1, PASSWORD_A, ['edit', record.id, '--location', 'Camp 5', '--caregiver', 'Aunt Halima']), 'edit on phone 1');
  t.match(await servers(phone2, PASSWORD_B), [{ pending: { records: 1, photos: 0 } }], 'status counts the edit waiting for the server');
  await sync(t, phone2, PASSWORD_B);
  const merged = await sync(t, phone1, PASSWORD_A);
  t.equal(merged.conflicts, 1, 'the sync reports the conflict');
  await sync(t, phone2, PASSWORD_B);

  const shown1 = json<{ record: Summary; raw: { history: unknown[]; fields: unknown }; conflicts: { field: string; kept: { value: unknown }; lost: { value: unknown } }[] }>(
    await cliWith(phone1, PASSWORD_A, ['--json', 'show', record.id]),
  );
  const shown2 = json<typeof shown1>(await cliWith(phone2, PASSWORD_B, ['--json', 'show', record.id]));
  t.same(shown1.record.fields, shown2.record.fields, 'both phones hold the same values');
  t.same(shown1.raw.history, shown2.raw.history, 'and the same full history');
  t.equal(shown1.record.needsReview, true);
  t.equal(shown2.record.needsReview, true);
  t.equal(shown1.conflicts.length, 1);
  t.equal(shown1.conflicts[0]?.field, 'location');
  t.same(new Set([shown1.conflicts[0]?.kept.value, shown1.conflicts[0]?.lost.value]), new Set(['Camp 4', 'Camp 5']), 'both values are kept: one current, one in history');
  const human = await cliWith(phone2, PASSWORD_B, ['show', record.id]);
  t.match(human.stdout, /review\s+! NEEDS REVIEW: 1 concurrent edit/);
  t.match(human.stdout, /\(lost a concurrent edit\)/);
  const review = json<{ records: Summary[] }>(await cliWith(phone2, PASSWORD_B, ['--json', 'search', '--needs-review']));
  t.same(review.records.map((r) => r.id), [record.id]);

  // Server search (verified users, online).
  const found = json<{ where: string; records: Summary[]; nextCursor: string | null }>(
    ok(t, await cliWith(phone2, PASSWORD_B, ['--json', 'search', '--server', 'office', '--name', 'amina']), 'search --server'),
  );
  t.equal(found.where, 'server');
  t.same(found.records.map((r) => r.id), [record.id]);
  t.equal(found.nextCursor, null);

  // Only a supervisor resolves the conflict; then it clears on both phones.
  const refused = await cliWith(phone2, PASSWORD_B, ['resolve', record.id]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /error RECORD_FORBIDDEN/);
  ok(t, await cliWith(phone2, PASSWORD_S, ['--user', 'sam', 'login']), 'supervisor login (flow 3 on phone 2)');
  const resolved = ok(t, await cliWith(phone2, PASSWORD_S, ['resolve', record.id.slice(0, 8), 'location']), 'resolve');
  t.match(resolved.stdout, /resolved 1 conflict\(s\) of .*: location/);
  await sync(t, phone2, PASSWORD_S);
  await sync(t, phone1, PASSWORD_A);
  t.equal(json<{ record: Summary }>(await cliWith(phone1, PASSWORD_A, ['--json', 'show', record.id])).record.needsReview, false, 'resolved on phone 1 too');

  // Who reviewed the conflict, and when, is part of the record's history on every phone (field audit F3).
  const reviewed = ok(t, await cliWith(phone1, PASSWORD_A, ['show', record.id]), 'show after the review');
  t.match(reviewed.stdout, /review\s+no open conflicts; 1 reviewed by sam \(see history\)/);
  t.match(reviewed.stdout, /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z\s+sam\s+Location\s+conflict reviewed: kept Camp \d \(not Camp \d\)/);
  const lines = reviewed.stdout.split('\n');
  t.ok(lines.findIndex((l) => /conflict reviewed/.test(l)) > lines.findIndex((l) => /lost a concurrent edit/.test(l)), 'after the edits it reviews');
  const asJson = json<{ resolutions: { field: string; by: string | null; at: string | null; kept: unknown; lost: unknown }[] }>(await cliWith(phone1, PASSWORD_A, ['--json', 'show', record.id]));
  t.match(asJson.resolutions, [{ field: 'location', by: 'sam', at: /^\d{4}-/ }]);
  t.same(new Set([asJson.resolutions[0]?.kept, asJson.resolutions[0]?.lost]), new Set(['Camp 4', 'Camp 5']));
});

t.test("the summary's received line counts the records new or changed on this phone, not the phone's own changes sent back", async (t) => {
  const phone1 = join(root, 'received-1');
  const phone2 = join(root, 'received-2');
  for (const home of [phone1, phone2]) ok(t, await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'servers add');
  ok(t, await cliWith(phone1, PASSWORD_A, ['--user', 'amina', 'login']), 'amina login');
  const made: string[] = [];
  for (const name of ['Lina Odongo', 'Peter Lokiru']) {
    made.push(json<{ record: Summary }>(ok(t, await cliWith(phone1, PASSWORD_A, ['--json', 'register', '--name', name]), 'register')).record.id);
  }
  // The server also holds this file's earlier records: phone 1 receives those as new ones.
  const pushed = ok(t, await cliWith(phone1, PASSWORD_A, ['sync']), 'push');
  t.match(pushed.stdout, /^sent\s+2 record\(s\)$/m);
  t.match(
    pushed.stdout,
    /^received\s+\d+ new or changed record\(s\), 2 more this phone already had \(e\.g\. its own changes sent back\)$/m,
    'the two records pushed and sent back are not counted as received',
  );
  const nothing = ok(t, await cliWith(phone1, PASSWORD_A, ['sync']), 'sync again');
  t.match(nothing.stdout, /^received\s+0 new or changed record\(s\)$/m, 'nothing new, nothing sent back');

  ok(t, await cliWith(phone2, PASSWORD_B, ['--user', 'bilal', 'login']), 'bilal login');
  const first2 = json<SyncJson>(ok(t, await cliWith(phone2, PASSWORD_B, ['--json', 'sync']), 'bilal sync'));
  t.ok(first2.pulled >= 2, 'phone 2 receives the records');
  t.equal(first2.pulledChanged, first2.pulled, 'all of them new on phone 2');
  ok(t, await cliWith(phone2, PASSWORD_B, ['edit', made[0] ?? '', '--location', 'Camp 4']), 'edit on phone 2');
  const sent2 = json<SyncJson>(ok(t, await cliWith(phone2, PASSWORD_B, ['--json', 'sync']), 'bilal sends the edit'));
  t.match(sent2, { pushed: 1, pulled: 1, pulledChanged: 0 }, "phone 2's edit coming back is not new there");

  const edited = ok(t, await cliWith(phone1, PASSWORD_A, ['sync']), 'amina receives the edit');
  t.match(edited.stdout, /^received\s+1 new or changed record\(s\)$/m, 'the edit made on phone 2 counts 1');
});

t.test('a failed sync login changes nothing on the phone', async (t) => {
  const home = t.testdir();
  ok(t, await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'servers add');
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login']), 'login');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'Waiting child']), 'register');
  const before = snapshot(home);
  const wrong = await cliWith(home, 'certainly not the right password', ['sync']);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /error AUTH_INVALID_CREDENTIALS/);
  t.same(snapshot(home), before);
  const none = await cliWith(home, PASSWORD_A, ['sync', 'elsewhere']);
  t.match(none.stderr, /error FIELD_SERVER_UNKNOWN/);
  t.match(await servers(home, PASSWORD_A), [{ pending: { records: 1, photos: 0 } }], 'the record is still waiting');
  const human = ok(t, await cliWith(home, PASSWORD_A, ['sync']), 'sync');
  t.match(human.stdout, /server\s+office \(server-a\)\nsent\s+1 record\(s\)/);
  t.match(human.stdout, /failed\s+none/);
});

t.test('a blacklisted phone is wiped at its next sync, and forgets its user', async (t) => {
  const home = t.testdir();
  ok(t, await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'servers add');
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'login']), 'login');
  ok(t, await cliWith(home, PASSWORD_B, ['register', '--name', 'On a stolen phone']), 'register');
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  await A.deviceAction(imei, 'blacklist');
  const r = await cliWith(home, PASSWORD_B, ['sync']);
  t.equal(r.code, 1);
  t.match(r.stderr, /error DEVICE_BLACKLISTED: An admin of server "office" \(id server-a\) has blocked this phone .*so that server refused it.*the fieldvault data on this phone \(records, photos and keys\) has been removed\. Contact your admin/);
  t.notMatch(r.stderr, /The app must wipe/, 'not the SDK developer\'s instruction');
  const after = json<{ currentUser: string | null; users: unknown[]; databaseFiles: number }>(await cli(home, ['--json', 'status', '--locked']));
  t.same([after.currentUser, after.users, after.databaseFiles], [null, [], 0], 'no user, no key, no database left');

  // Another server (which never heard of the blacklisting) is not contacted at all (multi-server audit #1).
  ok(t, await cli(home, ['servers', 'add', '--offline', 'region', A.url, '--server-id', 'server-z', '--pin', A.fingerprint]), 'servers add region');
  const other = await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'login', 'region']);
  t.equal(other.code, 1);
  t.match(other.stderr, /error DEVICE_BLACKLISTED: An admin of server "office" \(id server-a\) has blocked this phone .*Nothing was sent: this phone contacts no other server until an admin of server "office" \(id server-a\) unblocks it/);
  // Nothing was sent to "region": the error is about the server that blocked the phone, and says so to scripts too.
  const asJson = await cliWith(home, PASSWORD_B, ['--user', 'bilal', '--json', 'login', 'region']);
  t.match(JSON.parse(asJson.stderr), { error: { code: 'DEVICE_BLACKLISTED', server: { name: 'office', id: 'server-a' } } });
});

t.test('a retired phone does its last sync from the CLI and then wipes itself', async (t) => {
  // The CLI keeps no session between commands (tokens live in memory only), so its last sync
  // starts with a fresh login, which a retired device allows for users who used it before.
  const home = t.testdir();
  ok(t, await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'servers add');
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'login']), 'login');
  ok(t, await cliWith(home, PASSWORD_B, ['register', '--name', 'Synced from a retired phone']), 'register');
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  await A.deviceAction(imei, 'retire');
  const r = await cliWith(home, PASSWORD_B, ['--json', 'sync']);
  t.equal(r.code, 0, r.stderr);
  const summary = json<{ pushed: number; wiped: boolean; deviceStatus: string }>(r);
  t.equal(summary.deviceStatus, 'retired');
  t.ok(summary.pushed >= 1, 'the last record reached the server');
  t.equal(summary.wiped, true);
  const after = json<{ users: unknown[]; databaseFiles: number }>(await cli(home, ['--json', 'status', '--locked']));
  t.same([after.users, after.databaseFiles], [[], 0], 'no user, no key, no database left');
});
