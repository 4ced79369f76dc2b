import fp from 'fastify-plugin';
import { FieldvaultError, isFieldvaultError, normalizePasswordText } from '@fieldvault/protocol';
import { ARGON2_RECOMMENDED_FLOOR } from '../config.js';
import type { ThrottleRecord, UserRecord } from '../couch/records.js';
import { hashSecret } from '../http/tokens.js';
import { createPasswordHasher, type PasswordHasher } from './password-hasher.js';
import { createProcessPasswordHasher } from './process-password-hasher.js';
import { withAdmission, type AdmittingHasher } from './admission.js';

/**
 * NIST SP 800-63B-4 §3.2.2: at most 100 consecutive failed attempts on one account. Past this the
 * account stays locked until its password is reset, whatever the configured backoff.
 */
export const HARD_LOCK_FAILURES = 100;
/** How long a throttle record of an unlocked username is kept after its last failure. */
const THROTTLE_MEMORY_MS = 24 * 3600 * 1000;

declare module 'fastify' {
  interface FastifyInstance {
    /** Call `forClient(clientKey(request.ip))` on it for a request's checks (its queue share). */
    passwordHasher: AdmittingHasher;
    /**
     * Checks a username and password with per-account throttling.
     * @throws AUTH_ACCOUNT_LOCKED, AUTH_INVALID_CREDENTIALS (same error and work for an unknown
     *   user and a wrong password), USER_DISABLED (only after a correct password).
     */
    verifyCredentials(username: string, password: string, options?: VerifyOptions): Promise<UserRecord>;
    /** Counts one failed login of a username (a wrong second factor after a right password). */
    recordLoginFailure(username: string): Promise<void>;
    /** Forgets the failures of a username (after a password was set). */
    clearThrottle(username: string): Promise<void>;
    /** The login locks in force now of these usernames (unlocked ones are absent), for admins to see. */
    loginLocks(usernames: readonly string[]): Promise<Map<string, LoginLock>>;
  }
}

/** A username's login lock as an admin sees it. */
export interface LoginLock {
  /** Consecutive failed logins counted so far. */
  readonly failures: number;
  /** When the lock ends (ms); null for a hard lock, which only a password reset ends. */
  readonly until: number | null;
}

export interface VerifyOptions {
  /**
   * Keep the account's failure count even when the password is right: the caller checks a second
   * factor next and clears the count (`clearThrottle`) only when that passes too, so knowing the
   * password does not reset the throttle that guards the one-time codes.
   */
  readonly keepFailures?: boolean | ((user: UserRecord) => boolean);
  /**
   * The asking client (`clientKey(request.ip)`): its checks count against its share of the login
   * queue (`argon2.maxQueuedPerClient`), so one address cannot fill the queue (security audit M4).
   */
  readonly client?: string;
}

function throttleKey(username: string): string {
  // Hashed so that the store holds no list of attempted (possibly mistyped-password) usernames.
  return hashSecret(`fieldvault/throttle/v1\n${username}`);
}

/** Why a login's credentials were refused, as the audit log tells it (the client is told only AUTH_INVALID_CREDENTIALS). */
export type LoginFailureReason = 'unknown-user' | 'no-password-set' | 'wrong-password';

/**
 * The reason of each refused login, beside the error rather than in its `details`: the error
 * handler logs `details` in the request log ("request refused", info), which is often shipped
 * further than the audit database, and whether a name exists is what the identical answer hides
 * (review s17 finding 4). Weak keys: dropped with the error.
 */
const failureReasons = new WeakMap<FieldvaultError, LoginFailureReason>();

/**
 * The `details` of a `login.failed` audit event: the error code and, for refused credentials,
 * whether the username is unknown (guessing at names), has no password yet (an invitation not
 * taken up) or was given a wrong password (guessing at a password, or a typo).
 */
export function loginFailureDetails(err: unknown): { code: string; reason?: LoginFailureReason } {
  const code = isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR';
  const reason = isFieldvaultError(err) ? failureReasons.get(err) : undefined;
  return code === 'AUTH_INVALID_CREDENTIALS' && reason !== undefined ? { code, reason } : { code };
}

/**
 * Passwords and login throttling. Failures are counted per username in the store for known and
 * unknown usernames alike, so the two follow the same code path and the same store round trips.
 */
export const credentialsPlugin = fp(
  async (app) => {
    const config = app.fieldvaultConfig;
    let base: PasswordHasher;
    if (config.argon2.isolation === 'process') {
      const isolated = createProcessPasswordHasher(config.argon2, { niceness: config.argon2.niceness, logger: app.log });
      app.addHook('onClose', () => isolated.close());
      base = isolated;
    } else {
      base = createPasswordHasher(config.argon2);
    }
    const admitting = withAdmission(base, { maxQueued: config.argon2.maxQueued, maxPerClient: config.argon2.maxQueuedPerClient });
    if (config.argon2.memoryKiB < ARGON2_RECOMMENDED_FLOOR.memoryKiB || config.argon2.timeCost < ARGON2_RECOMMENDED_FLOOR.timeCost) {
      app.log.warn({ argon2: config.argon2 }, 'Argon2id parameters are below the recommended minimum (19 MiB, t=2): use them only in tests');
    }
    app.decorate('passwordHasher', admitting);

    function lockFor(failures: number): number | null {
      const { maxFailures, lockSeconds, maxLockSeconds } = config.throttle;
      if (failures < maxFailures) return null;
      const doublings = Math.min(failures - maxFailures, 30);
      return Math.min(maxLockSeconds, lockSeconds * 2 ** doublings) * 1000;
    }

    function lockedFor(t: ThrottleRecord | undefined, now: number): number | 'hard' | null {
      if (t === undefined) return null;
      if (t.failures >= HARD_LOCK_FAILURES) return 'hard';
      if (t.lockedUntil !== null && t.lockedUntil > now) return t.lockedUntil - now;
      return null;
    }

    async function recordFailure(key: string): Promise<void> {
      await app.repo.modifyThrottle(key, (cur) => {
        const now = app.now();
        const failures = (cur?.failures ?? 0) + 1;
        const lock = lockFor(failures);
        const lockedUntil = lock === null ? null : now + lock;
        return {
          key,
          failures,
          lockedUntil,
          lastFailureAt: now,
          expiresAt: failures >= HARD_LOCK_FAILURES ? null : Math.max(lockedUntil ?? 0, now + THROTTLE_MEMORY_MS),
        };
      });
    }

    app.decorate('verifyCredentials', async (username: string, typed: string, options: VerifyOptions = {}): Promise<UserRecord> => {
      const key = throttleKey(username);
      const [user, throttle] = await Promise.all([app.repo.getUser(username), app.repo.getThrottle(key)]);
      const locked = lockedFor(throttle, app.now());
      if (locked !== null) {
        // Refused without checking the password: a locked account cannot be guessed at.
        throw new FieldvaultError(
          'AUTH_ACCOUNT_LOCKED',
          locked === 'hard' ? { detail: 'until an admin resets the password' } : { details: { retryAfterSeconds: Math.ceil(locked / 1000) } },
        );
      }
      const password = normalizePasswordText(typed);
      const hasher = options.client === undefined ? admitting : admitting.forClient(options.client);
      let ok = false;
      if (user?.passwordHash != null) {
        ok = await hasher.verify(user.passwordHash, password);
      } else {
        await hasher.verifyDummy(password);
      }
      if (!ok || user === undefined) {
        await recordFailure(key);
        // The reason goes to the admin-only audit log only (`loginFailureDetails`), never into the
        // error's details: not to the client, and not to the request log either.
        const reason: LoginFailureReason = user === undefined ? 'unknown-user' : user.passwordHash == null ? 'no-password-set' : 'wrong-password';
        const refused = new FieldvaultError('AUTH_INVALID_CREDENTIALS');
        failureReasons.set(refused, reason);
        throw refused;
      }
      const keep = typeof options.keepFailures === 'function' ? options.keepFailures(user) : options.keepFailures === true;
      if (throttle !== undefined && !keep) await app.repo.deleteThrottle(key);
      if (user.passwordHash !== null && hasher.needsRehash(user.passwordHash)) {
        // Parameters were raised since this hash was made: upgrade it while we hold the password.
        const upgraded = await hasher.hash(password);
        await app.repo.modifyUser(user.username, (cur) => (cur.passwordHash === user.passwordHash ? { ...cur, passwordHash: upgraded } : undefined));
      }
      if (user.disabled) throw new FieldvaultError('USER_DISABLED');
      return user;
    });

    app.decorate('recordLoginFailure', async (username: string) => {
      await recordFailure(throttleKey(username));
    });

    app.decorate('clearThrottle', async (username: string) => {
      await app.repo.deleteThrottle(throttleKey(username));
    });

    app.decorate('loginLocks', async (usernames: readonly string[]) => {
      const byKey = new Map(usernames.map((u) => [throttleKey(u), u] as const));
      const now = app.now();
      const locks = new Map<string, LoginLock>();
      for (const t of await app.repo.getThrottles([...byKey.keys()])) {
        const username = byKey.get(t.key);
        const locked = lockedFor(t, now);
        if (username === undefined || locked === null) continue;
        locks.set(username, { failures: t.failures, until: locked === 'hard' ? null : now + locked });
      }
      return locks;
    });
  },
  { name: 'fieldvault-credentials', fastify: '5.x', dependencies: ['fieldvault-couch'] },
);
