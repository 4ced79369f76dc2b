import { FieldvaultError, isFieldvaultError, type ErrorCode } from '@fieldvault/protocol';

/*
 * Retry with exponential backoff for the sync's requests. Only failures that say "try again"
 * are retried: the network (TRANSPORT_UNREACHABLE: no connection, no answer in time, or a
 * connection lost before the end of an answer, e.g. a pull page cut short), the server's store
 * (STORE_UNAVAILABLE, STORE_CONFLICT, STORE_CRASHED) and rate limits (RATE_LIMITED, waiting at
 * least the server's Retry-After). Every sync request is idempotent (a repeated push changes
 * nothing, a pull is a read, a photo upload resumes), so a retry after an answer that was lost is
 * safe.
 */

/** How the sync retries one request. */
export interface RetryOptions {
  /** Tries in all, the first included (1 = no retry); default 5. */
  readonly attempts: number;
  /** Wait before the first retry in ms, doubled for each further one (with jitter); default 500. */
  readonly baseDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = Object.freeze({ attempts: 5, baseDelayMs: 500 });
/** Longest backoff between two tries. */
export const MAX_RETRY_DELAY_MS = 30_000;
/** A Retry-After longer than this is not waited for: the sync fails with RATE_LIMITED and the app retries later. */
export const MAX_RETRY_AFTER_MS = 120_000;

const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'TRANSPORT_UNREACHABLE',
  'STORE_UNAVAILABLE',
  'STORE_CONFLICT',
  'STORE_CRASHED',
  'RATE_LIMITED',
]);

/**
 * Failures of an online login worth another try: the server said "come back" (busy hashing other
 * logins, rate limit, store restarting). Not the network: an offline phone should hear so at once,
 * and a login whose answer was cut short (TRANSPORT_UNREACHABLE too) must not be sent again: the
 * server may have accepted it, and the user decides whether to log in again.
 */
const LOGIN_RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['AUTH_BUSY', 'RATE_LIMITED', 'STORE_UNAVAILABLE', 'STORE_CRASHED']);

/** True when an online login that failed with `err` is worth another try. */
export function isLoginRetryable(err: unknown): boolean {
  return isFieldvaultError(err) && LOGIN_RETRYABLE.has(err.code);
}

/** True when `err` is a failure worth another try. */
export function isRetryable(err: unknown): boolean {
  return isFieldvaultError(err) && RETRYABLE.has(err.code);
}

/** @throws SYNC_CANCELLED when `signal` has fired. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new FieldvaultError('SYNC_CANCELLED');
}

/** Waits `ms`, or rejects with SYNC_CANCELLED as soon as `signal` fires. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new FieldvaultError('SYNC_CANCELLED'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new FieldvaultError('SYNC_CANCELLED'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The wait before try `attempt + 1`: exponential with jitter (50–100 %), at least the server's Retry-After. */
export function backoffDelay(policy: RetryOptions, attempt: number, err: unknown, random: () => number = Math.random): number {
  const exp = Math.min(MAX_RETRY_DELAY_MS, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = Math.round(exp / 2 + (random() * exp) / 2);
  const after = isFieldvaultError(err) ? err.details?.['retryAfterSeconds'] : undefined;
  return typeof after === 'number' ? Math.max(jittered, after * 1000) : jittered;
}

/**
 * Runs `fn`, retrying retryable failures with backoff up to `policy.attempts` tries in all.
 * `onRetry` hears about each retry (logging).
 * @throws the last failure when it is not retryable, the tries are used up, or the server asks
 * for a wait longer than {@link MAX_RETRY_AFTER_MS}; SYNC_CANCELLED when `signal` fires.
 */
export async function withRetry<T>(
  fn: () => Promise<T>,
  policy: RetryOptions,
  signal: AbortSignal | undefined,
  onRetry: (info: { attempt: number; delayMs: number; code: string }) => void = () => undefined,
  retryable: (err: unknown) => boolean = isRetryable,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    throwIfCancelled(signal);
    try {
      return await fn();
    } catch (err) {
      if (!retryable(err) || attempt >= policy.attempts) throw err;
      const delayMs = backoffDelay(policy, attempt, err);
      if (delayMs > MAX_RETRY_AFTER_MS) throw err;
      onRetry({ attempt, delayMs, code: (err as FieldvaultError).code });
      await sleep(delayMs, signal);
    }
  }
}
