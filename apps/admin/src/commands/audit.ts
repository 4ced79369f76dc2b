import { Option, type Command } from 'commander';
import { IMEI_PATTERN, USERNAME_PATTERN } from '@fieldvault/protocol';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import { table, timeOf } from '../output.js';
import type { Action } from './action.js';
import { pageSize } from './paging.js';

export interface AuditEvent {
  readonly id: string;
  readonly at: string;
  readonly event: string;
  readonly actor: string | null;
  readonly username: string | null;
  readonly imei: string | null;
  readonly ip: string | null;
  readonly requestId: string | null;
  readonly details: Record<string, string | number | boolean | null>;
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `2026-05-01T09:30:00Z`, `2026-05-01` (UTC midnight) or an age: `30m`, `2h`, `7d` ago. */
export function parseTime(value: string, option: string, now = Date.now()): string {
  const age = /^(\d{1,6})([smhd])$/.exec(value);
  if (age !== null) return new Date(now - Number(age[1]) * (UNITS[age[2] as string] ?? 0)).toISOString();
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || !Number.isFinite(ms)) {
    throw new CliError('ADMIN_USAGE', `${option}: a time (2026-05-01T09:30:00Z, 2026-05-01) or an age (30m, 2h, 7d)`);
  }
  return new Date(ms).toISOString();
}

function detailsText(d: AuditEvent['details']): string {
  return Object.entries(d)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

function render(events: readonly AuditEvent[]): string {
  return table(events, [
    { header: 'TIME', value: (e) => timeOf(e.at) },
    { header: 'EVENT', value: (e) => e.event, max: 28 },
    { header: 'ACTOR', value: (e) => e.actor ?? '—' },
    { header: 'USER', value: (e) => e.username ?? '—' },
    { header: 'DEVICE', value: (e) => e.imei ?? '—' },
    { header: 'IP', value: (e) => e.ip ?? '—' },
    { header: 'DETAILS', value: (e) => detailsText(e.details), max: 60 },
  ]);
}

interface AuditOptions {
  readonly user?: string;
  readonly device?: string;
  readonly event?: string;
  readonly since?: string;
  readonly until?: string;
  readonly limit: string;
  readonly follow?: boolean;
  readonly interval: string;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * An event type the server knows, checked here so that a typo lists the known ones (the server's
 * INPUT_INVALID said only "must be equal to constant"). The list comes from the server package,
 * loaded only when --event is given: it is the slow part of the CLI's start.
 */
async function eventOf(value: string): Promise<string> {
  const { AUDIT_EVENTS } = await import('@fieldvault/server');
  if (!(AUDIT_EVENTS as readonly string[]).includes(value)) {
    throw new CliError('ADMIN_USAGE', `--event: no event type "${value}"; the event types are ${AUDIT_EVENTS.join(', ')}`);
  }
  return value;
}

async function page(ctx: Context, query: URLSearchParams): Promise<{ events: AuditEvent[]; nextCursor: string | null }> {
  return ctx.api<{ events: AuditEvent[]; nextCursor: string | null }>({ method: 'GET', path: `/v1/audit?${query.toString()}` });
}

export function registerAuditCommand(program: Command, action: Action, cancellation: () => AbortSignal): void {
  program
    .command('audit')
    .description('the audit log: the latest events (oldest first, like tail), filtered; --follow for new ones')
    .option('--user <name>', 'events about or by this user')
    .option('--device <imei>', 'events of this device')
    .addOption(new Option('--event <type>', 'one event type, e.g. login.failed, device.blacklisted, user.created'))
    .option('--since <time>', 'from this time on (ISO 8601 UTC, a date, or an age like 2h or 7d)')
    .option('--until <time>', 'up to this time (same forms)')
    .option('-n, --limit <n>', 'how many of the latest events (1..500)', '20')
    .option('-f, --follow', 'keep printing new events until Ctrl-C')
    .option('--interval <seconds>', 'how often --follow asks the server', '2')
    .action(
      action(async (ctx, opts) => {
        const o = opts as AuditOptions;
        const query = new URLSearchParams({ limit: String(pageSize(o.limit)) });
        if (o.user !== undefined) {
          if (!USERNAME_PATTERN.test(o.user)) throw new CliError('ADMIN_USAGE', '--user: a user name');
          query.set('username', o.user);
        }
        if (o.device !== undefined) {
          if (!IMEI_PATTERN.test(o.device)) throw new CliError('ADMIN_USAGE', '--device: an IMEI (15 digits)');
          query.set('imei', o.device);
        }
        if (o.event !== undefined) query.set('event', await eventOf(o.event));
        if (o.since !== undefined) query.set('from', parseTime(o.since, '--since'));
        if (o.until !== undefined) query.set('to', parseTime(o.until, '--until'));
        const interval = Number(o.interval);
        if (!Number.isFinite(interval) || interval < 0.2 || interval > 3600) throw new CliError('ADMIN_USAGE', '--interval: seconds, 0.2..3600');

        const first = await page(ctx, query);
        const events = [...first.events].reverse();
        if (o.follow !== true) {
          ctx.out.result({ events, nextCursor: first.nextCursor }, () => (events.length === 0 ? 'No matching events.' : render(events)));
          return;
        }
        // Follow: one JSON object per line with --json (a stream), table rows otherwise.
        const seen = new Set(events.map((e) => e.id));
        const emit = (batch: readonly AuditEvent[]): void => {
          if (batch.length === 0) return;
          if (ctx.out.json) for (const e of batch) process.stdout.write(`${JSON.stringify(e)}\n`);
          else process.stdout.write(`${render(batch).split('\n').slice(2).join('\n')}\n`);
        };
        if (!ctx.out.json) process.stdout.write(`${render(events)}\n`);
        else emit(events);
        let since = events.at(-1)?.at ?? new Date().toISOString();
        const signal = cancellation();
        while (!signal.aborted) {
          await sleep(interval * 1000, signal);
          if (signal.aborted) break;
          const q = new URLSearchParams(query);
          q.set('from', since);
          q.delete('to');
          q.set('limit', '500');
          const fresh = (await page(ctx, q)).events.filter((e) => !seen.has(e.id)).reverse();
          for (const e of fresh) seen.add(e.id);
          emit(fresh);
          since = fresh.at(-1)?.at ?? since;
        }
      }),
    );
}
