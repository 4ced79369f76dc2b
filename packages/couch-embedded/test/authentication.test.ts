// Security audit H1: every local account can reach a loopback port, so the store must refuse every
// request that does not carry its per-start credential, and that credential must not leak through
// the process table, the environment, logs or errors.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import nano from 'nano';
import t from 'tap';
import { startEmbeddedCouch } from '../src/index.js';
import type { EmbeddedCouch, EmbeddedCouchLogger } from '../src/index.js';
import { freshDb, isAlive, rejectionStatus, startStore, waitFor } from './fixtures/store.js';

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly wwwAuthenticate: string | null;
}

/** One raw HTTP request to the store, with the given Authorization header (or none). */
async function raw(store: EmbeddedCouch, method: string, path: string, authorization?: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization !== undefined) headers['authorization'] = authorization;
  const res = await fetch(`${store.origin}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, wwwAuthenticate: res.headers.get('www-authenticate') };
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A logger that keeps every line it is given, fields included. */
function recordingLogger(lines: string[]): EmbeddedCouchLogger {
  const keep = (obj: Record<string, unknown>, msg: string): void => {
    lines.push(`${msg} ${JSON.stringify(obj)}`);
  };
  return { debug: keep, info: keep, warn: keep, error: keep };
}

t.test('a request without the credential gets 401 with a CouchDB error document and changes nothing', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store, 'fieldvault_sessions');
  await db.insert({ _id: 'user:admin', passwordHash: '$argon2id$secret-hash' });

  const read = await raw(store, 'GET', '/fieldvault_sessions/user:admin');
  t.equal(read.status, 401);
  t.same(read.body, { error: 'unauthorized', reason: 'Authentication required.' }, 'the document is not in the answer');
  t.equal(read.wwwAuthenticate, 'Basic realm="fieldvault-store"');
  t.equal((await raw(store, 'GET', '/')).status, 401, 'not even the welcome document');
  t.equal((await raw(store, 'GET', '/_all_dbs')).status, 401);

  const forged = await raw(store, 'PUT', '/fieldvault_sessions/session:forged', undefined, { kind: 'console', username: 'admin' });
  t.equal(forged.status, 401);
  t.equal((await raw(store, 'PUT', '/other_db')).status, 401);
  t.equal((await raw(store, 'DELETE', '/fieldvault_sessions')).status, 401);

  t.equal(await rejectionStatus(db.get('session:forged')), 404, 'the forged session was not written');
  t.equal((await db.info()).doc_count, 1, 'the database still holds its one document');
  t.same(await nano(store.url).db.list(), ['fieldvault_sessions'], 'no database was created or deleted');
});

t.test('a wrong password, a wrong user name or another scheme gets 401 and changes nothing', async (t) => {
  const store = await startStore(t);
  const db = await freshDb(store, 'records');
  const { username, password } = store.credential;
  const wrong = [
    basic(username, `${password.slice(0, -1)}${password.endsWith('A') ? 'B' : 'A'}`),
    basic(username, password.slice(0, 20)),
    basic(username, ''),
    basic('admin', password),
    basic(`${username}x`, password),
    `Bearer ${password}`,
    'Basic not-base64!',
  ];
  for (const authorization of wrong) {
    const answer = await raw(store, 'PUT', '/records/r1', authorization, { name: 'forged' });
    t.equal(answer.status, 401, authorization.split(' ')[0] ?? '');
    t.equal(answer.body['error'], 'unauthorized');
  }
  t.equal((await db.info()).doc_count, 0, 'nothing was written');
  t.equal((await raw(store, 'PUT', '/records/r1', store.authorization, { name: 'kept' })).status, 201, 'the right credential writes');
  t.equal((await db.get('r1'))['name'], 'kept');
});

t.test('each start has its own credential; a restart given the old one keeps URLs valid', async (t) => {
  const dataDir = t.testdir();
  const first = await startEmbeddedCouch({ dataDir });
  await nano(first.url).db.create('records');
  await nano(first.url).use<{ name: string }>('records').insert({ _id: 'r1', name: 'kept' });
  const { url: oldUrl, credential, port } = first;
  await first.stop();

  const fresh = await startEmbeddedCouch({ dataDir });
  t.not(fresh.credential.password, credential.password, 'a new start without a credential makes a new one');
  t.equal(fresh.credential.password.length, 43, '32 random bytes, base64url');
  t.equal((await raw(fresh, 'GET', '/records', first.authorization)).status, 401, 'the old credential does not open the new store');
  await fresh.stop();

  const again = await startStore(t, { dataDir, port, credential });
  t.equal(again.url, oldUrl, 'same port and credential: the same URL');
  t.equal((await nano(oldUrl).use<{ name: string }>('records').get('r1')).name, 'kept', 'the old URL reads the data');
});

t.test('a weak or malformed credential option is refused without quoting it', async (t) => {
  const dataDir = join(t.testdir(), 'couch');
  for (const credential of [
    { username: 'fieldvault', password: 'short-password' },
    { username: 'fieldvault', password: `${'x'.repeat(42)}:` },
    { username: 'has:colon', password: 'y'.repeat(43) },
    { username: '', password: 'y'.repeat(43) },
  ]) {
    const err = (await startEmbeddedCouch({ dataDir, credential }).then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string; message?: string } | undefined;
    t.equal(err?.code, 'INPUT_INVALID');
    t.notMatch(err?.message ?? '', credential.password, 'the password is not in the message');
  }
});

t.test('the credential is not on the store process command line, in its environment, in logs or in a printed store object', async (t) => {
  const lines: string[] = [];
  const store = await startStore(t, { logger: recordingLogger(lines) });
  const { password } = store.credential;
  const cmdline = readFileSync(`/proc/${store.pid}/cmdline`, 'utf8');
  t.match(cmdline, 'child.js', 'this is the store process');
  t.notMatch(cmdline, password, 'not on argv (ps shows argv to every account)');
  t.notMatch(readFileSync(`/proc/${store.pid}/environ`, 'utf8'), password, 'not in the environment');
  t.notMatch(JSON.stringify(store), password);
  t.notMatch(inspect(store, { depth: 5 }), password);
  t.notMatch(inspect(store, { depth: 5 }), store.authorization.slice(6), 'nor its Basic header');
  await raw(store, 'GET', '/');
  await store.stop();
  t.ok(lines.some((l) => l.includes('embedded store started')), 'the logger was used');
  t.notMatch(lines.join('\n'), password, 'no log line carries it');
  t.notMatch(lines.join('\n'), store.authorization.slice(6));
});

t.test('the standalone CLI writes the URL to a 0600 file and prints only the address and the file', async (t) => {
  const dataDir = join(t.testdir(), 'couch');
  // A file left by an earlier start (killed with -9, so not removed), world-readable: replaced whole.
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'store-url'), 'http://fieldvault:old@127.0.0.1:1/\n', { mode: 0o644 });
  const cli = join(import.meta.dirname, '..', 'dist', 'cli.js');
  const child = spawn(process.execPath, [cli, '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const urlFile = join(dataDir, 'store-url');
  t.ok(await waitFor(() => out.includes('never put the URL on a command line'), 30_000), 'the CLI printed how to reach the store');
  t.equal(statSync(urlFile).mode & 0o777, 0o600);
  t.same(readdirSync(dataDir).filter((f) => f.startsWith('store-url')), ['store-url'], 'written through a new file renamed into place, none left beside it');
  const url = new URL(readFileSync(urlFile, 'utf8').trim());
  t.equal(url.username, 'fieldvault');
  t.notMatch(out, url.password, 'the password is not printed');
  t.match(out, `store at ${url.origin} `);
  t.match(out, `FIELDVAULT_COUCHDB_URL_FILE=${urlFile}`);
  t.same(await nano(url.toString().replace(/\/$/, '')).db.list(), [], 'the URL in the file works');
  t.equal((await fetch(`${url.origin}/_all_dbs`)).status, 401, 'the address alone does not');

  const pid = Number(execFileSync('pgrep', ['-P', String(child.pid), '-f', 'child.js'], { encoding: 'utf8' }).trim());
  child.kill('SIGINT');
  await new Promise((resolve) => child.once('exit', resolve));
  t.ok(await waitFor(() => !isAlive(pid)), 'the store stopped with the CLI');
  t.throws(() => statSync(urlFile), { code: 'ENOENT' }, 'the URL file is removed on stop');
});
