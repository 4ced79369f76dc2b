import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { createClock, createRecord, signupSignatureMessage, type ChildRecord } from '@fieldvault/protocol';
import { ADMIN_PASSWORD, cli, cliEnrolling, errorCode, json, startServer, totp, type ServerProcess } from './helpers.js';

// Issue 7 step 3: `fieldvault-admin signups list|show|approve|reject` against a real server process.
const dataDir = t.testdir();
const server = await startServer(join(dataDir, 'server'));
t.teardown(() => server.stop());
const home = join(dataDir, 'admin-home');
const ZAID_PASSWORD = 'olive branches by the river mouth';
const ZAID_IMEI = '490154203237600';
const YARA_IMEI = '490154203237618';

/** An unverified phone user asking the server for an account (challenge + Ed25519 signature). */
async function requestAccount(s: ServerProcess, username: string, password: string, imei: string, records: readonly ChildRecord[] = []): Promise<{ status: number; body: Record<string, unknown> }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  const challenge = (await s.call('POST', '/v1/auth/challenge', { imei })).body['challenge'] as string;
  const signature = sign(null, signupSignatureMessage({ action: 'request', challenge, username, imei }), privateKey);
  return s.call('POST', '/v1/signups', {
    username,
    password,
    imei,
    devicePublicKey: raw.toString('base64'),
    challenge,
    signature: signature.toString('base64'),
    records,
  });
}

function record(username: string, imei: string, name: string): ChildRecord {
  return createRecord({ id: randomUUID(), createdBy: username, device: imei, clockTs: createClock({ node: imei }).now(), fields: { name } });
}

t.test('the admin logs in (TOTP) and two phone users ask for accounts', async (t) => {
  const r = await cliEnrolling(home, ['--json', 'init', '--server', server.url, '--ca', server.certFile], [server.setupToken, ADMIN_PASSWORD], (s) => [totp(s)]);
  t.equal(r.code, 0, r.stderr);
  const zaid = await requestAccount(server, 'zaid', ZAID_PASSWORD, ZAID_IMEI, [record('zaid', ZAID_IMEI, 'Lina Odongo')]);
  t.equal(zaid.status, 200, JSON.stringify(zaid.body));
  t.equal((await requestAccount(server, 'yara', 'lanterns drift over the hills', YARA_IMEI)).status, 200);
});

t.test('signups list shows the pending requests as a table and as JSON', async (t) => {
  const table = await cli(home, ['signups', 'list']);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^USER\s+STATUS\s+DEVICE\s+RECORDS/m);
  t.match(table.stdout, new RegExp(`^zaid\\s+pending\\s+${ZAID_IMEI}\\s+1\\s`, 'm'));
  const list = json<{ signups: Array<{ username: string; status: string; records: number }> }>(await cli(home, ['--json', 'signups', 'list']));
  t.same(list.signups.map((s) => [s.username, s.status, s.records]), [['yara', 'pending', 0], ['zaid', 'pending', 1]]);
});

t.test('signups show lists the quarantined records', async (t) => {
  const human = await cli(home, ['signups', 'show', 'zaid']);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /records in quarantine\s+1/);
  t.match(human.stdout, /Lina Odongo/);
  const shown = json<{ records: Array<{ record: { createdBy: string } }> }>(await cli(home, ['--json', 'signups', 'show', 'zaid']));
  t.same(shown.records.map((q) => q.record.createdBy), ['zaid']);
  t.equal(errorCode(await cli(home, ['--json', 'signups', 'show', 'nobody'])), 'SIGNUP_NOT_FOUND');
  t.equal((await cli(home, ['signups', 'show', 'Not A Name'])).code, 2);
});

t.test('signups approve creates the account with the phone password and moves the records', async (t) => {
  t.equal((await server.deviceLogin('zaid', ZAID_PASSWORD, ZAID_IMEI)).body['code'], 'AUTH_INVALID_CREDENTIALS', 'no account before approval');
  const r = await cli(home, ['--json', 'signups', 'approve', 'zaid', '--role', 'supervisor']);
  t.equal(r.code, 0, r.stderr);
  t.match(json(r), { user: { username: 'zaid', role: 'supervisor', hasPassword: true }, moved: 1, failed: [], signup: { status: 'approved', decidedBy: 'admin' } });
  const loggedIn = await server.deviceLogin('zaid', ZAID_PASSWORD, ZAID_IMEI);
  t.equal(loggedIn.status, 200, 'the user logs in with the password chosen on the phone');
  const search = await server.call('GET', '/v1/records/search?name=lina', undefined, loggedIn.body['token'] as string);
  t.equal((search.body['records'] as unknown[]).length, 1, 'the record is in the records database');
  const again = await cli(home, ['--json', 'signups', 'approve', 'zaid']);
  t.equal(errorCode(again), 'SIGNUP_ALREADY_DECIDED');
});

t.test('signups reject asks for confirmation, then deletes the request and is audited', async (t) => {
  const refused = await cli(home, ['--json', 'signups', 'reject', 'yara'], ['yara']);
  t.equal(errorCode(refused), 'ADMIN_NOT_CONFIRMED');
  const human = await cli(home, ['signups', 'reject', 'yara', '--yes']);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /yara's request is rejected; 0 record\(s\) deleted/);
  const all = json<{ signups: Array<{ username: string; status: string }> }>(await cli(home, ['--json', 'signups', 'list', '--status', 'any']));
  t.same(all.signups.map((s) => [s.username, s.status]), [['yara', 'rejected'], ['zaid', 'approved']]);
  const audit = json<{ events: Array<{ event: string; actor: string | null; username: string | null }> }>(await cli(home, ['--json', 'audit', '--user', 'yara']));
  t.ok(audit.events.some((e) => e.event === 'signup.rejected' && e.actor === 'admin'), 'the reject is audited with the acting admin');
});
