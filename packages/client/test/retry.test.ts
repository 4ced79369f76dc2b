// The sync's retry policy: which failures are retried, how long it waits, and cancellation.
import t from 'tap';
import { FieldvaultError } from '@fieldvault/protocol';
import { MAX_RETRY_AFTER_MS, backoffDelay, isRetryable, sleep, withRetry } from '../src/retry.js';

t.test('network, store and rate-limit failures are retried; refusals are not', async (t) => {
  for (const code of ['TRANSPORT_UNREACHABLE', 'STORE_UNAVAILABLE', 'STORE_CONFLICT', 'STORE_CRASHED', 'RATE_LIMITED'] as const) {
    t.ok(isRetryable(new FieldvaultError(code)), code);
  }
  for (const code of ['TRANSPORT_BAD_RESPONSE', 'TRANSPORT_TLS_UNTRUSTED', 'SESSION_INVALID', 'RECORD_INVALID', 'SYNC_CANCELLED'] as const) {
    t.notOk(isRetryable(new FieldvaultError(code)), code);
  }
  t.notOk(isRetryable(new Error('plain')));
});

t.test('the backoff doubles with jitter between half and all of it, and never undercuts Retry-After', async (t) => {
  const policy = { attempts: 5, baseDelayMs: 100 };
  t.same([1, 2, 3].map((n) => backoffDelay(policy, n, undefined, () => 0)), [50, 100, 200]);
  t.same([1, 2, 3].map((n) => backoffDelay(policy, n, undefined, () => 1)), [100, 200, 400]);
  const limited = new FieldvaultError('RATE_LIMITED', { details: { retryAfterSeconds: 3 } });
  t.equal(backoffDelay(policy, 1, limited, () => 1), 3_000);
  t.equal(backoffDelay({ attempts: 5, baseDelayMs: 10_000 }, 9, undefined, () => 1), 30_000, 'capped');
});

t.test('withRetry tries `attempts` times in all, then gives up with the last error', async (t) => {
  let calls = 0;
  const err = await withRetry(
    async () => {
      calls += 1;
      throw new FieldvaultError('TRANSPORT_UNREACHABLE');
    },
    { attempts: 3, baseDelayMs: 1 },
    undefined,
  ).catch((e: FieldvaultError) => e);
  t.equal(err.code, 'TRANSPORT_UNREACHABLE');
  t.equal(calls, 3);
  let n = 0;
  t.equal(await withRetry(async () => (++n < 3 ? Promise.reject(new FieldvaultError('STORE_UNAVAILABLE')) : 'ok'), { attempts: 3, baseDelayMs: 1 }, undefined), 'ok');
});

t.test('a Retry-After longer than the SDK waits ends the sync at once', async (t) => {
  let calls = 0;
  const started = Date.now();
  const err = await withRetry(
    async () => {
      calls += 1;
      throw new FieldvaultError('RATE_LIMITED', { details: { retryAfterSeconds: MAX_RETRY_AFTER_MS / 1000 + 1 } });
    },
    { attempts: 5, baseDelayMs: 1 },
    undefined,
  ).catch((e: FieldvaultError) => e);
  t.equal(err.code, 'RATE_LIMITED');
  t.equal(calls, 1);
  t.ok(Date.now() - started < 1_000);
});

t.test('cancellation interrupts the wait between tries', async (t) => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const started = Date.now();
  const err = await withRetry(async () => Promise.reject(new FieldvaultError('TRANSPORT_UNREACHABLE')), { attempts: 5, baseDelayMs: 10_000 }, controller.signal).catch(
    (e: FieldvaultError) => e,
  );
  t.equal(err.code, 'SYNC_CANCELLED');
  t.ok(Date.now() - started < 2_000);
  t.equal((await sleep(10, AbortSignal.abort()).catch((e: FieldvaultError) => e))?.code, 'SYNC_CANCELLED');
});
