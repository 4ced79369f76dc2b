// Field audit item 3, with the built CLI: the server id a server is added under names its sync
// state on the phone, so it must be the server's real id. "servers add" asks the server over the
// verified TLS connection (learning the id when --server-id is left out, refusing a wrong one), a
// wrong certificate is refused at once, and the login refuses a server naming another id before
// the password is sent. The real server names itself in its challenge; a server naming another id
// is a local HTTPS stand-in presenting the real server's own certificate (the pin holds).
import t, { type Test } from 'tap';
import { startIdentityStandIn } from '@fieldvault/test-support';
import { PASSWORD_A, cli, json, startFileServer, type CliResult } from './helpers.js';

const { server: A } = await startFileServer(t, 'server-id');
await A.createUser('amina', PASSWORD_A);

function codeOf(r: CliResult): string | undefined {
  return /^fieldvault-field: error ([A-Z_]+):/m.exec(r.stderr)?.[1];
}

/** A stand-in with A's certificate whose challenge names `serverId` (closed when the test ends). */
async function telling(t: Test, serverId: string): Promise<{ url: string; paths: string[] }> {
  const standIn = await startIdentityStandIn(A, serverId);
  t.teardown(() => standIn.close());
  return standIn;
}

const servers = async (home: string): Promise<Record<string, string>> =>
  Object.fromEntries(json<{ servers: { name: string; serverId: string }[] }>(await cli(home, ['--json', 'servers', 'list'])).servers.map((s) => [s.name, s.serverId]));

t.test('servers add learns the id from a server that tells it, and refuses a --server-id it contradicts', async (t) => {
  const standIn = await telling(t, 'server-real');
  const home = t.testdir();
  const learned = await cli(home, ['--json', 'servers', 'add', 'real', standIn.url, '--pin', A.fingerprint]);
  t.equal(learned.code, 0, learned.stderr);
  t.match(json(learned), { name: 'real', serverId: 'server-real', serverIdCheck: 'told' });

  const wrong = await cli(home, ['servers', 'add', 'other', standIn.url, '--server-id', 'srv-nope', '--pin', A.fingerprint]);
  t.equal(codeOf(wrong), 'TRANSPORT_SERVER_ID_MISMATCH', wrong.stderr);
  t.match(wrong.stderr, /says its id is "server-real", not "srv-nope"/);
  t.same(await servers(home), { real: 'server-real' }, 'nothing was added');

  const again = await cli(home, ['servers', 'add', 'again', standIn.url, '--pin', A.fingerprint]);
  t.equal(codeOf(again), 'FIELD_SERVER_ID_EXISTS', 'the same server under a second name: the id is the problem');
  t.match(again.stderr, /server id server-real is configured as "real"/);
  t.notOk(standIn.paths.some((p) => p !== '/v1/auth/challenge'), 'only challenges were asked');
});

t.test('a server added offline under a wrong id is refused at login, before the password is sent', async (t) => {
  const standIn = await telling(t, 'server-real');
  const home = t.testdir();
  const offline = await cli(home, ['--json', 'servers', 'add', '--offline', 'office', standIn.url, '--server-id', 'srv-nope', '--pin', A.fingerprint]);
  t.equal(offline.code, 0, offline.stderr);
  t.match(json(offline), { serverId: 'srv-nope', serverIdCheck: 'offline' });
  t.same(standIn.paths, [], '--offline does not contact the server');
  const noId = await cli(home, ['servers', 'add', '--offline', 'x', standIn.url, '--pin', A.fingerprint]);
  t.equal(codeOf(noId), 'FIELD_USAGE');

  await cli(home, ['--password-stdin', '--user', 'amina', 'signup'], `${PASSWORD_A}\n`);
  const login = await cli(home, ['--password-stdin', 'login', 'office'], `${PASSWORD_A}\n`);
  t.equal(codeOf(login), 'TRANSPORT_SERVER_ID_MISMATCH', login.stderr);
  t.same(standIn.paths, ['/v1/auth/challenge'], 'no login request: the password was not sent');
});

t.test('the real server: a wrong pin is refused at servers add; the id is learned from it; an unreachable one needs --server-id', async (t) => {
  const home = t.testdir();
  const pin = await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', 'AA'.repeat(32)]);
  t.equal(codeOf(pin), 'TRANSPORT_TLS_UNTRUSTED');
  t.same(await servers(home), {});

  const bare = await cli(home, ['--json', 'servers', 'add', 'office', A.url, '--pin', A.fingerprint]);
  t.equal(bare.code, 0, bare.stderr);
  t.match(json(bare), { serverId: A.serverId, serverIdCheck: 'told' }, 'the server tells its id in the challenge');
  t.same(await servers(home), { office: A.serverId });
  const contradicted = await cli(home, ['servers', 'add', 'office2', A.url, '--server-id', 'srv-nope', '--pin', A.fingerprint]);
  t.equal(codeOf(contradicted), 'TRANSPORT_SERVER_ID_MISMATCH', 'and a wrong --server-id is refused');

  const down = await cli(home, ['--json', 'servers', 'add', 'down', 'https://127.0.0.1:9', '--server-id', 'server-down', '--pin', A.fingerprint]);
  t.match(json(down), { serverId: 'server-down', serverIdCheck: 'unreachable' }, 'an unreachable server is added with --server-id');
  const downBare = await cli(home, ['servers', 'add', 'down2', 'https://127.0.0.1:9', '--pin', A.fingerprint]);
  t.equal(codeOf(downBare), 'FIELD_USAGE');
});

t.test('status: a removed server keeps its sync state but shows no pending count that grows', async (t) => {
  const home = t.testdir();
  await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]);
  const login = await cli(home, ['--password-stdin', '--user', 'amina', 'sync', 'office'], `${PASSWORD_A}\n`);
  t.equal(login.code, 0, login.stderr);
  t.equal((await cli(home, ['servers', 'remove', 'office'])).code, 0);
  await cli(home, ['--password-stdin', '--user', 'amina', 'register', '--name', 'After the removal'], `${PASSWORD_A}\n`);
  const status = await cli(home, ['--password-stdin', '--user', 'amina', '--json', 'status'], `${PASSWORD_A}\n`);
  const view = json<{ servers: { name: string | null; serverId: string; configured: boolean; pending: unknown; lastSyncAt: string | null }[] }>(status);
  t.match(view.servers, [{ name: null, serverId: 'server-a', configured: false, pending: null }]);
  t.ok(view.servers[0]?.lastSyncAt, 'its last sync is still known');
  const human = await cli(home, ['--password-stdin', '--user', 'amina', 'status'], `${PASSWORD_A}\n`);
  t.match(human.stdout, /\(not configured\)\s+server-a\s+.*not configured: nothing is sent to it/);

  // Added back under its id, it resumes: only the new record is pending.
  await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]);
  const back = json<{ servers: { name: string | null; pending: { records: number } | null }[] }>(await cli(home, ['--password-stdin', '--user', 'amina', '--json', 'status'], `${PASSWORD_A}\n`));
  t.match(back.servers, [{ name: 'office', pending: { records: 1 } }]);
});
