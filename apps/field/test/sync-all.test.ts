// Several servers (multi-server audit L7, L9): `sync --all` syncs with every configured server in
// turn, a server that fails does not stop the others (one refusing the password does, unless the
// password opens the user's database on the phone and the user never logged in to that server from
// it); an error tied to a server names it, in text and in --json. Two REAL server processes; one
// is stopped for the failure.
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CLI, PASSWORD_A, PASSWORD_B, cli, cliWith, json, startFileServer, startServer, type CliResult } from './helpers.js';

const { root, server: A } = await startFileServer(t, 'sync-all');
const B = await startServer(join(root, 'server-b'), 'server-b');
t.teardown(() => B.stop());
for (const s of [A, B]) await s.createUser('amina', PASSWORD_A);
// Bilal has an account on A ("region") only.
await A.createUser('bilal', PASSWORD_B);

function ok(t: Test, r: CliResult, what: string): CliResult {
  t.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

/** A phone with servers "country" (B) and "region" (A): "servers list", and so `sync --all`, go by name. */
async function phone(t: Test): Promise<string> {
  const home = t.testdir();
  ok(t, await cli(home, ['servers', 'add', 'country', B.url, '--server-id', B.serverId, '--pin', B.fingerprint]), 'servers add country');
  ok(t, await cli(home, ['servers', 'add', 'region', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'servers add region');
  return home;
}

interface ErrorJson {
  code: string;
  message: string;
  server?: { name: string | null; id: string };
}

interface AllEntry {
  name: string;
  id: string;
  summary?: { server: string; serverId: string; pushed: number; failed: unknown[] };
  error?: ErrorJson;
}

t.test("an error from a server names the server, in text and in --json's error.server", async (t) => {
  const home = await phone(t);
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'login', 'region']), 'bilal logs in to region');
  // Bilal has no account on "country": that server refuses him.
  const text = await cliWith(home, PASSWORD_B, ['login', 'country']);
  t.equal(text.code, 1);
  t.match(
    text.stderr,
    /^fieldvault-field: error AUTH_INVALID_CREDENTIALS: The username or password is wrong\. \(reported by server "country", id server-b\) Check both/,
    'the code first, then which server reported it',
  );
  const asJson = await cliWith(home, PASSWORD_B, ['--json', 'sync', 'country']);
  t.equal(asJson.code, 1);
  t.same(JSON.parse(asJson.stderr), {
    error: {
      code: 'AUTH_INVALID_CREDENTIALS',
      message: 'The username or password is wrong. (reported by server "country", id server-b) Check both and try again; repeated failures lock the account for a while.',
      server: { name: 'country', id: 'server-b' },
    },
  });
  // An error of the phone alone stays as it was: no server in it.
  const local = await cliWith(home, PASSWORD_B, ['--json', 'sync', 'elsewhere']);
  t.equal(local.code, 1);
  t.same(Object.keys((JSON.parse(local.stderr) as { error: ErrorJson }).error), ['code', 'message']);
});

t.test('a retired phone that still holds records another server lacks is not wiped, and the CLI says what it waits for', async (t) => {
  const home = await phone(t);
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'region']), 'login');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'On both servers']), 'register');
  ok(t, await cliWith(home, PASSWORD_A, ['sync', '--all']), 'sync --all');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'Only on region so far']), 'register');
  ok(t, await cliWith(home, PASSWORD_A, ['sync', 'region']), 'sync region');
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  await A.deviceAction(imei, 'retire');

  const held = await cliWith(home, PASSWORD_A, ['sync', 'region']);
  t.equal(held.code, 0, held.stderr);
  t.match(held.stdout, /device\s+retired: not wiped yet \(see below\)/);
  t.match(held.stdout, /server "country" \(id server-b\): 1 record\(s\) and 0 photo\(s\) not synced there/);
  const heldJson = json<{ wiped: boolean; retirementHold: unknown }>(await cliWith(home, PASSWORD_A, ['--json', 'sync', 'region']));
  t.same([heldJson.wiped, heldJson.retirementHold], [false, { servers: [{ serverId: 'server-b', records: 1, photos: 0 }], otherDatabases: 0 }]);

  ok(t, await cliWith(home, PASSWORD_A, ['sync', 'country']), 'the record reaches country');
  const final = json<{ wiped: boolean }>(await cliWith(home, PASSWORD_A, ['--json', 'sync', 'region']));
  t.equal(final.wiped, true, 'nothing left: the phone wipes itself');
});

t.test('a server removed with "servers remove" no longer holds the wipe of a retired phone', async (t) => {
  const home = await phone(t);
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'region']), 'login');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'On both servers']), 'register');
  ok(t, await cliWith(home, PASSWORD_A, ['sync', '--all']), 'sync --all');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'Registered after country was dropped']), 'register');
  // The field worker drops "country" (e.g. decommissioned): the phone will never sync there again.
  ok(t, await cli(home, ['servers', 'remove', 'country']), 'servers remove country');
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  await A.deviceAction(imei, 'retire');

  const r = await cliWith(home, PASSWORD_A, ['--json', 'sync', 'region']);
  t.equal(r.code, 0, r.stderr);
  const summary = json<{ pushed: number; wiped: boolean; retirementHold?: unknown }>(r);
  t.same([summary.pushed, summary.wiped, summary.retirementHold], [1, true, undefined], 'the last record reached region, and country no longer counts');
  const after = json<{ databases: unknown[] }>(await cli(home, ['--json', 'status', '--locked']));
  t.same(after.databases, [], 'nothing is left on the phone');
});

t.test("a retired phone held by another user's database says what works: a login to a server that knows them, or a blacklisting", async (t) => {
  const home = await phone(t);
  // Bilal signs up on the phone offline and never logs in online: his records are on no server.
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'signup']), 'bilal signs up offline');
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'register', '--name', 'Registered by bilal offline']), 'bilal registers');
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'region']), 'amina logs in');
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  await A.deviceAction(imei, 'retire');

  const held = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'sync', 'region']);
  t.equal(held.code, 0, held.stderr);
  t.match(held.stdout, /device\s+retired: not wiped yet \(see below\)/);
  t.match(
    held.stdout,
    /\n {2}1 database\(s\) of other users of this phone \(their records may be on no server yet\): each of them logs in online to a server that knows them and syncs there\. If one of them cannot \(e\.g\. signed up on this phone offline and never logged in online\), ask your admin to blacklist this phone: that wipes it, with what is left on it\.\n/,
  );
  t.match(held.stdout, /Only the servers configured on this phone count \("servers list"\): one removed with "servers remove" no longer holds the wipe\./);
});


t.test('sync --all stops once a server retired the phone and it wiped itself: the servers after it are reported, not synced', async (t) => {
  const home = await phone(t);
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'region']), 'login');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'On both servers']), 'register');
  ok(t, await cliWith(home, PASSWORD_A, ['sync', '--all']), 'sync --all: both servers hold the record');
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  // "country" comes first in "servers list": it retires the phone, which has nothing left for anyone.
  await B.deviceAction(imei, 'retire');

  const r = await cliWith(home, PASSWORD_A, ['sync', '--all']);
  t.equal(r.code, 1, 'a server was not synced: exit 1');
  t.match(r.stdout, /^== country ==\nserver\s+country \(server-b\)\n[^]*\ndevice\s+retired: everything was synced, so this phone was wiped\n/);
  t.match(
    r.stdout,
    /\n\n== region ==\nerror FIELD_INTERRUPTED: Not synced: "sync --all" stopped \(this phone was retired by server "country" \(id server-b\) and wiped after its last sync there\) before it came to server "region" \(id server-a\)\. Run "fieldvault-field sync region" when ready\.\n\nsynced with 1 of 2 server\(s\); failed: region\n$/,
  );
  const after = json<{ databases: unknown[] }>(await cli(home, ['--json', 'status', '--locked']));
  t.same(after.databases, [], 'nothing is left on the phone');
});

t.test('sync --all stops once a server blacklisted the phone and it wiped itself: the servers after it are reported, not contacted', async (t) => {
  // "country" (B) comes first in "servers list" and blocks the phone.
  const home = await phone(t);
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'region']), 'login to region');
  ok(t, await cliWith(home, PASSWORD_A, ['login', 'country']), 'login to country: it knows the phone');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'On a stolen phone']), 'register');
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  await B.deviceAction(imei, 'blacklist');
  const seenByRegion = (await A.device(imei))?.['lastSeenAt'];

  const r = await cliWith(home, PASSWORD_A, ['--json', 'sync', '--all']);
  t.equal(r.code, 1, 'no server was synced: exit 1');
  const entries = json<AllEntry[]>(r);
  t.same(entries.map((e) => e.name), ['country', 'region'], 'every server has its entry');
  t.match(entries[0], { error: { code: 'DEVICE_BLACKLISTED', server: { name: 'country', id: 'server-b' } } });
  t.match(entries[1], {
    error: {
      code: 'FIELD_INTERRUPTED',
      message: 'Not synced: "sync --all" stopped (an admin of server "country" (id server-b) has blocked this phone) before it came to server "region" (id server-a). Run "fieldvault-field sync region" when ready.',
      server: { name: 'region', id: 'server-a' },
    },
  });
  const after = json<{ databases: unknown[] }>(await cli(home, ['--json', 'status', '--locked']));
  t.same(after.databases, [], 'the phone wiped itself');
  t.equal((await A.device(imei))?.['lastSeenAt'], seenByRegion, 'region was not contacted');
});

t.test('sync --all stops at the first server that refuses the password: the servers after it are not contacted', async (t) => {
  // Chidi has an account on both servers, with one password; a user of this test alone, so that
  // the audits count only this test's logins.
  for (const s of [A, B]) await s.createUser('chidi', PASSWORD_B);
  const mistyped = 'seven copper kettels sing at dawn';
  const loginsFailed = async (s: typeof A): Promise<number> => {
    const res = await s.admin('GET', '/v1/audit?username=chidi&limit=100');
    t.equal(res.status, 200, 'the audit of chidi');
    return (res.body['events'] as Array<{ event: string }>).filter((e) => e.event === 'login.failed').length;
  };
  const home = await phone(t);
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'chidi', 'login', 'region']), 'chidi logs in to region');
  ok(t, await cliWith(home, PASSWORD_B, ['register', '--name', 'Mercy Atieno']), 'register');
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  const seenByRegion = (await A.device(imei))?.['lastSeenAt'];
  const [failedOnCountry, failedOnRegion] = [await loginsFailed(B), await loginsFailed(A)];

  // "country" (B) comes first in "servers list": it refuses the mistyped password.
  const r = await cliWith(home, mistyped, ['sync', '--all']);
  t.equal(r.code, 1, 'no server was synced: exit 1');
  t.match(r.stdout, /^== country ==\nerror AUTH_INVALID_CREDENTIALS: The username or password is wrong\. \(reported by server "country", id server-b\)/, 'the server that refused it, named');
  t.match(
    r.stdout,
    /\n\n== region ==\nerror FIELD_INTERRUPTED: Not synced: "sync --all" stopped \(server "country" \(id server-b\) refused the username or password\) before it came to server "region" \(id server-a\), so it was not contacted: a mistyped password would count as a failed login on every server\. Run "fieldvault-field sync --all" again and type your password carefully\. If your password is different on "country" \(changed or reset on one server only: see docs\/operations\.md, "Several servers"\) or you have no account there, sync with this server by name: "fieldvault-field sync region"\.\n/,
    'the server left out, and what to do',
  );
  t.match(r.stdout, /\n\nsynced with 0 of 2 server\(s\); failed: country, region; stopped: country refused the password; run "sync --all" again and type it carefully\n$/);
  t.notMatch(r.stdout + r.stderr, mistyped, 'the password is never printed');

  const j = await cliWith(home, mistyped, ['--json', 'sync', '--all']);
  t.equal(j.code, 1);
  const entries = json<AllEntry[]>(j);
  t.same(entries.map((e) => e.name), ['country', 'region'], 'every server has its entry');
  t.match(entries[0], { error: { code: 'AUTH_INVALID_CREDENTIALS', server: { name: 'country', id: 'server-b' } } });
  t.match(entries[1], { error: { code: 'FIELD_INTERRUPTED', message: /refused the username or password\) before it came to server "region"/, server: { name: 'region', id: 'server-a' } } });

  t.equal(await loginsFailed(B), failedOnCountry + 2, 'country audited each refused login');
  t.equal(await loginsFailed(A), failedOnRegion, 'region got no failed login');
  t.equal((await A.device(imei))?.['lastSeenAt'], seenByRegion, 'region was not contacted');

  // The right password afterwards syncs with both.
  const good = ok(t, await cliWith(home, PASSWORD_B, ['sync', '--all']), 'sync --all with the right password');
  t.match(good.stdout, /\n\nsynced with 2 of 2 server\(s\)\n$/);
});

t.test('a password the phone knows is not a typo: a server without the account does not stop sync --all', async (t) => {
  const home = await phone(t);
  // Bilal has an account on "region" only; "country" comes first and refuses him.
  ok(t, await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'login', 'region']), 'bilal logs in to region');
  ok(t, await cliWith(home, PASSWORD_B, ['register', '--name', 'Brian Otieno']), 'register');
  const r = await cliWith(home, PASSWORD_B, ['sync', '--all']);
  t.equal(r.code, 1, 'a server failed: exit 1');
  t.match(r.stdout, /^== country ==\nerror AUTH_INVALID_CREDENTIALS: /);
  t.match(r.stdout, /\n\n== region ==\nserver\s+region \(server-a\)\nsent\s+1 record\(s\)/, 'the password opens his database on the phone: region is still synced');
  t.match(r.stdout, /\n\nsynced with 1 of 2 server\(s\); failed: country\n$/);
  t.notMatch(r.stdout, /stopped:/);
});

t.test('an old password after a reset on a server the user logged in to before stops sync --all, though it opens the phone', async (t) => {
  // Dara has one password on both servers and has logged in to both from this phone; a user of
  // this test alone, so that the audits count only this test's logins.
  for (const s of [A, B]) await s.createUser('dara', PASSWORD_A);
  const home = await phone(t);
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'dara', 'login', 'region']), 'dara logs in to region');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'Joyce Wanjiru']), 'register');
  ok(t, await cliWith(home, PASSWORD_A, ['sync', '--all']), 'sync --all: she has logged in to both servers');
  // An admin of "country" resets her password there; she sets a new one (not yet typed on the phone).
  const reset = await B.admin('POST', '/v1/users/dara/password-reset', {});
  t.equal(reset.status, 200, 'password reset on country');
  const set = await B.call('POST', '/v1/auth/password', { resetToken: (reset.body['reset'] as { token: string }).token, password: PASSWORD_B });
  t.equal(set.status, 200, 'the new password set on country');

  const loginsFailed = async (s: typeof A): Promise<number> => {
    const res = await s.admin('GET', '/v1/audit?username=dara&limit=100');
    t.equal(res.status, 200, 'the audit of dara');
    return (res.body['events'] as Array<{ event: string }>).filter((e) => e.event === 'login.failed').length;
  };
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  const seenByRegion = (await A.device(imei))?.['lastSeenAt'];
  const failedOnRegion = await loginsFailed(A);

  // The old password still opens her database on the phone, but "country" took a password from
  // her before: its refusal means the password changed there, not that she has no account.
  const r = await cliWith(home, PASSWORD_A, ['sync', '--all']);
  t.equal(r.code, 1, 'no server was synced: exit 1');
  t.match(r.stdout, /^== country ==\nerror AUTH_INVALID_CREDENTIALS: /);
  t.match(
    r.stdout,
    /\n\n== region ==\nerror FIELD_INTERRUPTED: Not synced: "sync --all" stopped \(server "country" \(id server-b\) refused the username or password\) before it came to server "region" \(id server-a\), so it was not contacted: [^\n]*If your password is different on "country" \(changed or reset on one server only[^\n]*sync with this server by name: "fieldvault-field sync region"\.\n/,
    'region is left out, with what to do',
  );
  t.match(r.stdout, /\n\nsynced with 0 of 2 server\(s\); failed: country, region; stopped: country refused the password; /);
  t.equal(await loginsFailed(A), failedOnRegion, 'region got no failed login');
  t.equal((await A.device(imei))?.['lastSeenAt'], seenByRegion, 'region was not contacted');
});

t.test('sync --all: every server in turn with one password; a stopped server does not stop the others', async (t) => {
  const home = await phone(t);
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'region']), 'login');
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'Grace Auma']), 'register');

  const usage = await cliWith(home, PASSWORD_A, ['sync', '--all', 'region']);
  t.equal(usage.code, 2, '--all with a server name is a usage error');
  t.match(usage.stderr, /error FIELD_USAGE: .*--all and a server name together/);

  const unnamed = await cliWith(home, PASSWORD_A, ['sync']);
  t.equal(unnamed.code, 1);
  t.match(unnamed.stderr, /error FIELD_SERVER_AMBIGUOUS: No server was named and this phone has 2 configured \(country, region\)\..*"fieldvault-field sync --all"/, 'the refusal points to --all');

  // One password line on stdin serves both servers. (Region may also get records this phone
  // received from country that region has not acknowledged to it: relays, counted as sent.)
  const both = ok(t, await cliWith(home, PASSWORD_A, ['sync', '--all']), 'sync --all');
  t.match(both.stdout, /^== country ==\nserver\s+country \(server-b\)\nsent\s+1 record\(s\)[^]*\n\n== region ==\nserver\s+region \(server-a\)\nsent\s+[1-9]\d* record\(s\)[^]*\n\nsynced with 2 of 2 server\(s\)\n$/);
  t.notMatch(both.stdout + both.stderr, PASSWORD_A, 'the password is never printed');

  await B.stop();
  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'Peter Lokiru']), 'register another');
  const r = await cliWith(home, PASSWORD_A, ['sync', '--all']);
  t.equal(r.code, 1, 'a server failed: exit 1');
  t.match(
    r.stdout,
    /^== country ==\nerror TRANSPORT_UNREACHABLE: The server could not be reached, the connection to it was lost before its answer was complete, or it did not answer in time\. \(server "country", id server-b; [^)]*ECONNREFUSED\) /,
    'the first server fails, named',
  );
  t.match(r.stdout, /\n\n== region ==\nserver\s+region \(server-a\)\nsent\s+1 record\(s\)\n/, 'the next one still syncs');
  t.match(r.stdout, /\n\nsynced with 1 of 2 server\(s\); failed: country\n$/);

  ok(t, await cliWith(home, PASSWORD_A, ['register', '--name', 'Rose Akello']), 'register a third');
  const j = await cliWith(home, PASSWORD_A, ['--json', 'sync', '--all']);
  t.equal(j.code, 1);
  const entries = json<AllEntry[]>(j);
  t.same(entries.map((e) => [e.name, e.id]), [['country', 'server-b'], ['region', 'server-a']], 'one entry per server, in the order of "servers list"');
  t.match(entries[0], { error: { code: 'TRANSPORT_UNREACHABLE', message: /server "country", id server-b/, server: { name: 'country', id: 'server-b' } } });
  t.notOk(entries[0] !== undefined && 'summary' in entries[0]);
  t.match(entries[1], { summary: { server: 'region', serverId: 'server-a', pushed: 1, failed: [] } });
  t.notOk(entries[1] !== undefined && 'error' in entries[1]);
});

t.test('Ctrl-C during sync --all stops it at a safe point: no server after it is contacted', async (t) => {
  // A listener that accepts and never answers stands for a server that hangs: the CLI's connection
  // to it tells the test that the first sync is over and the second server's login has begun.
  const sockets: Socket[] = [];
  let connected: () => void = () => undefined;
  const contacted = new Promise<void>((resolve) => (connected = resolve));
  const hanging = createServer((socket) => {
    sockets.push(socket);
    connected();
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => hanging.close(() => resolve())));
  const port = (hanging.address() as AddressInfo).port;

  const home = t.testdir();
  ok(t, await cli(home, ['servers', 'add', 'central', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]), 'servers add central');
  ok(t, await cli(home, ['servers', 'add', '--offline', 'hangs', `https://127.0.0.1:${port}`, '--server-id', 'server-h', '--pin', A.fingerprint]), 'servers add hangs');
  ok(t, await cli(home, ['servers', 'add', '--offline', 'later', 'https://127.0.0.1:9', '--server-id', 'server-l', '--pin', A.fingerprint]), 'servers add later');
  ok(t, await cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'central']), 'login');

  const child = spawn(process.execPath, [CLI, '--home', home, '--json', '--password-stdin', 'sync', '--all'], {
    env: { PATH: process.env['PATH'] ?? '', HOME: home },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdin.end(`${PASSWORD_A}\n`);

  // (A CLI that ends before contacting it fails the assertions below instead of hanging the test.)
  await Promise.race([contacted, exited]);
  child.kill('SIGINT');
  // Once the CLI has taken the Ctrl-C, the hanging server drops the connection: the login to it fails.
  for (let i = 0; i < 100 && !stderr.includes('stopping at a safe point'); i += 1) await new Promise((r) => setTimeout(r, 50));
  for (const s of sockets) s.destroy();
  const code = await exited;

  t.match(stderr, /stopping at a safe point… \(Ctrl-C again to quit at once\)/, 'the documented note');
  t.equal(code, 1);
  const entries = JSON.parse(stdout) as AllEntry[];
  t.same(entries.map((e) => e.name), ['central', 'hangs', 'later'], 'every server has its entry, by name');
  t.match(entries[0], { summary: { server: 'central' } }, 'the sync before the Ctrl-C is reported');
  t.match(entries[1], { error: { server: { name: 'hangs', id: 'server-h' } } });
  t.match(entries[2], {
    error: { code: 'FIELD_INTERRUPTED', message: /^Not synced: "sync --all" stopped \(Ctrl-C\) before it came to server "later" \(id server-l\)/, server: { name: 'later', id: 'server-l' } },
  });
  t.equal(sockets.length, 1, 'the hanging server was contacted once');
});
