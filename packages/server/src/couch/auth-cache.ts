import type { DeviceRecord, SessionRecord, UserRecord } from './records.js';

/*
 * A short-lived memory of what authenticating a bearer token read from the store: the session,
 * its user and its device. Every sync request authenticates, which is three store reads; on the
 * embedded store those reads wait behind any record write in progress (one request at a time),
 * so with two push batches in flight the second one's authentication waited for the first one's
 * write (docs/performance.md, seventh and eighth rounds).
 *
 * What keeps it safe:
 * - It holds what was read, never a decision: every request still checks expiry, revocation,
 *   blacklisting, disabling and epochs against these values (sessions/plugin.ts).
 * - Every write this process makes to a user, device or session drops the entries it could
 *   affect, before and after the write (`changed`), so a change made here is seen by the very next
 *   request. A read that was in flight while any such write started or ended is not remembered
 *   (the generation check), so it cannot bring back the value from before the write.
 * - A change made by another server process on the same store (or by hand in CouchDB) is seen
 *   once the entry is older than `ttlMs` (default 1 s; 0 turns the memory off).
 * - Bounded: at most `maxEntries` tokens; a full table drops its oldest entry.
 */

export interface AuthDocs {
  readonly session: SessionRecord;
  readonly user: UserRecord | undefined;
  /** Undefined for a console session (no device) or a device the store does not have. */
  readonly device: DeviceRecord | undefined;
}

/** What a write touched: entries of this session, user or device are dropped; `all` drops everything. */
export type AuthChange = { readonly tokenHash: string } | { readonly username: string } | { readonly imei: string } | 'all';

interface Entry {
  readonly docs: AuthDocs;
  readonly until: number;
}

export interface AuthCacheOptions {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly now: () => number;
}

export class AuthCache {
  readonly #options: AuthCacheOptions;
  readonly #entries = new Map<string, Entry>();
  #generation = 0;

  constructor(options: AuthCacheOptions) {
    this.#options = options;
  }

  /** Bumped by every change; a reader remembers its result only if it did not move meanwhile. */
  get generation(): number {
    return this.#generation;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(tokenHash: string): AuthDocs | undefined {
    const entry = this.#entries.get(tokenHash);
    if (entry === undefined) return undefined;
    if (entry.until <= this.#options.now()) {
      this.#entries.delete(tokenHash);
      return undefined;
    }
    return entry.docs;
  }

  /** Remembers what a read that started at generation `since` found, unless something changed meanwhile. */
  remember(tokenHash: string, docs: AuthDocs, since: number): void {
    if (this.#options.ttlMs <= 0 || since !== this.#generation) return;
    this.#entries.delete(tokenHash);
    if (this.#entries.size >= this.#options.maxEntries) {
      // Map order is insertion order: the first key is the oldest entry.
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(tokenHash, { docs, until: this.#options.now() + this.#options.ttlMs });
  }

  /** Called before and after every write of a session, user or device made through the repository. */
  changed(what: AuthChange): void {
    this.#generation += 1;
    if (this.#entries.size === 0) return;
    if (what === 'all') {
      this.#entries.clear();
      return;
    }
    for (const [tokenHash, { docs }] of this.#entries) {
      const hit =
        'tokenHash' in what
          ? tokenHash === what.tokenHash
          : 'username' in what
            ? docs.session.username === what.username
            : docs.session.imei === what.imei;
      if (hit) this.#entries.delete(tokenHash);
    }
  }
}
