// A server whose store was replaced (restored from an older backup, or started on new, empty
// databases) no longer knows the pull checkpoint it gave a phone, and may lack records it
// acknowledged. The phone's next sync forgets that server's acknowledgements and checkpoint and
// syncs everything again: what the server lacks is pushed back, nothing is duplicated. A real
// server process (same data directory, KEK and server id; other store databases) and a real
// SQLCipher phone.
import { join } from 'node:path';
import t from 'tap';
import { startServerProcess } from '@fieldvault/test-support';
import { NO_RATE_LIMITS, PASSWORD_A, newDevice } from './helpers.js';

t.test("a server started on empty databases refuses the phone's checkpoint; the phone's next sync pushes everything back to it and pulls from the start", async (t) => {
  const root = t.testdir();
  const dataDir = join(root, 'server');
  const start = (prefix: string) => startServerProcess(dataDir, 'server-r', { env: { ...NO_RATE_LIMITS, FIELDVAULT_COUCHDB_PREFIX: prefix } });

  let server = await start('first_');
  t.teardown(() => server.stop());
  await server.createUser('amina', PASSWORD_A);
  const phone = await newDevice(t, { imei: '356938035646001' }, join(root, 'phone'));
  let amina = await phone.device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
  const made = [];
  for (let i = 0; i < 3; i += 1) made.push(await amina.createRecord({ name: `Child ${i}`, age: 3 + i }));
  const first = await amina.sync({ transport: server.transport() });
  t.same([first.pushed, first.failed], [3, []], 'the first server holds the three records');
  await amina.logout();
  await server.stop();

  // The same server (data directory, KEK, id) on new, empty databases: its store is not the one
  // that acknowledged the records and gave the checkpoint.
  server = await start('second_');
  await server.createUser('amina', PASSWORD_A);
  t.same(await server.records(), [], 'the new databases are empty');
  amina = await phone.device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
  const again = await amina.sync({ transport: server.transport() });
  t.same(again.failed, [], 'the sync succeeds (was SYNC_CHECKPOINT_INVALID at every sync)');
  t.equal(again.pushed, 3, 'everything the phone holds is pushed again');
  const held = (await server.records()).map((r) => r.id).sort();
  t.same(held, made.map((r) => r.id).sort(), 'and the server holds every record again');
  const idle = await amina.sync({ transport: server.transport() });
  t.same([idle.pushed, idle.pulled, idle.failed], [0, 0, []], 'the sync after it has nothing to do');
  t.equal((await amina.listRecords({ limit: 50, offset: 0 })).length, 3, 'no duplicates on the phone');
  await amina.logout();
});
