import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { createProcessPasswordHasher, type ProcessPasswordHasher } from '../src/users/process-password-hasher.js';
import type { AdmittingHasher } from '../src/users/admission.js';
import { ADMIN_PASSWORD, TEST_ARGON2, createUser, login, makeApp, newDevice, setupAdmin, startStore } from './helpers.js';

// Argon2id in a child process under `nice` (login storm: cheap requests must not starve).

function hasher(t: Test, niceness = 10): ProcessPasswordHasher {
  const h = createProcessPasswordHasher(TEST_ARGON2, { niceness });
  t.teardown(() => h.close());
  return h;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

/** Field 19 of /proc/<pid>/stat: the nice value (after the parenthesised command name). */
function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[19 - 3]);
}

t.test('a hash made in the child verifies in the child', async (t) => {
  const h = hasher(t);
  const digest = await h.hash('correct horse battery staple');
  t.match(digest, /^\$argon2id\$/);
  t.equal(await h.verify(digest, 'correct horse battery staple'), true);
  t.equal(h.needsRehash(digest), false);
});

t.test('a wrong password does not verify', async (t) => {
  const h = hasher(t);
  const digest = await h.hash('correct horse battery staple');
  t.equal(await h.verify(digest, 'correct horse battery stapler'), false);
});

t.test('a malformed digest does not verify', async (t) => {
  const h = hasher(t);
  t.equal(await h.verify('$argon2id$not-a-digest', 'whatever'), false);
  t.equal(await h.verify('', 'whatever'), false);
});

t.test('verifyDummy resolves for any password', async (t) => {
  const h = hasher(t);
  await h.verifyDummy('anything at all');
  await h.verifyDummy('');
  t.pass();
});

t.test('the child runs at the configured niceness', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const h = hasher(t, 7);
  t.equal(h.pid, undefined, 'not started before first use');
  await h.hash('x');
  const pid = h.pid;
  if (pid === undefined) throw new Error('no child');
  t.not(pid, process.pid);
  t.equal(niceOf(pid), niceOf(process.pid) + 7);
});

// Secrets audit s15, F4: the child inherited the whole environment, a COUCHDB_URL with its password included.
t.test('the child sees only an allow-listed environment', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const marker = 'https://admin:s3cret-marker@couch.example:5984';
  process.env['COUCHDB_URL'] = marker;
  t.teardown(() => {
    delete process.env['COUCHDB_URL'];
  });
  const h = hasher(t);
  await h.hash('x');
  const pid = h.pid;
  if (pid === undefined) throw new Error('no child');
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((v) => v !== '');
  t.notOk(environ.some((v) => v.includes('s3cret-marker')), 'the store URL is not in the child');
  // Node adds its IPC channel's variables; tap's process-info wrapper adds its own (and NODE_OPTIONS) to every child it sees.
  const added = (n: string): boolean => n.startsWith('NODE_CHANNEL_') || n.startsWith('_TAPJS_') || n === 'NODE_OPTIONS';
  const names = environ.map((v) => v.slice(0, v.indexOf('='))).filter((n) => !added(n));
  t.same(names.filter((n) => !['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ', 'UV_THREADPOOL_SIZE'].includes(n)), [], 'nothing beyond the allow-list');
  t.equal(await h.verify(await h.hash('pw'), 'pw'), true, 'and it still hashes and verifies');
});

t.test('a killed child fails the call in flight and the next call starts a new one', async (t) => {
  const h = createProcessPasswordHasher({ memoryKiB: 65_536, timeCost: 3, parallelism: 1 }, { niceness: 0 });
  t.teardown(() => h.close());
  const digest = await h.hash('before the crash');
  const first = h.pid;
  if (first === undefined) throw new Error('no child');
  const inFlight = h.verify(digest, 'before the crash');
  process.kill(first, 'SIGKILL');
  await t.rejects(inFlight, { code: 'INTERNAL_ERROR' });
  t.equal(await h.verify(digest, 'before the crash'), true);
  t.not(h.pid, first);
  t.ok(await waitGone(first));
});

t.test('a closed hasher stops its child and refuses further calls', async (t) => {
  const h = createProcessPasswordHasher(TEST_ARGON2, { niceness: 10 });
  await h.hash('x');
  const pid = h.pid;
  if (pid === undefined) throw new Error('no child');
  await h.close();
  t.ok(await waitGone(pid));
  await t.rejects(h.hash('x'), { code: 'INTERNAL_ERROR' });
});

t.test('with process isolation, logins work, passwords stay out of the logs and app.close() stops the child', async (t) => {
  const couch = await startStore(t);
  const { app, logs } = await makeApp(t, couch, { argon2: { ...TEST_ARGON2, isolation: 'process', niceness: 10 }, logLevel: 'debug' });
  const { token } = await setupAdmin(app);
  const password = await createUser(app, token, 'alice');
  const res = await login(app, newDevice(), { username: 'alice', password });
  t.equal(res.user.username, 'alice');
  const pid = ((app.passwordHasher as AdmittingHasher).inner as ProcessPasswordHasher).pid;
  if (pid === undefined) throw new Error('no child');
  t.ok(alive(pid));
  t.match(logs.text(), /password hasher process started/);
  t.notOk(logs.text().includes(password));
  t.notOk(logs.text().includes(ADMIN_PASSWORD));
  await app.close();
  t.ok(await waitGone(pid));
});
