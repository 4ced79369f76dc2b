import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startEmbeddedCouch } from '../src/index.js';
import { rejectionCode, startStore, storeProcessesFor } from './fixtures/store.js';

t.test('a data directory that is a file fails with STORE_START_FAILED and leaves no process', async (t) => {
  const dataDir = join(t.testdir(), 'not-a-dir');
  writeFileSync(dataDir, 'plain file');
  t.equal(await rejectionCode(startEmbeddedCouch({ dataDir })), 'STORE_START_FAILED');
  t.same(storeProcessesFor(dataDir), []);
});

t.test('a port already in use fails with STORE_START_FAILED and leaves no process', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => blocker.close(resolve)));
  const { port } = blocker.address() as AddressInfo;
  const dataDir = t.testdir();

  t.equal(await rejectionCode(startEmbeddedCouch({ dataDir, port })), 'STORE_START_FAILED');
  t.same(storeProcessesFor(dataDir), []);
});

t.test('a second store on the same data directory fails with STORE_START_FAILED', async (t) => {
  const dataDir = t.testdir();
  const first = await startStore(t, { dataDir });
  const pidsBefore = storeProcessesFor(dataDir);

  t.equal(await rejectionCode(startEmbeddedCouch({ dataDir })), 'STORE_START_FAILED');
  t.same(storeProcessesFor(dataDir), pidsBefore, 'only the first store runs');
  t.equal(first.crashed, false);
});

t.test('a store that does not answer in time is killed and fails with STORE_START_FAILED', async (t) => {
  const dataDir = t.testdir();
  t.equal(await rejectionCode(startEmbeddedCouch({ dataDir, startTimeoutMs: 1 })), 'STORE_START_FAILED');
  t.same(storeProcessesFor(dataDir), []);
});
