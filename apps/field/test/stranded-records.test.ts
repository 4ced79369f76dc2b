// Field audit items 1 and 2, with the built CLI against a REAL server process: an invited user
// sets her server password with the admin's token ("set-password"), but signed up on the phone
// earlier with another password. Her online login must warn that records were left behind and
// name the command; "status" must show them; "claim-records" (current password, then the phone
// password) moves them, a wrong phone password changes nothing, and the next sync sends them.
import { join } from 'node:path';
import t from 'tap';
import { PASSWORD_A, PASSWORD_B, cli, json, png, snapshot, startFileServer, type CliResult } from './helpers.js';

const { server: A } = await startFileServer(t, 'stranded');

/** The password carol chose on the phone at sign-up. */
const PHONE_PASSWORD = PASSWORD_A;
/** The password carol set on the server with her invitation token. */
const SERVER_PASSWORD = PASSWORD_B;

function codeOf(r: CliResult): string | undefined {
  return /^fieldvault-field: error ([A-Z_]+):/m.exec(r.stderr)?.[1];
}

/** Runs the CLI with --password-stdin and these lines on standard input. */
function withLines(home: string, lines: readonly string[], args: readonly string[]): Promise<CliResult> {
  return cli(home, ['--password-stdin', ...args], lines.map((l) => `${l}\n`).join(''));
}

async function invite(username: string): Promise<string> {
  const made = await A.admin('POST', '/v1/users', { username, role: 'field_worker' });
  if (made.status !== 201) throw new Error(JSON.stringify(made.body));
  return (made.body['invitation'] as { token: string }).token;
}

interface StatusView {
  users: { username: string; kinds: string[] }[];
  databases: { kind: string; users: string[] }[];
  databaseFiles: number;
  strandedUnverified: { user: string; next: string }[];
}

t.test('set-password redeems an invitation token: the policy is checked first, the token is never printed, and it works once', async (t) => {
  const home = t.testdir();
  t.equal((await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint])).code, 0);
  const token = await invite('amina');

  const short = await withLines(home, [token, 'too short'], ['set-password', 'office']);
  t.equal(codeOf(short), 'PASSWORD_TOO_SHORT', short.stderr);
  const named = await withLines(home, [token, 'amina keeps a long password'], ['--user', 'amina', 'set-password']);
  t.equal(codeOf(named), 'PASSWORD_TOO_COMMON', 'with --user the name is checked as the server does');
  const malformed = await withLines(home, ['not-a-token', PASSWORD_A], ['set-password']);
  t.equal(codeOf(malformed), 'INPUT_INVALID');

  const set = await withLines(home, [token, PASSWORD_A], ['--json', 'set-password', 'office']);
  t.equal(set.code, 0, set.stderr);
  t.match(json(set), { user: 'amina', role: 'field_worker', server: { name: 'office', serverId: 'server-a' }, next: /login office/ });
  const human = await withLines(home, [token, PASSWORD_B], ['set-password']);
  t.equal(codeOf(human), 'AUTH_RESET_TOKEN_INVALID', 'a used token is refused by the server');
  for (const r of [short, named, malformed, set, human]) t.notOk((r.stdout + r.stderr).includes(token), 'the token is never printed');

  const login = await withLines(home, [PASSWORD_A], ['--user', 'amina', '--json', 'login', 'office']);
  t.equal(login.code, 0, login.stderr);
  t.match(json(login), { user: 'amina', mode: 'online', database: 'verified', unverifiedRecordsLocked: null });
});

t.test('records signed up offline under another password: login warns, status shows them, claim-records moves them, sync sends them', async (t) => {
  const home = t.testdir({ 'grace.png': png() });
  await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]);
  const set = await withLines(home, [await invite('carol'), SERVER_PASSWORD], ['set-password']);
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, /user\s+carol \(field_worker\)/);

  t.equal((await withLines(home, [PHONE_PASSWORD], ['--user', 'carol', 'signup'])).code, 0);
  const grace = await withLines(home, [PHONE_PASSWORD], ['--json', 'register', '--name', 'Grace Atim', '--age', '4', '--photo', join(home, 'grace.png')]);
  t.equal(grace.code, 0, grace.stderr);
  const graceId = json<{ record: { id: string } }>(grace).record.id;

  const login = await withLines(home, [SERVER_PASSWORD], ['login']);
  t.equal(login.code, 0, login.stderr);
  t.match(login.stderr, /warning: carol also has an unverified database on this phone .* does not open/);
  t.match(login.stderr, /Move them with: fieldvault-field claim-records/);
  t.match(login.stdout, /records\s+0 \(not counting the unverified records this password does not open/);
  const loginJson = json(await withLines(home, [SERVER_PASSWORD], ['--json', 'login']));
  t.match(loginJson, { database: 'verified', records: 0, unverifiedRecordsLocked: { next: /claim-records/ } });
  t.same(await A.records(), [], 'nothing reached the server');

  const status = await withLines(home, [SERVER_PASSWORD], ['--json', 'status']);
  t.match(json<StatusView>(status), { strandedUnverified: [{ user: 'carol', next: 'fieldvault-field claim-records' }], databaseFiles: 2 });
  const locked = await cli(home, ['status', '--locked']);
  t.match(locked.stdout, /Unverified records left behind[^\n]*\n\s+carol: move them into the verified database with "fieldvault-field claim-records"/, 'shown without a password too');

  const before = snapshot(join(home, 'sdk'));
  const wrong = await withLines(home, [SERVER_PASSWORD, 'violet kites above the salt flats'], ['claim-records']);
  t.equal(codeOf(wrong), 'VAULT_WRONG_PASSWORD', wrong.stderr);
  t.same(snapshot(join(home, 'sdk')), before, 'a wrong phone password changes nothing');
  const asUnverified = await withLines(home, [PHONE_PASSWORD], ['claim-records']);
  t.equal(codeOf(asUnverified), 'VAULT_FORBIDDEN', 'the phone password alone opens only the unverified database');
  t.match(asUnverified.stderr, /password of your online login/);

  const claimed = await withLines(home, [SERVER_PASSWORD, PHONE_PASSWORD], ['--json', 'claim-records']);
  t.equal(claimed.code, 0, claimed.stderr);
  t.match(json(claimed), { user: 'carol', database: 'verified', moved: 1, photos: 1 });
  const again = await withLines(home, [SERVER_PASSWORD], ['claim-records']);
  t.match(again.stdout, /nothing: you have no unverified records left behind/);

  const sync = await withLines(home, [SERVER_PASSWORD], ['sync']);
  t.equal(sync.code, 0, sync.stderr);
  const onServer = await A.records();
  t.same(onServer.map((r) => r.id), [graceId], 'Grace reached the server, once');
  const after = json<StatusView>(await withLines(home, [SERVER_PASSWORD], ['--json', 'status']));
  t.same(after.strandedUnverified, []);
  t.same(after.users, [{ username: 'carol', kinds: ['verified'] }]);
  t.equal(after.databaseFiles, 1, 'the unverified database is gone');
});
