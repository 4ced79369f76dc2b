// Start-up checks from the operator audit of session 10 (findings 2, 3, 9 and 10) with the built
// server as a real process. The permission cases need a second account: as root (tests and CI
// here) the server runs as `nobody` through spawn's uid/gid; as any other account the directories
// are made unwritable with chmod instead, which root would ignore.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { hasStack, main, runServer, stopServer, type Outcome, type RunAs } from './run-server.js';

const root = process.getuid?.() === 0;
const NOBODY: RunAs = { uid: 65534, gid: 65534 };

/** Whether `nobody` can run the built server here (the checkout must be readable by others). */
function nobodyCanRun(): boolean {
  if (!root) return false;
  // Without tap's NODE_OPTIONS hook, as in run-server.ts.
  const check = `require('node:fs').accessSync(${JSON.stringify(main)}, require('node:fs').constants.R_OK)`;
  const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, '-e', check], { ...NOBODY, stdio: 'ignore' });
  return r.status === 0;
}

/** A scratch directory others may enter (tap's fixture directories need not be). */
function scratch(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'fv-ops-'));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The account the server will run as in the permission cases, and how the test gets there. */
const other = nobodyCanRun() ? NOBODY : undefined;
const serverAccount = other === undefined ? `(uid ${process.getuid?.() ?? -1})` : '(uid 65534)';

t.test('finding 2: FIELDVAULT_SERVER_ID other than <data>/server-id stops the start naming both ids; the same id starts', async (t) => {
  const dataDir = join(t.testdir(), 'data');
  const first = await runServer(dataDir);
  t.teardown(() => stopServer(first));
  t.equal(first.state, 'started', first.output());
  const id = /fieldvault server (\S+) listening/.exec(first.output())?.[1] ?? 'none';
  t.equal(readFileSync(join(dataDir, 'server-id'), 'utf8').trim(), id, 'the generated id is kept');
  t.equal(await stopServer(first), 0);

  const renamed = await runServer(dataDir, { FIELDVAULT_SERVER_ID: 'srv-renamed' });
  t.teardown(() => stopServer(renamed));
  t.equal(renamed.state, 'exited', renamed.output());
  t.equal(renamed.code, 1);
  t.match(renamed.output(), /fieldvault: CONFIG_INVALID: /);
  t.match(renamed.output(), `FIELDVAULT_SERVER_ID is "srv-renamed", but this data directory's server id (${join(dataDir, 'server-id')}) is "${id}"`);
  t.match(renamed.output(), `unset FIELDVAULT_SERVER_ID or set it to "${id}"`);
  t.match(renamed.output(), /To rename the server on purpose .* write the new id into/);
  t.notOk(hasStack(renamed.output()));
  t.equal(readFileSync(join(dataDir, 'server-id'), 'utf8').trim(), id, 'the file is left alone');

  const same = await runServer(dataDir, { FIELDVAULT_SERVER_ID: id });
  t.teardown(() => stopServer(same));
  t.equal(same.state, 'started', same.output());
  t.match(same.output(), `fieldvault server ${id} listening`);
  t.equal(await stopServer(same), 0);

  // No file yet (a new data directory, e.g. a recovery that keeps the old id): the configured id
  // is taken and recorded (server-id.test.ts checks that it sticks).
  const fresh = join(t.testdir(), 'fresh');
  const recovered = await runServer(fresh, { FIELDVAULT_SERVER_ID: 'srv-kept' });
  t.teardown(() => stopServer(recovered));
  t.equal(recovered.state, 'started', recovered.output());
  t.match(recovered.output(), 'fieldvault server srv-kept listening');
  t.equal(await stopServer(recovered), 0);
});

// Root ignores modes: as root the cases need `nobody`.
const finding3Skip = root && other === undefined ? 'as root this needs a checkout nobody can read' : false;

t.test('finding 3: an unwritable data directory, secrets directory or secret file is CONFIG_DATA_DIR_UNWRITABLE naming the variable, the path and both accounts', { skip: finding3Skip }, async (t) => {
  const base = scratch(t);
  const expectUnwritable = (o: Outcome, name: string, says: string[]): void => {
    t.equal(o.code, 1, `${name}: ${o.output()}`);
    t.match(o.output(), /fieldvault: CONFIG_DATA_DIR_UNWRITABLE: /, name);
    for (const s of says) t.ok(o.output().includes(s), `${name}: says ${s}`);
    t.ok(o.output().includes(`the server runs as `) && o.output().includes(serverAccount), `${name}: names the account running the server`);
    t.notOk(hasStack(o.output()), `${name}: no stack`);
    t.notMatch(o.output(), /unexpected error/, name);
  };

  // The data directory cannot be created: its parent is not ours.
  const parent = join(base, 'parent');
  mkdirSync(parent, { mode: 0o755 });
  chmodSync(parent, other === undefined ? 0o555 : 0o755);
  const data = join(parent, 'data');
  const missing = await runServer(data, {}, other);
  t.teardown(() => stopServer(missing));
  expectUnwritable(missing, 'data directory', [`FIELDVAULT_DATA_DIR ${data}: cannot create the directory ${data} (EACCES)`, `${parent} belongs to `, `install -d -m 700 -o `]);
  t.notOk(existsSync(data));

  // The data directory is the server's, its secrets/ directory is not writable.
  const owned = join(base, 'owned');
  mkdirSync(join(owned, 'secrets'), { recursive: true, mode: 0o700 });
  if (other !== undefined) chownSync(owned, other.uid, other.gid);
  else chmodSync(join(owned, 'secrets'), 0o500);
  const secrets = await runServer(owned, {}, other);
  t.teardown(() => stopServer(secrets));
  expectUnwritable(secrets, 'secrets directory', [`FIELDVAULT_DATA_DIR ${owned}: cannot write in ${join(owned, 'secrets')} (EACCES)`, `${join(owned, 'secrets')} belongs to `, `chown -R `]);

  // A KEK file the server may not read.
  const kekDir = join(base, 'kek-unreadable');
  mkdirSync(join(kekDir, 'secrets'), { recursive: true, mode: 0o700 });
  const kek = join(kekDir, 'secrets', 'kek');
  writeFileSync(kek, `${Buffer.alloc(32, 1).toString('base64')}\n`, { mode: 0o600 });
  if (other !== undefined) {
    chownSync(kekDir, other.uid, other.gid);
    chownSync(join(kekDir, 'secrets'), other.uid, other.gid);
  } else chmodSync(kek, 0o000);
  const unreadable = await runServer(kekDir, {}, other);
  t.teardown(() => stopServer(unreadable));
  expectUnwritable(unreadable, 'KEK file', [`cannot open ${kek} (EACCES)`, `${kek} belongs to `]);
  t.notMatch(unreadable.output(), Buffer.alloc(32, 1).toString('base64'), 'never the key');

  // An explicit FIELDVAULT_KEK_FILE in a directory the server may not write: named by its variable.
  const kekParent = join(base, 'keys');
  mkdirSync(kekParent, { mode: 0o755 });
  chmodSync(kekParent, other === undefined ? 0o555 : 0o755);
  const ownData = join(base, 'own-data');
  mkdirSync(ownData, { mode: 0o700 });
  if (other !== undefined) chownSync(ownData, other.uid, other.gid);
  const explicit = await runServer(ownData, { FIELDVAULT_KEK_FILE: join(kekParent, 'kek') }, other);
  t.teardown(() => stopServer(explicit));
  expectUnwritable(explicit, 'FIELDVAULT_KEK_FILE', [`FIELDVAULT_KEK_FILE ${join(kekParent, 'kek')}: cannot open ${join(kekParent, 'kek')}.`, `${kekParent} belongs to `]);
});

t.test('finding 9: a data directory of another account is refused whatever its mode; running as root is warned about', { skip: other === undefined ? 'needs root and a checkout nobody can read' : false }, async (t) => {
  const base = scratch(t);
  const theirs = join(base, 'theirs');
  mkdirSync(theirs, { mode: 0o700 });
  chmodSync(theirs, 0o700);
  chownSync(theirs, NOBODY.uid, NOBODY.gid);
  const refused = await runServer(theirs);
  t.teardown(() => stopServer(refused));
  t.equal(refused.code, 1, refused.output());
  t.match(refused.output(), /fieldvault: CONFIG_DATA_DIR_INSECURE: /);
  t.match(refused.output(), `FIELDVAULT_DATA_DIR ${theirs} has mode 0700 and belongs to `);
  t.match(refused.output(), /\(uid 65534\), not to the account running the server, \S+ \(uid 0\)/);
  t.notOk(existsSync(join(theirs, 'secrets')), 'nothing written into it');
  t.notOk(hasStack(refused.output()));

  // Root's own directory (what tests and CI create) still starts, with the warning.
  const ours = join(base, 'ours');
  const asRoot = await runServer(ours);
  t.teardown(() => stopServer(asRoot));
  t.equal(asRoot.state, 'started', asRoot.output());
  t.match(asRoot.output(), 'warning: the server runs as root: run it as its own unprivileged account');
  t.equal(await stopServer(asRoot), 0);

  // The same server as an unprivileged account on its own directory: no warning.
  const nobodys = join(base, 'nobodys');
  mkdirSync(nobodys, { mode: 0o700 });
  chownSync(nobodys, NOBODY.uid, NOBODY.gid);
  const unprivileged = await runServer(nobodys, {}, NOBODY);
  t.teardown(() => stopServer(unprivileged));
  t.equal(unprivileged.state, 'started', unprivileged.output());
  t.notMatch(unprivileged.output(), /runs as root/);
  t.equal(await stopServer(unprivileged), 0);
});

t.test('finding 10: a KEK or TLS "file" that is a directory is said to be one', async (t) => {
  const dir = t.testdir({ keys: { kek: `${Buffer.alloc(32, 2).toString('base64')}\n` } });
  const keys = join(dir, 'keys');
  const kek = await runServer(join(dir, 'data1'), { FIELDVAULT_KEK_FILE: keys });
  t.teardown(() => stopServer(kek));
  t.equal(kek.code, 1, kek.output());
  t.match(kek.output(), `the KEK file ${keys} (FIELDVAULT_KEK_FILE) is a directory, not a file: point FIELDVAULT_KEK_FILE at the KEK file itself (${join(keys, 'kek')}?)`);
  t.notMatch(kek.output(), /needs 0600/, 'not "chmod 600 a directory"');

  const tls = await runServer(join(dir, 'data2'), { FIELDVAULT_TLS_CERT: keys, FIELDVAULT_TLS_KEY: join(keys, 'kek') });
  t.teardown(() => stopServer(tls));
  t.equal(tls.code, 1, tls.output());
  t.match(tls.output(), `FIELDVAULT_TLS_CERT ${keys} is a directory, not a file`);
});

t.test('finding 10: FIELDVAULT_HTTP_PORT=OFF is off; an empty FIELDVAULT_PORT= stops the start instead of meaning 8443', async (t) => {
  const off = await runServer(join(t.testdir(), 'data'), { FIELDVAULT_HTTP_PORT: 'OFF' });
  t.teardown(() => stopServer(off));
  t.equal(off.state, 'started', off.output());
  t.notMatch(off.output(), /plain HTTP on/);
  t.equal(await stopServer(off), 0);

  const empty = await runServer(join(t.testdir(), 'empty'), { FIELDVAULT_PORT: '' });
  t.teardown(() => stopServer(empty));
  t.equal(empty.code, 1, empty.output());
  t.match(empty.output(), 'CONFIG_INVALID');
  t.match(empty.output(), 'FIELDVAULT_PORT is set but empty: give it a value, or remove it for the default');
});
