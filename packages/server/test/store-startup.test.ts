import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startEmbeddedCouch, type EmbeddedCouch } from '@fieldvault/couch-embedded';
import { buildApp, type BuildAppInput } from '../src/index.js';
import { LogCapture, SETUP_TOKEN, TEST_ARGON2, freshPrefix } from './helpers.js';

/*
 * The server waits at start for a store that is not answering yet (a CouchDB that starts after
 * the server, a busy machine), up to `couch.startupWaitMs`, and then gives up with
 * STORE_UNAVAILABLE. Real embedded store on a port that is closed at first.
 */

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

// Long enough for the embedded store's credential rule (43+ base64url characters).
const PASSWORD_IN_URL = `store-pw-must-not-leak-${'x'.repeat(24)}`;

function config(port: number, startupWaitMs: number, logs: LogCapture): BuildAppInput {
  return {
    couch: { url: `http://app:${PASSWORD_IN_URL}@127.0.0.1:${port}`, dbPrefix: freshPrefix(), startupWaitMs },
    kek: new Uint8Array(randomBytes(32)),
    serverId: 'server-a',
    argon2: TEST_ARGON2,
    sweepIntervalSeconds: 0,
    adminTotp: { required: false },
    setupToken: SETUP_TOKEN,
    logLevel: 'info',
    logStream: logs,
  };
}

t.test('a store that comes up after the server is waited for', async (t) => {
  const dir = t.testdir();
  const port = await freePort();
  const logs = new LogCapture();
  let store: EmbeddedCouch | undefined;
  t.teardown(() => store?.stop());
  const started = Date.now();
  const starting = buildApp(config(port, 60_000, logs));
  // Start the store once the server has been refused, and later than Fastify's default plugin
  // timeout (10 s), which would otherwise cut the wait short.
  while (Date.now() - started < 11_000 || !logs.text().includes('the store is not answering yet')) await new Promise((r) => setTimeout(r, 100));
  t.match(logs.text(), 'the store is not answering yet', 'the wait is logged');
  const data = join(dir, 'couch');
  mkdirSync(data);
  // The store requires the credential the server was given (security audit H1).
  store = await startEmbeddedCouch({ dataDir: data, port, credential: { username: 'app', password: PASSWORD_IN_URL } });
  const app = await starting;
  t.teardown(() => app.close());
  await app.ready();
  t.equal(await app.repo.isSetupComplete(), false, 'the server runs on the store that came up late');
  t.notMatch(logs.text(), PASSWORD_IN_URL, 'the store URL (with its password) is never logged');
  await app.repo.dropDatabases();
});

t.test('the server gives up after the wait with STORE_UNAVAILABLE', async (t) => {
  const port = await freePort();
  const logs = new LogCapture();
  await t.rejects(buildApp(config(port, 800, logs)), { code: 'STORE_UNAVAILABLE' });
  t.match(logs.text(), 'the store is not answering yet', 'it tried again before giving up');
  t.notMatch(logs.text(), PASSWORD_IN_URL);
});

t.test('a wait of 0 tries once', async (t) => {
  const port = await freePort();
  const logs = new LogCapture();
  await t.rejects(buildApp(config(port, 0, logs)), { code: 'STORE_UNAVAILABLE' });
  t.notMatch(logs.text(), 'the store is not answering yet', 'no retry');
});
