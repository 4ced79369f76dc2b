// Issue 5, item 4: a flow-4 migration carries the losing database's per-server acknowledgements
// and checkpoints into the winner, so the next syncs send and fetch only what each server lacks.
// Real server processes (apps/server on the embedded store) and a real SDK device on SQLCipher.
import t from 'tap';
import type { ServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A, PASSWORD_B, newDevice, startServers } from './helpers.js';

const [A, B] = (await startServers(t, 'sync-migration', ['server-a', 'server-b'], [['amina', PASSWORD_A], ['bilal', PASSWORD_B]])) as [
  ServerProcess,
  ServerProcess,
];

t.test('after flow 4 merges the database synced with A into the one synced with B, each server gets only what it lacks', async (t) => {
  const { device } = await newDevice(t, { imei: '356938035643851' });
  // amina: K_A from A, three records synced with A (acknowledged by A, A's checkpoint moved).
  const a1 = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  for (const name of ['A one', 'A two', 'A three']) await a1.createRecord({ name });
  t.equal((await a1.sync({ transport: A.transport() })).pushed, 3);
  await a1.logout();
  // bilal cannot open K_A: B issues K_B, a temporary database, two records synced with B.
  const b1 = await device.loginOnline('bilal', PASSWORD_B, { transport: B.transport() });
  t.equal(b1.kind, 'temporary:server-b');
  for (const name of ['B one', 'B two']) await b1.createRecord({ name });
  t.equal((await b1.sync({ transport: B.transport() })).pushed, 2);
  await b1.logout();

  // amina logs in to B: K_B (newer) wins, the K_A database is merged into it.
  const a2 = await device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  t.equal(a2.kind, 'verified');
  t.equal((await a2.listRecords()).length, 5);
  t.same(await a2.pendingCounts('server-a'), { records: 2, photos: 0 }, "A's acknowledgements came along: only bilal's two records are new to A");
  t.same(await a2.pendingCounts('server-b'), { records: 3, photos: 0 }, "B's stayed: only amina's three are new to B");
  const toB = await a2.sync({ transport: B.transport() });
  t.same([toB.pushed, toB.pulled, toB.failed], [3, 3, []], 'B: the three it lacked go, and come back from its checkpoint');
  await a2.logout();

  const a3 = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const toA = await a3.sync({ transport: A.transport() });
  t.same([toA.pushed, toA.pulled, toA.failed], [2, 2, []], "A: bilal's two only, and A's carried checkpoint pulls back just those (not all five again)");
  t.same(await a3.pendingCounts('server-a'), { records: 0, photos: 0 });
  t.same(await a3.pendingCounts('server-b'), { records: 0, photos: 0 });
  t.equal((await A.records()).length, 5);
  t.equal((await B.records()).length, 5);
});
