// Operator audit s12 (task B) and multi-server audit L10, with real processes: a server on a store
// run by `fieldvault-couch` (what `npm run couch` starts) through FIELDVAULT_COUCHDB_URL_FILE. When
// the store stops, the log gets one error record, not one per refused request; when it is started
// again (another port or another credential, written to the same file) the server follows it
// without a restart, says so, and says that the store answers again.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { startServerChild, type ServerChild } from './server-child.js';

const couchCli = fileURLToPath(new URL('../../../packages/couch-embedded/dist/cli.js', import.meta.url));

interface Store {
  readonly child: ChildProcess;
  /** The URL the file holds (credential included: only for checking that no log shows it). */
  readonly url: URL;
  readonly address: string;
  stop(): Promise<void>;
}

/** `fieldvault-couch --data DIR --url-file FILE [--port N]`, resolved once the URL file is written. */
async function startStore(dataDir: string, urlFile: string, port = 0): Promise<Store> {
  const child = spawn(process.execPath, [couchCli, '--data', dataDir, '--url-file', urlFile, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; !out.includes('URL with the credential'); i++) {
    if (child.exitCode !== null || i > 600) throw new Error(`fieldvault-couch did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = new URL(readFileSync(urlFile, 'utf8').trim());
  return {
    child,
    url,
    address: `${url.hostname}:${url.port}`,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}

interface LogRecord {
  readonly level: number;
  readonly msg: string;
  readonly store?: string;
  readonly from?: string;
  readonly cause?: string;
  readonly refused?: number;
}

function records(s: ServerChild): LogRecord[] {
  return s
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogRecord);
}

/** A request that reads the store (a bearer token's session): 503 while it is down, 401 while it answers. */
function ask(s: ServerChild, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${s.url}/v1/users`, { agent: false, ca, headers: { authorization: `Bearer ${'A'.repeat(43)}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function startAll(t: Test): Promise<{ store: () => Store; restart: (port?: number) => Promise<Store>; server: ServerChild; ca: string; urlFile: string }> {
  const dir = t.testdir();
  const couchDir = join(dir, 'couch');
  const urlFile = join(dir, 'store-url');
  let store = await startStore(couchDir, urlFile);
  t.teardown(() => store.stop());
  const dataDir = join(dir, 'data');
  const server = await startServerChild(dataDir, { FIELDVAULT_COUCHDB_URL_FILE: urlFile, FIELDVAULT_HTTP_PORT: 'off' });
  t.teardown(async () => {
    if (server.child.exitCode === null) server.child.kill('SIGINT');
    await server.exited;
  });
  return {
    store: () => store,
    restart: async (port = 0) => {
      store = await startStore(couchDir, urlFile, port);
      return store;
    },
    server,
    ca: readFileSync(join(dataDir, 'tls/dev-cert.pem'), 'utf8'),
    urlFile,
  };
}

/** The server's records with `msg` starting so, once at least one is out (its stdout arrives on its own time). */
async function logged(s: ServerChild, start: string): Promise<LogRecord[]> {
  for (let i = 0; i < 100; i++) {
    const found = records(s).filter((r) => r.msg.startsWith(start));
    if (found.length > 0) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  return [];
}

/** Asks until the server serves again (it reads the URL file at most every 3 s). */
async function untilServed(s: ServerChild, ca: string): Promise<number> {
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    if ((await ask(s, ca)) === 401) return refused;
    refused++;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`still refused after ${refused} requests:\n${s.output()}`);
}

/**
 * One more request once nothing was refused for a while: the store counts as back only after two
 * quiet seconds (store-outage.ts, OUTAGE_QUIET_MS), so the recovery record comes with this one.
 */
async function servedAfterQuiet(s: ServerChild, ca: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 2_200));
  t.equal(await ask(s, ca), 401, 'served after two quiet seconds');
}

t.test('npm run couch stopped and started again on another port: one error record, then the server follows the store', async (t) => {
  const { store, restart, server, ca } = await startAll(t);
  t.equal(await ask(server, ca), 401, 'served');
  const first = store();
  await first.stop();

  for (let i = 0; i < 10; i++) t.equal(await ask(server, ca), 503, 'refused while the store is stopped');
  await logged(server, 'the store stopped answering');
  const errors = records(server).filter((r) => r.level >= 50);
  t.equal(errors.length, 1, `ten refused requests, one error record:\n${server.output()}`);
  t.match(errors[0], { msg: 'the store stopped answering', store: first.address, cause: 'ECONNREFUSED' });

  const second = await restart();
  t.not(second.address, first.address, 'another port');
  const more = await untilServed(server, ca);
  await servedAfterQuiet(server, ca);
  const moved = await logged(server, 'the store moved');
  t.equal(moved.length, 1, server.output());
  t.match(moved[0], { level: 40, store: second.address, from: first.address, msg: `the store moved: ${first.address} → ${second.address} (its URL file changed): this server uses it now` });
  const back = await logged(server, 'the store answers again');
  t.equal(back.length, 1);
  t.match(back[0], { level: 40, store: second.address, refused: 10 + more });
  t.match(back[0]?.msg, new RegExp(`^the store answers again after \\d+ s, ${10 + more} requests refused$`));
  t.equal(records(server).filter((r) => r.level >= 50).length, 1, 'still the one error record');
  for (const s of [first, second]) t.notOk(server.output().includes(s.url.password), 'no store credential in the output');
});

t.test('npm run couch started again on the same port with a new credential (the old one gets 401): the server takes the new one', async (t) => {
  const { store, restart, server, ca } = await startAll(t);
  const first = store();
  await first.stop();
  t.equal(await ask(server, ca), 503);
  // The same port (`npm run couch -- --port N`): only the credential is new.
  const second = await restart(Number(first.url.port));
  t.equal(second.address, first.address);
  t.not(second.url.password, first.url.password, 'a new credential');
  await untilServed(server, ca);
  await servedAfterQuiet(server, ca);
  const moved = await logged(server, `the store at ${second.address} has a new credential`);
  t.equal(moved.length, 1, server.output());
  t.match(moved[0], { level: 40, store: second.address, from: first.address, msg: `the store at ${second.address} has a new credential (its URL file changed): this server uses it now` });
  t.equal((await logged(server, 'the store answers again')).length, 1);
  for (const s of [first, second]) t.notOk(server.output().includes(s.url.password), 'no store credential in the output');
});

t.test('a URL file that is there but not a URL is said once at warn, without its content; a missing one is not reported', async (t) => {
  const { store, restart, server, ca, urlFile } = await startAll(t);
  await store().stop(); // removes the URL file, as a stopping `npm run couch` does
  t.equal(await ask(server, ca), 503);
  const junk = 'postgres-password-hunter2 is not a URL';
  writeFileSync(urlFile, `${junk}\n`, { mode: 0o600 });
  for (let i = 0; i < 2; i++) {
    await new Promise((r) => setTimeout(r, 3_100)); // the file is read again at most every 3 s
    t.equal(await ask(server, ca), 503);
  }
  const unusable = await logged(server, "the store's URL file cannot be used");
  t.equal(unusable.length, 1, `said once for two reads:\n${server.output()}`);
  t.equal(unusable[0]?.level, 40);
  t.match(unusable[0]?.msg, 'must hold one http(s) URL');
  t.notOk(server.output().includes('hunter2'), "the file's content is not quoted");
  t.notOk(records(server).some((r) => r.level >= 40 && r.msg.includes('does not exist')), 'the missing file was not reported');

  await restart();
  await untilServed(server, ca);
});
