// The built CLI against a REAL server process (apps/server on the embedded store, self-signed TLS
// pinned by fingerprint or trusted as a CA): servers add/list/remove, online login (flow 1: the
// user's unverified records move into the verified database under the server's key; flow 3: a
// second user of the phone receives that key), status, and refusals that change nothing.
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PASSWORD_A, PASSWORD_B, cli, cliWith, json, png, snapshot, startFileServer } from './helpers.js';

interface Summary {
  id: string;
  fields: Record<string, unknown>;
  createdBy: string;
}

interface Status {
  currentUser: string | null;
  imei: string;
  session: { user: string; database: string; records: number } | null;
  users: { username: string; kinds: string[] }[];
  databases: { kind: string; users: string[]; key?: { keyId: string; issuer: string } }[];
  databaseFiles: number;
  servers: { name: string; url: string; serverId: string; pending: unknown }[];
}

const { server: A } = await startFileServer(t, 'online');
await A.createUser('amina', PASSWORD_A);
await A.createUser('bilal', PASSWORD_B);
/** The server's public-key pin, computed here from its certificate (not by our code). */
const keyPin = `sha256//${createHash('sha256').update(new X509Certificate(A.certPem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64')}`;

function addServer(home: string, name = 'office', extra: string[] = ['--pin', A.fingerprint]): ReturnType<typeof cli> {
  return cli(home, ['servers', 'add', name, A.url, '--server-id', A.serverId, ...extra]);
}

t.test('servers add, list and remove; the certificate must be pinned or trusted', async (t) => {
  const home = t.testdir();
  const added = await addServer(home);
  t.equal(added.code, 0, added.stderr);
  t.match(added.stdout, /added server office: https:\/\/127\.0\.0\.1:\d+ \(server-a\), pin /);
  // The server's public key is pinned too, learned over the connection the fingerprint verified, so
  // a certificate renewed with the same key keeps working (admin audit s16, F7).
  t.match(added.stdout, `its public key is pinned too (${keyPin}): a certificate renewed with the same key is accepted`);
  const saved = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as { servers: Record<string, { pinSha256: string[] }> };
  t.same(saved.servers['office']?.pinSha256, [A.fingerprint, keyPin]);
  const withCa = await addServer(home, 'office-ca', ['--ca', A.certFile]);
  t.equal(withCa.code, 1);
  t.match(withCa.stderr, /error FIELD_SERVER_ID_EXISTS: .*server id server-a is configured as "office"/, 'one entry per server id, and the error says the id is the problem');
  const list = json<{ servers: { name: string; serverId: string; url: string; trust: string }[] }>(await cli(home, ['--json', 'servers', 'list']));
  t.same(list.servers.map((s) => [s.name, s.serverId, s.url]), [['office', 'server-a', A.url]]);
  // `status` says how each server is trusted in the same words (multi-server audit #12).
  const status = json<{ servers: { name: string | null; trust: string }[] }>(await cli(home, ['--json', 'status', '--locked']));
  t.same(status.servers.map((s) => [s.name, s.trust]), list.servers.map((s) => [s.name, s.trust]));
  t.match(list.servers[0]?.trust, /^pin [0-9A-F:]{11}…, sha256\/\/[A-Za-z0-9+/]{3}…$/);
  const human = await cli(home, ['servers', 'list']);
  t.match(human.stdout, /^NAME\s+URL\s+SERVER ID\s+TRUST/m);

  for (const [args, pattern] of [
    [['servers', 'add', 'x', A.url, '--server-id', 'srv-x'], /--pin FINGERPRINT or --ca FILE/],
    [['servers', 'add', 'x', A.url.replace('https', 'http'), '--server-id', 'srv-x', '--pin', A.fingerprint], /https:\/\//],
    [['servers', 'add', 'x', A.url, '--server-id', 'srv-x', '--pin', 'AB:CD'], /--pin: the SHA-256 fingerprint/],
    [['servers', 'add', 'Bad Name', A.url, '--server-id', 'srv-x', '--pin', A.fingerprint], /server name/],
    [['servers', 'add', '--offline', 'x', A.url, '--pin', A.fingerprint], /--server-id/],
  ] as const) {
    const r = await cli(home, [...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, /FIELD_USAGE/);
    t.match(r.stderr, pattern);
  }
  const dup = await addServer(home);
  t.equal(dup.code, 1);
  t.match(dup.stderr, /FIELD_SERVER_EXISTS/);
  t.equal((await cli(home, ['servers', 'remove', 'office'])).code, 0);
  const gone = await cli(home, ['servers', 'remove', 'office']);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /FIELD_SERVER_UNKNOWN/);
  t.same(json<{ servers: unknown[] }>(await cli(home, ['--json', 'servers', 'list'])).servers, []);
  // The CA route works as well as the pin.
  t.equal((await addServer(home, 'office', ['--ca', A.certFile])).code, 0);
});

t.test('a server added by its fingerprint alone gets its public key pinned at the first online login', async (t) => {
  const home = t.testdir();
  const pins = (): string[] | undefined =>
    (JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as { servers: Record<string, { pinSha256?: string[] }> }).servers['office']?.pinSha256;
  // --offline contacts nothing, so it cannot learn the key (as a phone set up before key pins).
  t.equal((await addServer(home, 'office', ['--pin', A.fingerprint, '--offline'])).code, 0);
  t.same(pins(), [A.fingerprint]);
  const first = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'office']);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stderr, `Pinned the public key of server office too (${keyPin}): a certificate renewed with the same key will be accepted.`);
  t.same(pins(), [A.fingerprint, keyPin], 'learned over the connection the fingerprint verified');
  const again = await cliWith(home, PASSWORD_A, ['login', 'office']);
  t.equal(again.code, 0, again.stderr);
  t.notMatch(again.stderr, /Pinned the public key/, 'once');
  t.same(pins(), [A.fingerprint, keyPin]);
});

t.test('flow 1: an offline user logs in online; the server issues the key and her records move into the verified database', async (t) => {
  const home = t.testdir({ 'child.png': png() });
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  const { record } = json<{ record: Summary }>(
    await cliWith(home, PASSWORD_A, ['--json', 'register', '--name', 'Amina Yusuf', '--age', '7', '--photo', join(home, 'child.png')]),
  );
  await cliWith(home, PASSWORD_A, ['register', '--name', 'Second child']);
  await addServer(home);
  const { imei } = json<Status>(await cli(home, ['--json', 'status', '--locked']));
  t.equal(await A.device(imei), undefined, 'the server has never seen the phone');

  const login = await cliWith(home, PASSWORD_A, ['--json', 'login', 'office']);
  t.equal(login.code, 0, login.stderr);
  t.match(json(login), {
    user: 'amina',
    mode: 'online',
    server: { name: 'office', serverId: 'server-a', role: 'field_worker' },
    database: 'verified',
    keyIssuer: 'server-a',
    records: 2,
    current: true,
  });
  const device = await A.device(imei);
  t.match(device, { key: { imei, issuer: 'server-a' } }, 'the server issued the key for this IMEI');

  const status = json<Status>(await cliWith(home, PASSWORD_A, ['--json', 'status']));
  t.equal(status.currentUser, 'amina');
  t.same(status.users, [{ username: 'amina', kinds: ['verified'] }]);
  t.match(status.databases, [{ kind: 'verified', users: ['amina'], key: { issuer: 'server-a', keyId: (device?.['key'] as { keyId: string }).keyId } }]);
  t.equal(status.databases.length, 1, 'the emptied unverified database is gone');
  t.equal(status.databaseFiles, 1);
  t.same(status.session, { user: 'amina', database: 'verified', records: 2 });
  t.match(status.servers, [{ name: 'office', serverId: 'server-a' }]);

  // Her records (with the photo) are in the verified database now.
  const shown = await cliWith(home, PASSWORD_A, ['--json', 'show', record.id]);
  t.match(json(shown), { record: { id: record.id, photos: 1, fields: { name: 'Amina Yusuf' } } });
  const list = json<{ database: string; records: Summary[] }>(await cliWith(home, PASSWORD_A, ['--json', 'list']));
  t.equal(list.database, 'verified');
  t.same(list.records.map((r) => r.fields['name']).sort(), ['Amina Yusuf', 'Second child']);

  // Human status.
  const human = await cliWith(home, PASSWORD_A, ['status']);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /current user\s+amina/);
  t.match(human.stdout, /verified\s+amina\s+[0-9a-f]{12}… from server-a/);
  t.match(human.stdout, /office\s+https:\/\/127\.0\.0\.1:\d+\s+server-a/);
  t.notOk(/token|dbKey|wrapped/i.test(human.stdout + login.stdout + login.stderr), 'no token or key in the output');

  // Flow 3: a user new to the phone logs in online and receives the device's key.
  const bilal = await cliWith(home, PASSWORD_B, ['--user', 'bilal', '--json', 'login']);
  t.equal(bilal.code, 0, bilal.stderr);
  t.match(json(bilal), { user: 'bilal', database: 'verified', records: 2 }, 'the only server is the default; bilal sees the verified database');
  t.equal(json<Status>(await cli(home, ['--json', 'status', '--locked'])).currentUser, 'bilal');
  const offline = json<{ records: Summary[] }>(await cliWith(home, PASSWORD_B, ['--json', 'list']));
  t.equal(offline.records.length, 2, 'and can open it offline afterwards');
});

t.test('online refusals print the server\'s code, exit 1, and change nothing on the phone', async (t) => {
  const home = t.testdir();
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  await cliWith(home, PASSWORD_A, ['register', '--name', 'Kept offline']);
  await addServer(home);
  // A wrong pin is refused at "servers add" now (it contacts the server); --offline adds it unchecked.
  const refused = await cli(home, ['servers', 'add', 'wrong-pin', A.url, '--server-id', 'server-x', '--pin', 'AA'.repeat(32)]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /error TRANSPORT_TLS_UNTRUSTED/);
  await cli(home, ['servers', 'add', '--offline', 'wrong-pin', A.url, '--server-id', 'server-x', '--pin', 'AA'.repeat(32)]);
  await cli(home, ['servers', 'add', 'nobody', 'https://127.0.0.1:9', '--server-id', 'server-y', '--pin', A.fingerprint]);
  const before = snapshot(join(home, 'sdk'));

  const wrong = await cliWith(home, 'this is not the password of amina', ['login', 'office']);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /^fieldvault-field: error AUTH_INVALID_CREDENTIALS: /);
  const untrusted = await cliWith(home, PASSWORD_A, ['login', 'wrong-pin']);
  t.equal(untrusted.code, 1);
  t.match(untrusted.stderr, /error TRANSPORT_TLS_UNTRUSTED/);
  const unreachable = await cliWith(home, PASSWORD_A, ['login', 'nobody']);
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /error TRANSPORT_UNREACHABLE/);
  const unknown = await cliWith(home, PASSWORD_A, ['login', 'elsewhere']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /error FIELD_SERVER_UNKNOWN: .*servers list/);
  const ambiguous = await cliWith(home, PASSWORD_A, ['login']);
  t.equal(ambiguous.code, 1);
  // Adding a server would not help: the refusal says how to name one (field audit F6).
  t.match(ambiguous.stderr, /error FIELD_SERVER_AMBIGUOUS: No server was named and this phone has 3 configured \(nobody, office, wrong-pin\): name one: "fieldvault-field login nobody"/);
  t.notMatch(ambiguous.stderr, /servers add/);
  // The SDK creates the phone's device key pair on its first online login attempt (once, by design).
  const after = snapshot(join(home, 'sdk'));
  t.ok(after['device-key.json'], 'the device key pair exists');
  delete after['device-key.json'];
  t.same(after, before, 'no database, keyring or photo changed');
  t.same(json<Status>(await cli(home, ['--json', 'status', '--locked'])).databases, [{ kind: 'unverified', users: ['amina'] }]);
});
