// Operator audit s12, task B: a store outage is logged once when it starts, summarised at most once
// a minute while it lasts and once more when the store answers again, instead of one error record
// per refused request; and a store that moved (started again on another port, with a new
// credential, named by its URL file) is followed without a restart when it is the same store
// (multi-server audit L10). Real embedded stores, a real app; only the clock is fake.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { startEmbeddedCouch, type EmbeddedCouch } from '@fieldvault/couch-embedded';
import { bearer, freshPrefix, json, makeApp, setupAdmin, storeRecorder, type LogCapture } from './helpers.js';

interface LogRecord {
  readonly level: number;
  readonly msg: string;
  readonly store?: string;
  readonly from?: string;
  readonly named?: string;
  readonly cause?: string;
  readonly refused?: number;
  readonly since?: string;
  readonly downMs?: number;
}

const records = (logs: LogCapture): LogRecord[] => logs.lines.map((l) => JSON.parse(l) as LogRecord);
const address = (couch: EmbeddedCouch): string => `127.0.0.1:${couch.port}`;

/**
 * A request that reads the store (the session of a bearer token): 503 while it is down, 401 once it
 * answers. A 503 with another code fails the test by throwing, not by an assertion: `until` asks as
 * often as timing needs, and a count of assertions that moved from run to run told nothing.
 */
async function ask(app: FastifyInstance): Promise<number> {
  const res = await app.inject({ method: 'GET', url: '/v1/users', headers: { authorization: `Bearer ${'A'.repeat(43)}` } });
  if (res.statusCode === 503 && json(res)['code'] !== 'STORE_UNAVAILABLE') throw new Error(`503 with ${String(json(res)['code'])}`);
  return res.statusCode;
}

/** Waits (polling, no fixed sleep) until `done` holds: the app checks a moved store in the background. */
async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

t.test('an outage is one error record, a summary per minute at most, and a warn record when the store answers again', async (t) => {
  const dataDir = t.testdir();
  const first = await startEmbeddedCouch({ dataDir });
  let store = first;
  t.teardown(() => store.stop());
  const { app, logs, clock } = await makeApp(t, first);
  t.equal(await ask(app), 401, 'the store answers');
  const startedAt = clock.now();
  await first.stop();

  for (let i = 0; i < 5; i++) t.equal(await ask(app), 503);
  let errors = records(logs).filter((r) => r.level >= 50);
  t.equal(errors.length, 1, 'five refused requests, one error record');
  t.equal(errors[0]?.msg, 'the store stopped answering');
  t.equal(errors[0]?.store, address(first), 'it names the store by host:port');
  t.equal(errors[0]?.cause, 'ECONNREFUSED', 'and why');
  t.notOk(records(logs).some((r) => r.msg === 'request failed: the store did not answer'), 'no record per request at info level');

  clock.advance(59_000);
  t.equal(await ask(app), 503);
  t.equal(records(logs).filter((r) => r.level >= 50).length, 1, 'no summary within the minute');
  clock.advance(2_000);
  t.equal(await ask(app), 503);
  t.equal(await ask(app), 503);
  errors = records(logs).filter((r) => r.level >= 50);
  t.equal(errors.length, 2, 'one summary after a minute, for two more requests');
  const since = new Date(startedAt).toISOString();
  t.equal(errors[1]?.msg, `the store is still down: 7 requests refused since ${since}`);
  t.match(errors[1], { store: address(first), refused: 7, since, cause: 'ECONNREFUSED' });

  // The same store back on its port (as the server's own supervisor restarts it).
  store = await startEmbeddedCouch({ dataDir, port: first.port, credential: first.credential });
  clock.advance(30_000);
  t.equal(await ask(app), 401, 'served again');
  const back = records(logs).filter((r) => r.level === 40 && r.msg.startsWith('the store answers again'));
  t.equal(back.length, 1, 'one recovery record');
  t.equal(back[0]?.msg, 'the store answers again after 1 min 31 s, 8 requests refused');
  t.match(back[0], { store: address(first), refused: 8, downMs: 91_000 });
  t.equal(await ask(app), 401);
  t.equal(records(logs).filter((r) => r.msg.startsWith('the store answers again')).length, 1, 'said once');

  // A second outage is a new one: its first failure is logged again.
  await store.stop();
  t.equal(await ask(app), 503);
  t.equal(records(logs).filter((r) => r.msg === 'the store stopped answering').length, 2);
  const password = first.credential.password;
  t.notOk(logs.text().includes(password), 'the store credential is in no log line');
});

t.test('a store started again on another port with a new credential is followed when it is the same store', async (t) => {
  const dir = t.testdir();
  const dataDir = join(dir, 'couch');
  const urlFile = join(dir, 'store-url');
  const first = await startEmbeddedCouch({ dataDir });
  let store = first;
  t.teardown(() => store.stop());
  writeFileSync(urlFile, `${first.url}\n`, { mode: 0o600 });
  const { app, logs, clock } = await makeApp(t, first);
  app.followStoreUrl({ read: () => readFileSync(urlFile, 'utf8').trim() });
  const { token: admin } = await setupAdmin(app);
  t.equal(await ask(app), 401);

  await first.stop();
  t.equal(await ask(app), 503);
  // `npm run couch` again: another port, another credential, written to the same file.
  store = await startEmbeddedCouch({ dataDir });
  t.not(store.port, first.port);
  writeFileSync(urlFile, `${store.url}\n`, { mode: 0o600 });
  t.equal(await ask(app), 503, 'read again at most every few seconds: not yet');
  clock.advance(3_000);
  await until(async () => (await ask(app)) === 401, 'the server serves from the moved store');
  // The store counts as back once it answered with nothing refused for two seconds.
  clock.advance(2_000);
  t.equal(await ask(app), 401);

  const moved = records(logs).filter((r) => r.msg.startsWith('the store moved'));
  t.equal(moved.length, 1, 'one record says the store moved');
  t.equal(moved[0]?.level, 40);
  t.equal(moved[0]?.msg, `the store moved: ${address(first)} → ${address(store)} (its URL file changed): this server uses it now`);
  t.match(moved[0], { store: address(store), from: address(first) });
  t.equal(app.storeAddress, address(store), 'the store is named by its new address from now on');
  t.ok(records(logs).some((r) => r.level === 40 && r.msg.startsWith('the store answers again') && r.store === address(store)), 'and it answers again');
  for (const secret of [first.credential.password, store.credential.password]) t.notOk(logs.text().includes(secret), 'no credential in the log');

  // The app's other store clients moved too: sign-ups and backups read through the same endpoint.
  const signups = await app.inject({ method: 'GET', url: '/v1/signups', headers: bearer(admin) });
  t.equal(signups.statusCode, 200, signups.body);
  const inventory = await app.inject({ method: 'GET', url: '/v1/admin/backup/inventory', headers: bearer(admin) });
  t.equal(inventory.statusCode, 200, inventory.body);
});

t.test('a URL file naming another store is not followed: one error record says why, requests stay refused', async (t) => {
  const dir = t.testdir();
  const urlFile = join(dir, 'store-url');
  mkdirSync(join(dir, 'other'));
  const first = await startEmbeddedCouch({ dataDir: join(dir, 'couch') });
  const other = await startEmbeddedCouch({ dataDir: join(dir, 'other') });
  t.teardown(() => other.stop());
  writeFileSync(urlFile, `${first.url}\n`, { mode: 0o600 });
  const { app, logs, clock } = await makeApp(t, first);
  app.followStoreUrl({ read: () => readFileSync(urlFile, 'utf8').trim() });
  await first.stop();
  writeFileSync(urlFile, `${other.url}\n`, { mode: 0o600 });

  t.equal(await ask(app), 503);
  const refused = (): LogRecord[] => records(logs).filter((r) => r.msg.startsWith("the store's URL file now names"));
  await until(() => refused().length > 0, 'the mismatch is logged');
  for (let i = 0; i < 3; i++) {
    clock.advance(5_000);
    t.equal(await ask(app), 503, 'not switched to another store');
  }
  await new Promise((r) => setTimeout(r, 200)); // checks started by these requests end
  t.equal(refused().length, 1, 'said once');
  t.equal(refused()[0]?.level, 50);
  t.match(refused()[0], { store: address(first), named: address(other) });
  t.match(refused()[0]?.msg, `the store's URL file now names ${address(other)}, but it has no database`);
  t.match(refused()[0]?.msg, 'restart this server to start on that store');
  t.equal(app.storeAddress, address(first));
  t.notOk(logs.text().includes(other.credential.password), 'no credential in the log');
});

t.test('a store that answers some calls and refuses others is one outage, not two records per request', async (t) => {
  const couch = await startEmbeddedCouch({ dataDir: t.testdir() });
  t.teardown(() => couch.stop());
  let failing = false;
  // Listing users reads the users database by id range; authentication reads single documents.
  const relay = await storeRecorder(t, couch, { refuse: (r) => failing && r.startsWith('GET ') && r.includes('/_all_docs') && r.includes('"user:"') });
  const { app, logs, clock } = await makeApp(t, relay);
  const { token: admin } = await setupAdmin(app);
  const listUsers = async (): Promise<number> => (await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(admin) })).statusCode;
  t.equal(await listUsers(), 200);

  failing = true;
  const startedAt = clock.now();
  for (let i = 0; i < 6; i++) {
    t.equal(await listUsers(), 503, 'the session is read, the list is refused');
    clock.advance(500);
  }
  t.equal(records(logs).filter((r) => r.level >= 50).length, 1, 'one error record for six requests');
  t.equal(records(logs).filter((r) => r.msg.startsWith('the store answers again')).length, 0, 'and no recovery record between them');

  failing = false;
  t.equal(await listUsers(), 200, 'served again');
  t.equal(records(logs).filter((r) => r.msg.startsWith('the store answers again')).length, 0, 'within two seconds of the last refusal: not over yet');
  clock.advance(2_000);
  t.equal(await listUsers(), 200);
  const back = records(logs).filter((r) => r.msg.startsWith('the store answers again'));
  t.equal(back.length, 1, 'one recovery record');
  t.match(back[0], { refused: 6, downMs: 3_000, since: new Date(startedAt).toISOString() }, 'dated from the first answer after the last refusal');
  t.equal(records(logs).filter((r) => r.msg === 'the store stopped answering').length, 1);
});

t.test('a store set up by another server with the same KEK and prefix is not followed, even before any pull', async (t) => {
  const dir = t.testdir();
  const urlFile = join(dir, 'store-url');
  const first = await startEmbeddedCouch({ dataDir: join(dir, 'first') });
  const other = await startEmbeddedCouch({ dataDir: join(dir, 'other') });
  t.teardown(() => other.stop());
  const kek = new Uint8Array(randomBytes(32));
  const dbPrefix = freshPrefix();
  // The same KEK file and prefix on a second, empty store: its databases and KEK marker look like
  // this server's, but its records database is another copy (its own store generation).
  await makeApp(t, other, { kek, couch: { dbPrefix } });
  writeFileSync(urlFile, `${first.url}\n`, { mode: 0o600 });
  const { app, logs } = await makeApp(t, first, { kek, couch: { dbPrefix } });
  app.followStoreUrl({ read: () => readFileSync(urlFile, 'utf8').trim() });
  await first.stop();
  writeFileSync(urlFile, `${other.url}\n`, { mode: 0o600 });

  t.equal(await ask(app), 503);
  const refused = (): LogRecord[] => records(logs).filter((r) => r.msg.startsWith("the store's URL file now names"));
  await until(() => refused().length > 0, 'the mismatch is logged');
  t.match(refused()[0]?.msg, 'its records database is another copy');
  t.equal(app.storeAddress, address(first), 'not switched');
  t.equal(await ask(app), 503);
});
