import type { FastifyBaseLogger } from 'fastify';
import type { FieldvaultError } from '@fieldvault/protocol';

/** At most one "still down" record per this interval while the store stays down. */
export const OUTAGE_SUMMARY_EVERY_MS = 60_000;

/**
 * The store counts as back only once it answered with no request refused for this long. One
 * request makes several store calls: when the store answers some (a session read) and refuses
 * others (writes on a full disk, one database's rights), "answered" alone would end the outage at
 * every request and the next refusal would start a new one: two records per request again.
 */
export const OUTAGE_QUIET_MS = 2_000;

interface Outage {
  readonly since: number;
  readonly cause: string;
  refused: number;
  lastReportAt: number;
  lastRefusedAt: number;
  /** The first answer after the last refusal: when the store came back, if it stays back. */
  answeredAt: number | null;
}

/** "42 s", "3 min 5 s", "2 h 7 min": how long an outage lasted, for a person reading the log. */
export function describeDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** Why the store failed, in the log's words: the socket error's code, or the HTTP status it answered. */
function causeOf(err: FieldvaultError): string {
  const cause = err.details?.['cause'];
  if (typeof cause === 'string') return cause;
  const status = err.details?.['status'];
  return typeof status === 'number' ? `HTTP ${status}` : 'no connection';
}

/**
 * The log of store outages (operator audit s12): one error record when requests start failing
 * because the store does not answer, at most one "still down" record per interval while it stays
 * down (with the count of requests refused), and one warn record when it answers again. Each
 * refused request itself is logged at debug only: under load an outage of minutes used to write
 * one error record per request. A store that answers some calls and refuses others is one outage
 * too ({@link OUTAGE_QUIET_MS}). Times come from the app's clock.
 */
export class StoreOutageLog {
  private outage: Outage | null = null;

  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly now: () => number,
    private readonly address: () => string,
    private readonly summaryEveryMs = OUTAGE_SUMMARY_EVERY_MS,
    private readonly quietMs = OUTAGE_QUIET_MS,
  ) {}

  /** True while requests fail because the store does not answer. */
  get down(): boolean {
    return this.outage !== null;
  }

  /** A request failed with STORE_UNAVAILABLE; `requestLog` is that request's logger. */
  refused(err: FieldvaultError, requestLog: FastifyBaseLogger): void {
    const store = this.address();
    requestLog.debug({ code: err.code, details: err.details, store }, 'request failed: the store did not answer');
    const now = this.now();
    const outage = this.outage;
    if (outage === null) {
      const cause = causeOf(err);
      this.outage = { since: now, cause, refused: 1, lastReportAt: now, lastRefusedAt: now, answeredAt: null };
      requestLog.error({ code: err.code, details: err.details, store, cause }, 'the store stopped answering');
      return;
    }
    outage.refused += 1;
    outage.lastRefusedAt = now;
    outage.answeredAt = null;
    if (now - outage.lastReportAt < this.summaryEveryMs) return;
    outage.lastReportAt = now;
    const since = new Date(outage.since).toISOString();
    this.log.error(
      { code: err.code, store, cause: causeOf(err), refused: outage.refused, since, downMs: now - outage.since },
      `the store is still down: ${outage.refused} requests refused since ${since}`,
    );
  }

  /** The store answered a call: ends an outage once nothing was refused for {@link OUTAGE_QUIET_MS}. */
  answered(): void {
    const outage = this.outage;
    if (outage === null) return;
    const now = this.now();
    outage.answeredAt ??= now;
    if (now - outage.lastRefusedAt < this.quietMs) return;
    this.outage = null;
    const downMs = outage.answeredAt - outage.since;
    this.log.warn(
      { store: this.address(), refused: outage.refused, since: new Date(outage.since).toISOString(), downMs, cause: outage.cause },
      `the store answers again after ${describeDuration(downMs)}, ${outage.refused} requests refused`,
    );
  }
}
