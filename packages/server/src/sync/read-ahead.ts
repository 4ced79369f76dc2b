/*
 * Pull read-ahead. A phone asks for page n+1 only once page n has arrived, so without it the store
 * reads page n+1 while the phone waits, and the phone commits page n while the store is idle.
 * After answering a page that has more, the server starts reading the next one from the changes
 * feed; the phone's next request (same session, same position, same limit) takes it instead of
 * reading again. Everything that decides what the phone may see is done when the page is served:
 * the session and device checks, `canRead` with the role of that request, the page budget. Only
 * the store read is early: a record changed in between is in the feed again at its new position,
 * and a later page brings it (merge makes the order irrelevant).
 *
 * Bounded: at most `maxHeld` pages are held server-wide (one per session; a new one replaces the
 * session's previous), each for at most `ttlMs`; a full table starts no more reads. A read that
 * fails is dropped quietly: the request then reads the feed itself and reports what it finds.
 */

export interface ReadAheadOptions {
  /** Most pages read ahead and held at once, server-wide; 0 turns read-ahead off. */
  readonly maxHeld: number;
  /** How long a page read ahead waits for its request before it is dropped. */
  readonly ttlMs: number;
  readonly now: () => number;
}

interface Held<T> {
  readonly key: string;
  readonly page: Promise<T>;
  readonly expiresAt: number;
}

export class PullReadAhead<T> {
  readonly #options: ReadAheadOptions;
  /** Session → its one held page. */
  readonly #held = new Map<string, Held<T>>();

  constructor(options: ReadAheadOptions) {
    this.#options = options;
  }

  /** The lookup key of a read: what the next request must ask for to take it. */
  static key(position: unknown, limit: number): string {
    return `${JSON.stringify(position ?? null)}\u0000${limit}`;
  }

  /**
   * Starts `read` for `session` at `key` unless the table is full. Replaces whatever the session
   * held (a phone pulls one stream at a time; an abandoned page must not pin memory).
   */
  start(session: string, key: string, read: () => Promise<T>): boolean {
    if (this.#options.maxHeld <= 0) return false;
    this.#held.delete(session);
    this.#dropExpired();
    if (this.#held.size >= this.#options.maxHeld) return false;
    const page = read();
    // Never an unhandled rejection: a failed read is only a missed shortcut.
    page.catch(() => undefined);
    this.#held.set(session, { key, page, expiresAt: this.#options.now() + this.#options.ttlMs });
    return true;
  }

  /** The page held for `session` at `key` (removed from the table), or undefined. */
  take(session: string, key: string): Promise<T> | undefined {
    const held = this.#held.get(session);
    if (held === undefined) return undefined;
    this.#held.delete(session);
    if (held.key !== key || held.expiresAt <= this.#options.now()) return undefined;
    return held.page;
  }

  /** Pages held now (for tests and diagnostics). */
  get size(): number {
    return this.#held.size;
  }

  #dropExpired(): void {
    const now = this.#options.now();
    for (const [session, held] of this.#held) if (held.expiresAt <= now) this.#held.delete(session);
  }
}
