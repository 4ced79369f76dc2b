import { FieldvaultError } from '@fieldvault/protocol';

/*
 * Limits on the uploads one server process runs (security audit M2). An upload in progress costs
 * a spool file, not memory (upload-spool.ts); the bytes are in memory only while an upload is
 * checked and written to the store, and `AssemblyGate` lets only a few do that at once. Counts
 * are per process: a user spread over several servers gets the cap on each, which still bounds
 * every server's memory.
 */

/** Seconds a client told PHOTO_UPLOAD_BUSY waits before trying again. */
export const UPLOAD_BUSY_RETRY_SECONDS = 5;

/** Uploads in progress per user. */
export class UserUploads {
  readonly #active = new Map<string, number>();

  constructor(private readonly max: number) {}

  /**
   * Counts one more upload for `username`; the returned function ends it (idempotent).
   * @throws PHOTO_UPLOAD_BUSY (429, Retry-After) when the user has `max` in progress.
   */
  enter(username: string): () => void {
    const n = this.#active.get(username) ?? 0;
    if (n >= this.max) {
      throw new FieldvaultError('PHOTO_UPLOAD_BUSY', { detail: `at most ${this.max} at once`, details: { retryAfterSeconds: UPLOAD_BUSY_RETRY_SECONDS, maxUploads: this.max } });
    }
    this.#active.set(username, n + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const now = (this.#active.get(username) ?? 1) - 1;
      if (now <= 0) this.#active.delete(username);
      else this.#active.set(username, now);
    };
  }

  /** Uploads in progress for `username` (tests). */
  count(username: string): number {
    return this.#active.get(username) ?? 0;
  }
}

/** At most `max` tasks at once, the others waiting in order. */
export class AssemblyGate {
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#running += 1;
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter, so `running` never over-counts.
      if (next !== undefined) next();
      else this.#running -= 1;
    }
  }
}
