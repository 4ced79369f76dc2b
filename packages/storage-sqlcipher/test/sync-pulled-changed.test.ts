// The sync summary's `pulledChanged` (field CLI polish, after issue 5): a REAL server process and
// real SDK devices on SQLCipher files. `pulled` counts every record the server sent, this phone's
// own pushed versions coming back included; `pulledChanged` counts only the records the pull made
// new or different on this phone, which is what a field worker asks ("what did this sync bring?").
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { NO_RATE_LIMITS, PASSWORD_A, PASSWORD_B, newDevice, startServers } from './helpers.js';
import type { ServerProcess } from '@fieldvault/test-support';

const [A, B] = (await startServers(t, 'pulled-changed', ['server-a', 'server-b'], [['amina', PASSWORD_A], ['bilal', PASSWORD_B]], NO_RATE_LIMITS)) as [ServerProcess, ServerProcess];

const testDirs = new WeakMap<Test, string>();

/** A phone on its own directory under the test's fixture directory (`t.testdir()` empties it: called once per test). */
async function phone(t: Test, name: string, imei: string): ReturnType<typeof newDevice> {
  let dir = testDirs.get(t);
  if (dir === undefined) {
    dir = t.testdir();
    testDirs.set(t, dir);
  }
  return newDevice(t, { imei }, join(dir, name));
}

t.test('a push then a pull of the same records counts 0 changed; a record edited on another phone counts 1', async (t) => {
  const p1 = await phone(t, 'p1', '356938035645001');
  const amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const r1 = await amina.createRecord({ name: 'Lina Odongo', age: 9 });
  const r2 = await amina.createRecord({ name: 'Peter Lokiru', age: 12 });

  const first = await amina.sync({ transport: A.transport() });
  t.match(first, { pushed: 2, failed: [] });
  t.equal(first.pulled, 2, 'the server sends the two pushed records back (pulled counts them)');
  t.equal(first.pulledChanged, 0, 'none of them changed this phone');
  const again = await amina.sync({ transport: A.transport() });
  t.match(again, { pushed: 0, pulled: 0, pulledChanged: 0 }, 'a sync with nothing new');

  const p2 = await phone(t, 'p2', '356938035645002');
  const bilal = await p2.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  const received = await bilal.sync({ transport: A.transport() });
  t.match(received, { pushed: 0, pulled: 2, pulledChanged: 2 }, 'both records are new on the second phone');

  await bilal.updateRecord(r1.id, { location: 'Camp 4' });
  const sent = await bilal.sync({ transport: A.transport() });
  t.match(sent, { pushed: 1, pulled: 1, pulledChanged: 0 }, 'the second phone\'s own edit coming back changes nothing there');

  const edited = await amina.sync({ transport: A.transport() });
  t.match(edited, { pushed: 0, pulled: 1, pulledChanged: 1 }, 'the edit made on the other phone changes one record here');
  t.equal((await amina.getRecord(r1.id)).fields['location']?.value, 'Camp 4');
  t.equal((await amina.getRecord(r2.id)).fields['location'], undefined, 'the other record is as it was');
});

t.test('a record this phone relayed to a second server comes back from it unchanged: pulled, not changed', async (t) => {
  const p1 = await phone(t, 'p1', '356938035645003');
  let amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const p2 = await phone(t, 'p2', '356938035645004');
  const bilal = await p2.device.loginOnline('bilal', PASSWORD_B, { transport: A.transport() });
  const made = await bilal.createRecord({ name: 'Rose Akello' });
  await bilal.sync({ transport: A.transport() });

  // The servers are shared by this file's tests: A holds the records of the test before too.
  const fromA = await amina.sync({ transport: A.transport() });
  t.ok(fromA.pulled >= 1, "A sends bilal's record");
  t.equal(fromA.pulledChanged, fromA.pulled, "every record A sends is new on amina's phone, bilal's among them");
  amina = await p1.device.loginOnline('amina', PASSWORD_A, { transport: B.transport() });
  const relayed = await amina.sync({ transport: B.transport() });
  t.match(relayed, { pushed: fromA.pulled, pulled: fromA.pulled, pulledChanged: 0 }, 'relayed to B and echoed back: the phone had them already');
  t.equal((await amina.getRecord(made.id)).fields['name']?.value, 'Rose Akello');
});
