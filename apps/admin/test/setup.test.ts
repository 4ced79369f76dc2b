import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { startEmbeddedCouch } from '@fieldvault/couch-embedded';
import { startCredentialFront } from '@fieldvault/test-support';
import { ADMIN_PASSWORD, cli, cliEnrolling, errorCode, json, startServer, totp } from './helpers.js';

// Issue 7 step 6: `setup --couchdb URL` against the embedded stand-in, as far as it goes. The
// stand-in has no users and does not enforce `_security` (TOOLCHAIN.md), so
// these tests check what setup WRITES (databases, views, the app user's document, `_security`,
// the 0600 secret file), that it is idempotent, and that a server process then runs from the
// secret file on those databases. What only a real CouchDB 3.x enforces is listed in
// docs/operations.md. The stand-in requires its own per-start credential and knows no other
// user, so setup and the server reach it through a front that sends that credential whatever
// user they bring (as a CouchDB 3.x that has those users would let them in).
const dir = t.testdir();
const couch = await startEmbeddedCouch({ dataDir: join(dir, 'couch') });
t.teardown(() => couch.stop());
const front = await startCredentialFront(couch);
t.teardown(() => front.stop());
const home = join(dir, 'home');
const secretFile = join(dir, 'server', 'secrets', 'couchdb-url');
const COUCH_ADMIN_PASSWORD = 'the couchdb admin password';
const PREFIX = 'fvt_';
const DBS = ['users', 'devices', 'sessions', 'audit', 'records', 'photos', 'pending'].map((d) => `${PREFIX}${d}`);
const adminUrl = front.origin.replace('http://', 'http://couchadmin@');

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${couch.origin}${path}`, { headers: { authorization: couch.authorization } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function setup(extra: readonly string[] = [], json = true) {
  return cli(home, [...(json ? ['--json'] : []), 'setup', '--couchdb', adminUrl, '--prefix', PREFIX, '--secret-file', secretFile, ...extra], [COUCH_ADMIN_PASSWORD]);
}

t.test('setup creates the databases, views, the app user, _security members and a 0600 secret file', async (t) => {
  const r = await setup();
  t.equal(r.code, 0, r.stderr);
  const out = json<{ flavour: string; user: string; secretFileWritten: boolean; databases: Array<{ name: string; created: boolean; securityUpdated: boolean }> }>(r);
  t.equal(out.flavour, 'embedded-stand-in');
  t.equal(out.user, 'created');
  t.equal(out.secretFileWritten, true);
  t.same(out.databases.map((d) => [d.name, d.created, d.securityUpdated]), DBS.map((d) => [d, true, true]));

  for (const db of DBS) {
    const sec = await get(`/${db}/_security`);
    t.same(sec.body['members'], { names: ['fieldvault_app'], roles: [] }, `${db}: the app user is a member`);
    t.notOk(JSON.stringify(sec.body['admins'] ?? {}).includes('fieldvault_app'), `${db}: the app user is not a database admin`);
    const design = await get(`/${db}/_design/fieldvault`);
    t.equal(design.status, 200, `${db}: views installed by setup`);
  }
  const user = await get('/_users/org.couchdb.user:fieldvault_app');
  t.equal(user.status, 200);
  t.same(user.body['roles'], [], 'no roles: not an admin of anything');
  t.notOk('password' in user.body, 'no password kept in clear text by the stand-in');

  t.equal(statSync(secretFile).mode & 0o777, 0o600);
  t.equal(statSync(join(dir, 'server', 'secrets')).mode & 0o777, 0o700);
  const url = new URL(readFileSync(secretFile, 'utf8').trim());
  t.equal(url.username, 'fieldvault_app');
  t.match(url.password, /^[A-Za-z0-9_-]{43}$/, '256-bit generated password');
  t.equal(url.host, new URL(front.origin).host);
  for (const secret of [COUCH_ADMIN_PASSWORD, url.password]) {
    t.notOk(r.stdout.includes(secret) || r.stderr.includes(secret), 'no password printed');
  }
  const human = await setup([], false);
  t.match(human.stdout, /fvt_records\s+existed\s+already a member/);
});

t.test('setup again changes nothing that works; --new-password rotates the app password', async (t) => {
  const before = readFileSync(secretFile, 'utf8');
  const again = json<{ user: string; secretFileWritten: boolean; databases: Array<{ created: boolean; securityUpdated: boolean }> }>(await setup());
  t.equal(again.user, 'kept');
  t.equal(again.secretFileWritten, false);
  t.ok(again.databases.every((d) => !d.created && !d.securityUpdated));
  t.equal(readFileSync(secretFile, 'utf8'), before, 'secret file unchanged');

  const rotated = json<{ user: string; secretFileWritten: boolean }>(await setup(['--new-password']));
  t.equal(rotated.user, 'password-set');
  t.not(readFileSync(secretFile, 'utf8'), before);
  t.equal(statSync(secretFile).mode & 0o777, 0o600);

  const other = await cli(home, ['--json', 'setup', '--couchdb', adminUrl, '--prefix', PREFIX, '--secret-file', secretFile, '--app-user', 'someone_else'], [COUCH_ADMIN_PASSWORD]);
  t.equal(errorCode(other), 'ADMIN_FILE_EXISTS', 'a secret file for another user is never overwritten');
  const noPassword = await cli(home, ['--json', 'setup', '--couchdb', adminUrl, '--secret-file', join(dir, 'x')]);
  t.equal(errorCode(noPassword), 'ADMIN_INPUT_REQUIRED', 'the CouchDB password is asked, never taken from the environment');
});

t.test('a server process runs from the secret file on the prepared databases', async (t) => {
  const dataDir = join(dir, 'server');
  const server = await startServer(dataDir, { FIELDVAULT_COUCHDB_PREFIX: PREFIX });
  t.teardown(() => server.stop());
  t.notOk(existsSync(join(dataDir, 'couch')), 'no embedded store was started: data/secrets/couchdb-url is used');
  const init = await cliEnrolling(join(dir, 'home-admin'), ['--json', 'init', '--server', server.url, '--ca', server.certFile], [server.setupToken, ADMIN_PASSWORD], (s) => [totp(s)]);
  t.equal(init.code, 0, init.stderr);
  const admin = await get(`/${PREFIX}users/user:admin`);
  t.equal(admin.status, 200, 'the server wrote its users into the prepared database');
  await server.stop();

  chmodSync(secretFile, 0o644);
  await t.rejects(startServer(dataDir, { FIELDVAULT_COUCHDB_PREFIX: PREFIX }), /CONFIG_SECRET_FILE_INSECURE/, 'a readable secret file stops the start');
  chmodSync(secretFile, 0o600);
});

t.test('setup refuses a URL it cannot use, without echoing it', async (t) => {
  mkdirSync(join(dir, 'y'), { recursive: true });
  const notCouch = await cli(home, ['--json', 'setup', '--couchdb', 'http://couchadmin:hunter2-secret@127.0.0.1:1', '--secret-file', join(dir, 'y', 'url')]);
  t.equal(errorCode(notCouch), 'STORE_UNAVAILABLE');
  t.notOk(notCouch.stderr.includes('hunter2-secret'), 'the password is not echoed');
  t.notOk(existsSync(join(dir, 'y', 'url')), 'no secret file for a failed setup');
  const bad = await cli(home, ['--json', 'setup', '--couchdb', 'not a url:secret']);
  t.equal(errorCode(bad), 'ADMIN_USAGE');
  t.notOk(bad.stderr.includes('secret'));
});
