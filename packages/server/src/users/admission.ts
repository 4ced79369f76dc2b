import { FieldvaultError } from '@fieldvault/protocol';
import type { PasswordHasher } from './password-hasher.js';

/** A hasher that refuses work beyond a queue bound, and says how long to wait. */
export interface AdmittingHasher extends PasswordHasher {
  /** Password checks waiting or running now. */
  readonly queued: number;
  /** The hasher doing the work (e.g. the process hasher, for its pid). */
  readonly inner: PasswordHasher;
  /**
   * The same hasher, with every call also counted against `client` (a `clientKey`): one client
   * holds at most `maxPerClient` of the queue's slots at once.
   */
  forClient(client: string): PasswordHasher;
}

export interface AdmissionOptions {
  /** Most checks waiting or running at once, server-wide. */
  readonly maxQueued: number;
  /** Most of those one client (address, IPv6 /64) may hold at once. */
  readonly maxPerClient: number;
  readonly now?: () => number;
}

/**
 * Bounds the password checks in flight. Argon2id costs ~0.2–0.6 s of a core each, so 500 phones
 * logging in together would wait minutes inside the server — longer than their request timeouts,
 * which turns a busy server into failed logins and wasted hashing. Beyond `maxQueued` a call fails
 * at once with AUTH_BUSY and a Retry-After of about the time the queue needs to drain (from the
 * recent time per check), so phones back off and come back when there is room.
 *
 * One client may hold only `maxPerClient` slots (security audit M4): within the per-address rate
 * limits, one address could otherwise keep the whole queue full of guesses for unknown users, and
 * every other phone's login got AUTH_BUSY. A phone logs in one user at a time, so a small share
 * is plenty for a client; an office behind one NAT queues on the phones, which retry.
 */
export function withAdmission(inner: PasswordHasher, options: AdmissionOptions): AdmittingHasher {
  const { maxQueued, maxPerClient } = options;
  const now = options.now ?? (() => performance.now());
  let queued = 0;
  const perClient = new Map<string, number>();
  // Moving average of the wall time of one check while the queue was busy (starts at 0.5 s).
  let perCheckMs = 500;
  const retryAfter = (): number => Math.max(1, Math.ceil((queued * perCheckMs) / maxQueued / 1000));

  const admit = async <T>(client: string | undefined, run: () => Promise<T>): Promise<T> => {
    const held = client === undefined ? 0 : (perClient.get(client) ?? 0);
    if (client !== undefined && held >= maxPerClient) {
      // This client's own checks must finish first: about its share of the queue's drain time.
      const retryAfterSeconds = Math.max(1, Math.ceil((held * perCheckMs) / 1000));
      throw new FieldvaultError('AUTH_BUSY', {
        detail: `this address already has ${held} password checks in progress`,
        details: { retryAfterSeconds, scope: 'client' },
      });
    }
    if (queued >= maxQueued) {
      throw new FieldvaultError('AUTH_BUSY', { details: { retryAfterSeconds: retryAfter(), scope: 'server' } });
    }
    queued++;
    if (client !== undefined) perClient.set(client, held + 1);
    const started = now();
    try {
      return await run();
    } finally {
      // Time in the queue divided by the checks ahead is one check's share of the hasher.
      const share = (now() - started) / Math.max(1, queued);
      perCheckMs = perCheckMs * 0.8 + share * 0.2;
      queued--;
      if (client !== undefined) {
        const left = (perClient.get(client) ?? 1) - 1;
        if (left <= 0) perClient.delete(client);
        else perClient.set(client, left);
      }
    }
  };

  const view = (client: string | undefined): PasswordHasher => ({
    hash: (password) => admit(client, () => inner.hash(password)),
    verify: (digest, password) => admit(client, () => inner.verify(digest, password)),
    verifyDummy: (password) => admit(client, () => inner.verifyDummy(password)),
    needsRehash: (digest) => inner.needsRehash(digest),
  });
  return {
    ...view(undefined),
    inner,
    get queued() {
      return queued;
    },
    forClient: (client) => view(client),
  };
}
