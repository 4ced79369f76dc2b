import { FieldvaultError } from '@fieldvault/protocol';
import type { PasswordHasher } from './password-hasher.js';

/** A hasher that refuses work beyond a queue bound, and says how long to wait. */
export interface AdmittingHasher extends PasswordHasher {
  /** Password checks waiting or running now. */
  readonly queued: number;
  /** The hasher doing the work (e.g. the process hasher, for its pid). */
  readonly inner: PasswordHasher;
}

/**
 * Bounds the password checks in flight. Argon2id costs ~0.2–0.6 s of a core each, so 500 phones
 * logging in together would wait minutes inside the server — longer than their request timeouts,
 * which turns a busy server into failed logins and wasted hashing. Beyond `maxQueued` a call fails
 * at once with AUTH_BUSY and a Retry-After of about the time the queue needs to drain (from the
 * recent time per check), so phones back off and come back when there is room.
 */
export function withAdmission(inner: PasswordHasher, maxQueued: number, now: () => number = () => performance.now()): AdmittingHasher {
  let queued = 0;
  // Moving average of the wall time of one check while the queue was busy (starts at 0.5 s).
  let perCheckMs = 500;
  const admit = async <T>(run: () => Promise<T>): Promise<T> => {
    if (queued >= maxQueued) {
      const retryAfterSeconds = Math.max(1, Math.ceil((queued * perCheckMs) / maxQueued / 1000));
      throw new FieldvaultError('AUTH_BUSY', { details: { retryAfterSeconds } });
    }
    queued++;
    const started = now();
    try {
      return await run();
    } finally {
      // Time in the queue divided by the checks ahead is one check's share of the hasher.
      const share = (now() - started) / Math.max(1, queued);
      perCheckMs = perCheckMs * 0.8 + share * 0.2;
      queued--;
    }
  };
  return {
    inner,
    get queued() {
      return queued;
    },
    hash: (password) => admit(() => inner.hash(password)),
    verify: (digest, password) => admit(() => inner.verify(digest, password)),
    verifyDummy: (password) => admit(() => inner.verifyDummy(password)),
    needsRehash: (digest) => inner.needsRehash(digest),
  };
}
