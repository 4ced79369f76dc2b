// Security audit M4: one client address may hold only its share of the Argon2 login queue, so a
// burst of logins from one address cannot lock every other phone out with AUTH_BUSY. An IPv6 /64
// counts as one client, in the queue and in the rate limits.
import t from 'tap';
import { clientKey } from '../src/http/client-key.js';
import { createPasswordHasher } from '../src/users/password-hasher.js';
import { withAdmission } from '../src/users/admission.js';
import { createUser, loginRaw, makeApp, newDevice, setupAdmin, startStore } from './helpers.js';

const PASSWORD = 'a long enough passphrase here';
const real = createPasswordHasher({ memoryKiB: 8192, timeCost: 2, parallelism: 1 });

t.test('client keys: IPv4 as is, IPv4-mapped IPv6 as its IPv4, IPv6 by its /64', async (t) => {
  t.equal(clientKey('192.0.2.7'), '192.0.2.7');
  t.equal(clientKey('::ffff:192.0.2.7'), '192.0.2.7');
  t.equal(clientKey('2001:db8:1:2:3:4:5:6'), clientKey('2001:db8:1:2::ffff'), 'two addresses of one /64 are one client');
  t.not(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'), 'another /64 is another client');
  t.equal(clientKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
});

t.test('one client gets at most its share of the queue while another client still gets a slot', async (t) => {
  const digest = await real.hash(PASSWORD);
  const hasher = withAdmission(real, { maxQueued: 4, maxPerClient: 2 });
  const a = hasher.forClient('192.0.2.1');
  const fromA = Array.from({ length: 6 }, () => a.verify(digest, PASSWORD));
  // Asked while A's checks hold their slots: A is over its share, the queue is not full.
  const fromB = hasher.forClient('192.0.2.2').verify(digest, PASSWORD);
  const resultsA = await Promise.allSettled(fromA);
  t.equal(resultsA.filter((r) => r.status === 'fulfilled').length, 2, 'two of A\'s checks ran');
  const refused = resultsA.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.equal(refused.length, 4);
  for (const r of refused) {
    t.equal((r.reason as { code: string }).code, 'AUTH_BUSY');
    t.equal((r.reason as { details: { scope: string } }).details.scope, 'client', 'refused for the client\'s share, not a full queue');
  }
  t.equal(await fromB, true, 'B was admitted and checked');
  t.equal(hasher.queued, 0);
  t.equal(await a.verify(digest, PASSWORD), true, 'A has its share again once its checks finished');
});

t.test('an IPv6 /64 shares one client\'s share', async (t) => {
  const digest = await real.hash(PASSWORD);
  const hasher = withAdmission(real, { maxQueued: 10, maxPerClient: 1 });
  const [first, second] = await Promise.allSettled([
    hasher.forClient(clientKey('2001:db8:5:6::1')).verify(digest, PASSWORD),
    hasher.forClient(clientKey('2001:db8:5:6::2')).verify(digest, PASSWORD),
  ]);
  t.same(first, { status: 'fulfilled', value: true });
  t.equal(second.status === 'rejected' ? (second.reason as { code: string }).code : 'admitted', 'AUTH_BUSY');
});

t.test('the global bound still holds for calls without a client', async (t) => {
  const digest = await real.hash(PASSWORD);
  const hasher = withAdmission(real, { maxQueued: 1, maxPerClient: 1 });
  const first = hasher.verify(digest, PASSWORD);
  await t.rejects(hasher.forClient('192.0.2.9').verify(digest, PASSWORD), { code: 'AUTH_BUSY' }, 'the queue is full');
  t.equal(await first, true);
});

t.test('over HTTP: a burst of logins from one address is refused beyond its share, a user from another address logs in', async (t) => {
  const couch = await startStore(t);
  // Real Argon2id cost (64 MiB, t=3), so the burst's checks overlap; a queue of 4, 2 per client.
  const { app } = await makeApp(t, couch, {
    argon2: { memoryKiB: 65_536, timeCost: 3, parallelism: 1, isolation: 'threadpool', maxQueued: 4, maxQueuedPerClient: 2 },
  });
  const { token } = await setupAdmin(app);
  const alicePassword = await createUser(app, token, 'alice');
  const attacker = '198.51.100.7';
  const burst = Array.from({ length: 8 }, (_, i) => loginRaw(app, newDevice(), { username: `nobody${i}`, password: PASSWORD, remoteAddress: attacker }));
  const alice = loginRaw(app, newDevice(), { username: 'alice', password: alicePassword, remoteAddress: '203.0.113.5' });
  const codes = (await Promise.all(burst)).map((r) => (r.json() as { code?: string }).code);
  t.ok(codes.includes('AUTH_BUSY'), `the burst was refused beyond its share: ${codes.join(',')}`);
  t.ok(codes.every((c) => c === 'AUTH_BUSY' || c === 'AUTH_INVALID_CREDENTIALS'));
  const res = await alice;
  t.equal(res.statusCode, 200, 'the other address got a slot and logged in');
});
