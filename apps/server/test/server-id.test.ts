// A server id given by FIELDVAULT_SERVER_ID sticks to the data directory (audit s15 F8): a later
// start without the variable must not rename the server under its phones, which know it by id.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { runServer, stopServer, type Outcome } from './run-server.js';

/** What `file` holds, or null when it is missing (so a failure shows what the restart did next). */
function readId(file: string): string | null {
  return existsSync(file) ? readFileSync(file, 'utf8') : null;
}

/** The id a phone is told at login (`POST /v1/auth/challenge`), over the server's dev TLS. */
function challengeServerId(o: Outcome, dataDir: string): Promise<string> {
  const ca = readFileSync(join(dataDir, 'tls/dev-cert.pem'), 'utf8');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${o.url}/v1/auth/challenge`, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        const body = JSON.parse(text) as { serverId?: unknown };
        if (res.statusCode !== 200 || typeof body.serverId !== 'string') reject(new Error(`challenge answered ${res.statusCode}: ${text}`));
        else resolve(body.serverId);
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ imei: '350000000000098' }));
  });
}

t.test('an id from FIELDVAULT_SERVER_ID is recorded at first start and kept by a start without it', async (t) => {
  const dataDir = join(t.testdir(), 'data');
  const idFile = join(dataDir, 'server-id');

  const first = await runServer(dataDir, { FIELDVAULT_SERVER_ID: 'server-b' });
  t.teardown(() => stopServer(first));
  t.equal(first.state, 'started', first.output());
  t.match(first.output(), 'fieldvault server server-b listening');
  t.equal(await challengeServerId(first, dataDir), 'server-b');
  t.equal(readId(idFile), 'server-b\n', 'the configured id is written at the first start');
  if (existsSync(idFile)) t.equal(statSync(idFile).mode & 0o022, 0, 'nobody else may change it');
  t.equal(await stopServer(first), 0);

  const again = await runServer(dataDir);
  t.teardown(() => stopServer(again));
  t.equal(again.state, 'started', again.output());
  t.match(again.output(), 'fieldvault server server-b listening', 'no new srv-… id without the variable');
  t.equal(await challengeServerId(again, dataDir), 'server-b', 'phones are told the id they know');
  t.equal(await stopServer(again), 0);
  t.equal(readId(idFile), 'server-b\n');

  // The rule that keeps a server from being renamed still holds for the recorded id.
  const renamed = await runServer(dataDir, { FIELDVAULT_SERVER_ID: 'server-c' });
  t.teardown(() => stopServer(renamed));
  t.equal(renamed.state, 'exited', renamed.output());
  t.equal(renamed.code, 1);
  t.match(renamed.output(), /fieldvault: CONFIG_INVALID: /);
  t.match(renamed.output(), `FIELDVAULT_SERVER_ID is "server-c", but this data directory's server id (${idFile}) is "server-b"`);
  t.equal(readId(idFile), 'server-b\n', 'the file is left alone');

  const same = await runServer(dataDir, { FIELDVAULT_SERVER_ID: 'server-b' });
  t.teardown(() => stopServer(same));
  t.equal(same.state, 'started', same.output());
  t.match(same.output(), 'fieldvault server server-b listening');
  t.equal(await stopServer(same), 0);
});
