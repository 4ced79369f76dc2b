// Issue 7 §4, pending sign-ups from the field CLI: `request-account` and `account-status` of the
// built CLI against a REAL server process. A user who signed up offline asks for an account; their
// records wait in the server's quarantine; an admin (the fixture's admin session, through the admin
// HTTP API) approves or rejects; approved, the user logs in online with the phone password and the
// server holds each record once. Refusals print their code and change nothing.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PASSWORD_A, PASSWORD_B, cli, cliWith, json, snapshot, startFileServer, type CliResult } from './helpers.js';

interface RequestView {
  user: string;
  server: { name: string; serverId: string };
  status: string;
  requestedAt: string;
  sent: number;
  quarantined: number;
  failed: unknown[];
  next: string;
}

interface StatusView {
  user: string;
  server: { name: string; serverId: string };
  status: string;
  requestedAt: string;
  decidedAt: string | null;
  next: string;
}

const { root, server: A } = await startFileServer(t, 'account');

/** Long and uncommon, but not zoe's. */
const WRONG_PASSWORD = 'violet kites above the salt flats';
/** Not zoe's either, and it breaks the password rules (a common word, repeated). */
const WRONG_COMMON_PASSWORD = 'passwordpasswordpassword';

/** The error code a failed command printed (`fieldvault-field: error CODE: …`). */
function codeOf(r: CliResult): string | undefined {
  return /^fieldvault-field: error ([A-Z_]+):/m.exec(r.stderr)?.[1];
}

/** A phone with `user` signed up offline, `records` registered, and the server added as "office". */
async function phoneWith(home: string, user: string, password: string, records: readonly string[]): Promise<string[]> {
  const signup = await cliWith(home, password, ['--user', user, 'signup']);
  if (signup.code !== 0) throw new Error(signup.stderr);
  const ids: string[] = [];
  for (const name of records) ids.push(json<{ record: { id: string } }>(await cliWith(home, password, ['--json', 'register', '--name', name])).record.id);
  const added = await cli(home, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]);
  if (added.code !== 0) throw new Error(added.stderr);
  return ids;
}

/** The admin's view of a request (status, records in quarantine), or the error code. */
async function signupOnServer(username: string): Promise<{ status?: string; records?: number; code?: string }> {
  const res = await A.admin('GET', `/v1/signups/${username}`);
  if (res.status !== 200) return { code: res.body['code'] as string };
  const signup = res.body['signup'] as { status: string; records: number };
  return { status: signup.status, records: signup.records };
}

t.test('request, pending, approval, online login: the records reach the server once', async (t) => {
  const home = t.testdir();
  const ids = await phoneWith(home, 'amina', PASSWORD_A, ['Lina Odongo', 'Joseph Okello']);
  const before = snapshot(join(home, 'sdk'));

  const asked = await cliWith(home, PASSWORD_A, ['--json', 'request-account', 'office']);
  t.equal(asked.code, 0, asked.stderr);
  const view = json<RequestView>(asked);
  t.match(view, { user: 'amina', server: { name: 'office', serverId: 'server-a' }, status: 'pending', sent: 2, quarantined: 2, failed: [] });
  t.match(view.next, /account-status office/);
  t.notOk((asked.stdout + asked.stderr).includes(PASSWORD_A), 'the password is not printed');
  t.same(await signupOnServer('amina'), { status: 'pending', records: 2 }, 'the records wait in quarantine');
  t.same((await A.records()).filter((r) => ids.includes(r.id)), [], 'and are not in the records database');
  // The first signed call makes the device key pair (once, by design); nothing else on the phone changes.
  const after = snapshot(join(home, 'sdk'));
  t.ok(after['device-key.json']);
  delete after['device-key.json'];
  t.same(after, before, 'no database or keyring changed');
  t.match(json(await cliWith(home, PASSWORD_A, ['--json', 'status'])), { databases: [{ kind: 'unverified', users: ['amina'] }], session: { records: 2 } });

  const pending = await cli(home, ['account-status']);
  t.equal(pending.code, 0, pending.stderr);
  t.match(pending.stdout, /^user\s+amina$/m);
  t.match(pending.stdout, /^server\s+office \(server-a\)$/m);
  t.match(pending.stdout, /^request\s+pending \(asked \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\)$/m);
  t.match(pending.stdout, /^next\s+wait for an admin of office to approve it; check with "fieldvault-field account-status office"$/m);

  // Asking again while pending renews the request: the same records are held once, not twice.
  const again = await cliWith(home, PASSWORD_A, ['--json', 'request-account']);
  t.equal(again.code, 0, again.stderr);
  t.match(json(again), { status: 'pending', sent: 2, quarantined: 2, requestedAt: view.requestedAt });
  t.same(await signupOnServer('amina'), { status: 'pending', records: 2 });

  // Only the phone that asked learns anything, and another phone can't take the name meanwhile.
  const other = mkdtempSync(join(root, 'second-phone-'));
  await phoneWith(other, 'amina', PASSWORD_B, []);
  const elsewhere = await cliWith(other, PASSWORD_B, ['request-account']);
  t.equal(elsewhere.code, 1);
  t.equal(codeOf(elsewhere), 'SIGNUP_PENDING_ELSEWHERE');
  t.equal(codeOf(await cli(other, ['account-status'])), 'SIGNUP_NOT_FOUND');

  const approved = await A.admin('POST', '/v1/signups/amina/approve', {});
  t.equal(approved.status, 200, JSON.stringify(approved.body));
  const status = json<StatusView>(await cli(home, ['--json', 'account-status', 'office']));
  t.match(status, { user: 'amina', status: 'approved', requestedAt: view.requestedAt });
  t.type(status.decidedAt, 'string');
  t.match(status.next, /fieldvault-field login office/);
  const human = await cli(home, ['account-status']);
  t.match(human.stdout, /^request\s+approved \S+ \S+ \(asked /m);
  t.match(human.stdout, /^next\s+log in online with the password you chose on this phone: "fieldvault-field login office"/m);

  const login = await cliWith(home, PASSWORD_A, ['--json', 'login', 'office']);
  t.equal(login.code, 0, login.stderr);
  t.match(json(login), { user: 'amina', mode: 'online', database: 'verified', records: 2, server: { role: 'field_worker' } });
  const synced = await cliWith(home, PASSWORD_A, ['--json', 'sync']);
  t.equal(synced.code, 0, synced.stderr);
  const onServer = (await A.records()).filter((r) => ids.includes(r.id));
  t.same(onServer.map((r) => r.id).sort(), [...ids].sort(), 'each record is on the server exactly once');
  t.same(onServer.map((r) => r.createdBy), ['amina', 'amina']);

  t.match(json(await cli(home, ['--json', 'account-status'])), { status: 'approved', next: /^nothing: you have logged in online on this phone already; "fieldvault-field sync office"/ });

  // Verified now: a new request makes no sense and says so.
  const late = await cliWith(home, PASSWORD_A, ['request-account']);
  t.equal(late.code, 1);
  t.equal(codeOf(late), 'VAULT_FORBIDDEN');
  t.match(late.stderr, /log in online/);
});

t.test('a rejected request: the records stay on the phone, there is no account, and the user may ask again', async (t) => {
  const home = t.testdir();
  const [id] = await phoneWith(home, 'yusuf', PASSWORD_B, ['Grace Achieng']);
  t.equal((await cliWith(home, PASSWORD_B, ['request-account'])).code, 0);
  const rejected = await A.admin('POST', '/v1/signups/yusuf/reject', {});
  t.equal(rejected.status, 200, JSON.stringify(rejected.body));
  t.same(await signupOnServer('yusuf'), { status: 'rejected', records: 0 }, 'the quarantined records are deleted on the server');

  const status = await cli(home, ['--json', 'account-status']);
  t.equal(status.code, 0, status.stderr);
  t.match(json(status), { status: 'rejected', next: /ask your supervisor why; your records are still on this phone\. "fieldvault-field request-account office" asks again/ });
  t.match((await cli(home, ['account-status'])).stdout, /^request\s+rejected /m);
  const list = json<{ records: { id: string }[] }>(await cliWith(home, PASSWORD_B, ['--json', 'list']));
  t.same(list.records.map((r) => r.id), [id], 'the record is still on the phone');
  t.equal(codeOf(await cliWith(home, PASSWORD_B, ['login'])), 'AUTH_INVALID_CREDENTIALS', 'no account was made');

  const renewed = await cliWith(home, PASSWORD_B, ['--json', 'request-account']);
  t.equal(renewed.code, 0, renewed.stderr);
  t.match(json(renewed), { status: 'pending', sent: 1, quarantined: 1 }, 'a new request replaces the rejected one');
  t.match(json(await cli(home, ['--json', 'account-status'])), { status: 'pending', decidedAt: null });
});

t.test('refusals print their code and store nothing, on the phone or on the server', async (t) => {
  const home = t.testdir();
  await phoneWith(home, 'zoe', PASSWORD_A, ['Kept offline']);
  const before = snapshot(home);
  const sdkBefore = snapshot(join(home, 'sdk'));

  const wrong = await cliWith(home, WRONG_PASSWORD, ['request-account']);
  t.equal(wrong.code, 1);
  t.equal(codeOf(wrong), 'VAULT_WRONG_PASSWORD');
  const wrongJson = await cliWith(home, WRONG_PASSWORD, ['--json', 'request-account']);
  t.match(JSON.parse(wrongJson.stderr), { error: { code: 'VAULT_WRONG_PASSWORD' } });
  t.equal(wrongJson.stdout, '');
  // The key is tried before the rules: a wrong password is wrong, not "too common" or "too short".
  for (const password of [WRONG_COMMON_PASSWORD, 'zoe']) {
    const wrongAndWeak = await cliWith(home, password, ['request-account']);
    t.equal(wrongAndWeak.code, 1);
    t.equal(codeOf(wrongAndWeak), 'VAULT_WRONG_PASSWORD', wrongAndWeak.stderr);
  }
  t.same(snapshot(home), before, 'nothing changed on the phone (not even a device key)');
  t.same(await signupOnServer('zoe'), { code: 'SIGNUP_NOT_FOUND' }, 'and the server holds no request');

  // Asking the status is a device-signed call: it makes the phone's device key pair (once, by design).
  const none = await cli(home, ['account-status']);
  t.equal(none.code, 1);
  t.equal(codeOf(none), 'SIGNUP_NOT_FOUND');
  t.match(none.stderr, /fieldvault-field request-account/, 'the hint names the command that asks');

  // The server is resolved before the password is asked: no password is read for a typo.
  const unknown = await cli(home, ['request-account', 'elsewhere']);
  t.equal(codeOf(unknown), 'FIELD_SERVER_UNKNOWN');
  t.equal((await cli(home, ['logout'])).code, 0);
  t.equal(codeOf(await cli(home, ['account-status'])), 'FIELD_NO_USER');
  t.equal(codeOf(await cli(home, ['request-account', 'a', 'b'])), 'FIELD_USAGE');
  const sdkAfter = snapshot(join(home, 'sdk'));
  t.ok(sdkAfter['device-key.json']);
  delete sdkAfter['device-key.json'];
  t.same(sdkAfter, sdkBefore, 'none of these touched the keyring or the databases');
});
