import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import nano from 'nano';
import t from 'tap';
import { startEmbeddedCouch } from '../src/index.js';
import type { EmbeddedCouchCrash } from '../src/index.js';
import { isAlive, rejectionCode, startStore, storeProcessesFor, waitFor } from './fixtures/store.js';

t.test('a started store answers the welcome document on a loopback port', async (t) => {
  const dataDir = join(t.testdir(), 'nested', 'couch');
  const began = process.hrtime.bigint();
  const store = await startStore(t, { dataDir });
  t.comment(`start took ${(Number(process.hrtime.bigint() - began) / 1e6).toFixed(0)} ms`);

  t.equal(store.origin, `http://127.0.0.1:${store.port}`);
  t.equal(store.url, `http://fieldvault:${store.credential.password}@127.0.0.1:${store.port}`, 'the URL carries the credential');
  t.equal(store.dataDir, dataDir, 'the missing data directory was created');
  t.ok(isAlive(store.pid));
  t.equal(store.crashed, false);
  const welcome = await (await fetch(`${store.origin}/`, { headers: { authorization: store.authorization } })).json();
  t.match(welcome, { 'express-pouchdb': 'Welcome!' });
});

t.test('data survives a stop and a start on the same data directory', async (t) => {
  const dataDir = t.testdir();
  const first = await startEmbeddedCouch({ dataDir });
  const couch = nano(first.url);
  await couch.db.create('records');
  await couch.use('records').bulk({ docs: [{ _id: 'r1', name: 'kept' }, { _id: 'r2' }] });
  const seqBefore = (await couch.use('records').changes()).last_seq;
  await first.stop();

  const second = await startStore(t, { dataDir });
  const again = nano(second.url).use<{ name?: string }>('records');
  t.equal((await again.get('r1')).name, 'kept');
  t.equal((await again.info()).doc_count, 2);
  t.same((await again.changes({ since: seqBefore })).results, [], 'the checkpoint is still valid');
});

t.test('stop is idempotent, ends the process and frees the port', async (t) => {
  const store = await startEmbeddedCouch({ dataDir: t.testdir() });
  await Promise.all([store.stop(), store.stop()]);
  await store.stop();
  t.notOk(isAlive(store.pid), 'the process has exited');
  t.equal(store.crashed, false, 'a requested stop is not a crash');

  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(store.port, '127.0.0.1', resolve);
  });
  t.pass('the port can be bound again');
  await new Promise((resolve) => probe.close(resolve));
});

t.test('a kill -9 of the store is reported as a crash and stop still resolves', async (t) => {
  const store = await startStore(t);
  const crash = new Promise<EmbeddedCouchCrash>((resolve) => store.once('crash', resolve));
  process.kill(store.pid, 'SIGKILL');

  t.same(await crash, { code: null, signal: 'SIGKILL' });
  t.equal(store.crashed, true);
  await store.stop();
  t.pass('stop resolves after a crash');
});

t.test('writes acknowledged before a kill -9 are there after a restart', async (t) => {
  const dataDir = t.testdir();
  const first = await startEmbeddedCouch({ dataDir });
  const crashed = new Promise((resolve) => first.once('crash', resolve));
  const couch = nano(first.url);
  await couch.db.create('records');
  await couch.use('records').bulk({ docs: Array.from({ length: 200 }, (_, i) => ({ _id: `r${i}` })) });
  process.kill(first.pid, 'SIGKILL');
  await crashed;

  const second = await startStore(t, { dataDir });
  t.equal((await nano(second.url).use('records').info()).doc_count, 200);
});

t.test('the store exits when its parent process dies', async (t) => {
  const dir = t.testdir();
  const dataDir = join(dir, 'couch');
  const script = join(dir, 'parent.mjs');
  const entry = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'index.js')).href;
  writeFileSync(
    script,
    `import { startEmbeddedCouch } from ${JSON.stringify(entry)};\n` +
      `const store = await startEmbeddedCouch({ dataDir: process.argv[2] });\n` +
      `process.stdout.write(JSON.stringify({ pid: store.pid }) + '\\n');\n` +
      `setInterval(() => {}, 1000);\n`,
  );
  const parent = spawn(process.execPath, [script, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    parent.kill('SIGKILL');
  });
  const line = await new Promise<string>((resolve) => createInterface({ input: parent.stdout }).once('line', resolve));
  const { pid } = JSON.parse(line) as { pid: number };
  t.ok(isAlive(pid), 'the store runs');

  parent.kill('SIGKILL');
  t.ok(await waitFor(() => !isAlive(pid)), 'the store exited after its parent was killed');

  const next = await startStore(t, { dataDir });
  t.ok(isAlive(next.pid), 'the data directory is free for a new store');
});

t.test('a non-loopback host is refused before anything starts', async (t) => {
  const dataDir = join(t.testdir(), 'couch');
  for (const host of ['0.0.0.0', '192.168.1.10', '::', 'example.org']) {
    t.equal(await rejectionCode(startEmbeddedCouch({ dataDir, host })), 'INPUT_INVALID', host);
  }
  t.same(storeProcessesFor(dataDir), []);
});
