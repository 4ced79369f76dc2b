// Online errors in a field worker's words (new-user audit of apps/field): REAL server processes
// (two, for a phone that syncs with both), a real plain-HTTP listener for an https:// address on
// the wrong port. Each message must say what went wrong and what to do, not point at protocol docs.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PASSWORD_A, cli, cliWith, json, startFileServer, startServer, type CliResult } from './helpers.js';

const PASSWORD_S = 'granite owls measure the slow river';

const { root, server: A } = await startFileServer(t, 'words');
const B = await startServer(join(root, 'server-b'), 'server-b');
t.teardown(() => B.stop());
for (const s of [A, B]) await s.createUser('amina', PASSWORD_A);
// Sam reviews on A only: on B he is a field worker.
await A.createUser('sam', PASSWORD_S, 'supervisor');
await B.createUser('sam', PASSWORD_S);

/**
 * A phone configured with server "office" at `url` (written into config.json as "servers add" would
 * write it: this test is about what later commands say of a wrong address, whatever "servers add" checks).
 */
async function phoneWithServerAt(t: Test, url: string): Promise<string> {
  const home = t.testdir();
  ok(t, await cli(home, ['init']), 'init');
  const file = join(home, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...config, servers: { office: { url, serverId: A.serverId, pinSha256: [A.fingerprint] } } }));
  return home;
}

function ok(t: Test, r: CliResult, what: string): CliResult {
  t.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

async function addServers(home: string): Promise<void> {
  await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]);
  await cli(home, ['servers', 'add', 'branch', B.url, '--server-id', B.serverId, '--pin', B.fingerprint]);
}

/** No catalogue hint meant for app developers leaks into what the field worker reads. */
function noDeveloperWords(t: Test, text: string): void {
  t.notMatch(text, /docs\/protocol\.md|"since"|checkpoints per server|The app must wipe|intercepting/, 'no words aimed at developers');
}

interface SyncJson {
  pushed: number;
  pulled: number;
  conflicts: number;
  newConflicts: number;
  failed: { id: string; code: string; message: string }[];
}

t.test('a sync failure says what it means and what to do; a conflict known already is not new on the second server', async (t) => {
  const phone1 = join(root, 'phone-1');
  const phone2 = join(root, 'phone-2');
  await addServers(phone1);
  await addServers(phone2);
  ok(t, await cliWith(phone1, PASSWORD_A, ['--user', 'amina', 'login', 'office']), 'amina login');
  const { record } = json<{ record: { id: string } }>(ok(t, await cliWith(phone1, PASSWORD_A, ['--json', 'register', '--name', 'Two servers', '--location', 'Camp 1']), 'register'));
  ok(t, await cliWith(phone1, PASSWORD_A, ['sync', 'office']), 'sync');
  ok(t, await cliWith(phone2, PASSWORD_S, ['--user', 'sam', 'login', 'office']), 'sam login');
  ok(t, await cliWith(phone2, PASSWORD_S, ['sync', 'office']), 'sam sync');

  // The same field edited on both phones: amina's next sync with office finds the conflict.
  ok(t, await cliWith(phone2, PASSWORD_S, ['edit', record.id, '--location', 'Camp 2']), 'edit 2');
  ok(t, await cliWith(phone1, PASSWORD_A, ['edit', record.id, '--location', 'Camp 3']), 'edit 1');
  ok(t, await cliWith(phone2, PASSWORD_S, ['sync', 'office']), 'sync 2');
  const first = json<SyncJson>(ok(t, await cliWith(phone1, PASSWORD_A, ['--json', 'sync', 'office']), 'sync 1'));
  t.match(first, { conflicts: 1, newConflicts: 1 }, 'the conflict is new on this phone');
  const second = ok(t, await cliWith(phone1, PASSWORD_A, ['sync', 'branch']), 'sync with the second server');
  t.match(second.stdout, /conflicts\s+1 record\(s\) of this sync have an edit waiting for a supervisor's review \(none of them new on this phone\)/);
  // The record relayed to branch comes back from it: the phone had it already.
  t.match(second.stdout, /received\s+0 new or changed record\(s\), \d+ more this phone already had/);
  t.notMatch(second.stdout, /now need review/);

  // Sam may delete amina's record as a supervisor of office, but branch knows him as a field worker.
  ok(t, await cliWith(phone2, PASSWORD_S, ['delete', record.id]), 'delete (supervisor on office)');
  const refused = await cliWith(phone2, PASSWORD_S, ['sync', 'branch']);
  t.equal(refused.code, 1, 'a refused record makes the sync exit 1');
  t.match(refused.stdout, new RegExp(`record ${record.id.slice(0, 8)} \\(RECORD_FORBIDDEN\\): The server does not let your account make this change .*It stays on this phone and is sent again at every sync: ask your supervisor`));
  const asJson = json<SyncJson>(await cliWith(phone2, PASSWORD_S, ['--json', 'sync', 'branch']));
  t.match(asJson.failed, [{ id: record.id, code: 'RECORD_FORBIDDEN', message: /does not let your account make this change/ }], '--json adds the message');
  noDeveloperWords(t, refused.stdout);
});

t.test('a cursor that does not belong to the search is a plain "run it without --cursor"', async (t) => {
  const home = t.testdir();
  await addServers(home);
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'office']), 'login');
  const r = await cliWith(home, PASSWORD_A, ['search', '--server', 'office', '--name', 'x', '--cursor', 'garbage']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^fieldvault-field: error SYNC_CHECKPOINT_INVALID: The --cursor value is not valid for this search on office.*Run the search again without --cursor/);
  noDeveloperWords(t, r.stderr);
  const big = await cliWith(home, PASSWORD_A, ['search', '--server', 'office', '--limit', '500']);
  t.equal(big.code, 2, 'a limit the server does not allow is a usage error, not silently cut');
  t.match(big.stderr, /FIELD_USAGE: .*--limit: a server returns at most 100 results per page/);
});

t.test('a server address with a path after the port is not a fieldvault base address', async (t) => {
  const home = await phoneWithServerAt(t, `${A.url}/fieldvault`);
  const r = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login']);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`error INPUT_ROUTE_NOT_FOUND: The address of server "office" \\(${A.url}/fieldvault\\) is not the base address of a fieldvault server`));
  t.match(r.stderr, /https:\/\/HOST:PORT exactly as the server prints it.*"fieldvault-field servers remove office"/);
  noDeveloperWords(t, r.stderr);
});

t.test('https:// to a port that speaks plain HTTP says so, not "someone may be intercepting"', async (t) => {
  const plain = createServer((_req, res) => res.end('plain http'));
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => plain.close(() => resolve())));
  const url = `https://127.0.0.1:${(plain.address() as AddressInfo).port}`;
  const home = await phoneWithServerAt(t, url);
  const r = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login']);
  t.equal(r.code, 1);
  t.match(r.stderr, /error TRANSPORT_TLS_UNTRUSTED: The address of server "office" .* starts with https:\/\/, but the program at that port does not speak HTTPS/);
  noDeveloperWords(t, r.stderr);
});

t.test('a locked account says for how long, and what to do', async (t) => {
  await A.createUser('lena', PASSWORD_A);
  const home = t.testdir();
  ok(t, await cli(home, ['init']), 'init');
  ok(t, await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'servers add');
  // The server locks an account after 10 wrong passwords in a row (for 60 s the first time).
  for (let i = 0; i < 10; i++) {
    const wrong = await cliWith(home, `not the password of lena ${i}`, ['--user', 'lena', 'login', 'office']);
    t.equal(wrong.code, 1);
  }
  const locked = await cliWith(home, PASSWORD_A, ['--user', 'lena', 'login', 'office']);
  t.equal(locked.code, 1);
  t.match(locked.stderr, /error AUTH_ACCOUNT_LOCKED: Too many wrong passwords were tried for this account, so server "office" \(id server-a\) has locked it for now: try again in (about 1 minute|\d+ seconds?)\./);
  t.match(locked.stderr, /ask your admin for a password reset/);
  noDeveloperWords(t, locked.stderr);
});
