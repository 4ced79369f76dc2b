// Field audit #18, with the built CLI against two REAL server processes: after flow 4 (two users,
// two servers, the loser's database migrated into the winner), "status --locked" must describe the
// phone as it is — one verified database shared by both users — and not as the keyring entries of
// the user who has not logged in since still name it (a temporary database of the second server).
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PASSWORD_A, PASSWORD_B, cli, cliWith, json, startFileServer, startServer, type CliResult } from './helpers.js';

const { root, server: A } = await startFileServer(t, 'flow4-status');
const B = await startServer(join(root, 'server-b'), 'server-b');
t.teardown(() => B.stop());
await A.createUser('amina', PASSWORD_A);
await B.createUser('amina', PASSWORD_A);
await B.createUser('bilal', PASSWORD_B);

interface StatusView {
  users: { username: string; kinds: string[] }[];
  databases: { kind: string; users: string[]; key?: { keyId: string; issuer: string } }[];
  databaseFiles: number;
  servers: { name: string | null; serverId: string; pending: { records: number; photos: number } | null }[];
}

function ok(t: Test, r: CliResult, what: string): CliResult {
  t.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

t.test('after flow 4, status --locked shows one verified database with both users, before either logs in again', async (t) => {
  const home = t.testdir();
  ok(t, await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'add office');
  ok(t, await cli(home, ['servers', 'add', 'branch', B.url, '--server-id', B.serverId, '--pin', B.fingerprint]), 'add branch');

  // Flow 4, step 1: amina holds office's key (verified); bilal, who cannot open it, gets branch's
  // key in a temporary database.
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'office']), 'amina login office');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'Lina Odongo', '--location', 'Camp 3']), 'amina register');
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'login', 'branch']), 'bilal login branch');
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'register', '--name', 'Rose Akello', '--location', 'Market road']), 'bilal register');
  const before = json<StatusView>(ok(t, await cli(home, ['--json', 'status', '--locked']), 'status before'));
  t.same(
    before.databases.map((d) => [d.kind, d.users]),
    [
      ['verified', ['amina']],
      ['temporary:server-b', ['bilal']],
    ],
    'the precondition: a verified and a temporary database',
  );
  t.equal(before.databaseFiles, 2);

  // Step 2: amina logs in to branch with office's key; branch keeps its own (newer) key, and the
  // phone migrates the verified database into the temporary one, which becomes the verified one.
  const login = json<{ database: string; keyIssuer: string; records: number }>(
    ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', '--json', 'login', 'branch']), 'amina login branch'),
  );
  t.match(login, { database: 'verified', keyIssuer: 'server-b', records: 2 }, 'amina now sees both records under branch\'s key');

  // Bilal has not logged in since: the locked view must not name a temporary database any more.
  const after = json<StatusView>(ok(t, await cli(home, ['--json', 'status', '--locked']), 'status after'));
  t.equal(after.databaseFiles, 1, 'one database file is left');
  t.same(
    after.databases.map((d) => [d.kind, d.users]),
    [['verified', ['amina', 'bilal']]],
    'one verified database, both users on it',
  );
  t.equal(after.databases[0]?.key?.issuer, 'server-b');
  t.same(
    after.users.map((u) => [u.username, u.kinds]),
    [
      ['amina', ['verified']],
      ['bilal', ['verified']],
    ],
    'each user can open the verified database',
  );
  // Without a password no pending count is shown at all (none is cached on the phone to go stale).
  t.same(
    after.servers.map((s) => [s.name, s.pending]).sort(),
    [
      ['branch', null],
      ['office', null],
    ],
    'no pending counts in the locked view',
  );
  const human = ok(t, await cli(home, ['status', '--locked']), 'status after, as text');
  t.notMatch(human.stdout, /temporary/, 'the text view names no temporary database either');

  // Bilal's offline login agrees with the locked view, and leaves it as it was.
  const bilal = json<{ session: { database: string; records: number } }>(ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', '--json', 'status']), 'bilal status'));
  t.match(bilal.session, { database: 'verified', records: 2 });
  const again = json<StatusView>(ok(t, await cli(home, ['--json', 'status', '--locked']), 'status after bilal'));
  t.same(again.databases, after.databases);
});
