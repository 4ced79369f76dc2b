import { FieldvaultError, type ChildRecord } from '@fieldvault/protocol';

const HOUR_MS = 3_600_000;
/** Above this many addresses tracked, stale ones are dropped on the next call. */
const PRUNE_ABOVE = 10_000;

/**
 * New sign-up requests per client address in a sliding hour (security audit M3). Kept in memory:
 * a restart forgets it, which only lets an address start a few more requests; the server-wide
 * `maxPending` and the per-request quota still hold.
 */
export class SignupsPerClient {
  readonly #starts = new Map<string, number[]>();

  constructor(
    private readonly perHour: number,
    private readonly now: () => number,
  ) {}

  /**
   * Counts one new request of `client`, or refuses it.
   * @throws SIGNUP_TOO_MANY_FROM_ADDRESS (429 with Retry-After) beyond `perHour` in the last hour.
   */
  take(client: string): void {
    const now = this.now();
    if (this.#starts.size > PRUNE_ABOVE) {
      for (const [key, times] of this.#starts) if ((times[times.length - 1] ?? 0) <= now - HOUR_MS) this.#starts.delete(key);
    }
    const recent = (this.#starts.get(client) ?? []).filter((at) => at > now - HOUR_MS);
    if (recent.length >= this.perHour) {
      const retryAfterSeconds = Math.max(1, Math.ceil(((recent[0] ?? now) + HOUR_MS - now) / 1000));
      this.#starts.set(client, recent);
      throw new FieldvaultError('SIGNUP_TOO_MANY_FROM_ADDRESS', { details: { retryAfterSeconds, perHour: this.perHour } });
    }
    recent.push(now);
    this.#starts.set(client, recent);
  }

  /** Gives back the last `take` of `client` (the request was refused for another reason). */
  refund(client: string): void {
    this.#starts.get(client)?.pop();
  }
}

/** Bytes a quarantined record counts for: its JSON, as stored. */
export function recordBytes(record: ChildRecord): number {
  return Buffer.byteLength(JSON.stringify(record), 'utf8');
}

/**
 * What one pending sign-up holds in quarantine, for its quota: records by id with their size.
 * `admit` books a record's new size if the quota allows it (a new record, or a grown one).
 */
export class QuarantineQuota {
  readonly #sizes: Map<string, number>;
  #bytes: number;

  constructor(
    existing: ReadonlyMap<string, number>,
    private readonly maxRecords: number,
    private readonly maxBytes: number,
  ) {
    this.#sizes = new Map(existing);
    this.#bytes = [...existing.values()].reduce((n, b) => n + b, 0);
  }

  /** @throws SIGNUP_QUARANTINE_FULL when keeping `id` at `bytes` would pass a limit. */
  admit(id: string, bytes: number): void {
    const before = this.#sizes.get(id);
    const records = this.#sizes.size + (before === undefined ? 1 : 0);
    const total = this.#bytes - (before ?? 0) + bytes;
    // A record that does not grow is always kept: a renewal may re-send what is already held.
    if ((records > this.maxRecords || total > this.maxBytes) && (before === undefined || bytes > before)) {
      throw new FieldvaultError('SIGNUP_QUARANTINE_FULL', { details: { maxRecords: this.maxRecords, maxBytes: this.maxBytes } });
    }
    this.#sizes.set(id, bytes);
    this.#bytes = total;
  }
}
