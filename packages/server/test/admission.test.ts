// The bound on password checks in flight: beyond it a check fails at once with AUTH_BUSY and a
// Retry-After, nothing else changes; below it every check runs. Real Argon2id (cheap parameters).
import t from 'tap';
import { createPasswordHasher } from '../src/users/password-hasher.js';
import { withAdmission } from '../src/users/admission.js';

const real = createPasswordHasher({ memoryKiB: 8192, timeCost: 2, parallelism: 1 });

t.test('beyond maxQueued checks in flight, the next ones are refused with AUTH_BUSY and a Retry-After', async (t) => {
  const digest = await real.hash('a long enough passphrase here');
  const hasher = withAdmission(real, { maxQueued: 2, maxPerClient: 2 });
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => hasher.verify(digest, 'a long enough passphrase here')));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const busy = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.equal(ok.length, 2, 'the two admitted checks ran');
  t.ok(ok.every((r) => r.value === true), 'and answered correctly');
  t.equal(busy.length, 4);
  for (const r of busy) {
    t.equal((r.reason as { code: string }).code, 'AUTH_BUSY');
    t.ok(Number((r.reason as { details: { retryAfterSeconds: number } }).details.retryAfterSeconds) >= 1, 'with a Retry-After of at least a second');
  }
  t.equal(hasher.queued, 0, 'nothing left in flight');
  t.equal(await hasher.verify(digest, 'a long enough passphrase here'), true, 'room again once they finished');
  t.equal(await hasher.verify(digest, 'the wrong passphrase entirely'), false);
});

t.test('a failing check frees its place too', async (t) => {
  const hasher = withAdmission(real, { maxQueued: 1, maxPerClient: 1 });
  t.equal(await hasher.verify('not a phc string', 'x'.repeat(20)), false);
  t.equal(hasher.queued, 0);
  await hasher.verifyDummy('y'.repeat(20));
  t.equal(hasher.queued, 0);
});
