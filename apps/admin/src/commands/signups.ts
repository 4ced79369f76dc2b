import { Option, type Command } from 'commander';
import { USERNAME_PATTERN } from '@fieldvault/protocol';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import { keyValues, showValue, table, timeOf } from '../output.js';
import type { Action } from './action.js';
import { fetchAll, pageSize } from './paging.js';

export interface SignupView {
  readonly username: string;
  readonly status: 'pending' | 'approved' | 'rejected';
  readonly imei: string;
  readonly requestedAt: string;
  readonly updatedAt: string;
  readonly decidedAt: string | null;
  readonly decidedBy: string | null;
  readonly role: string | null;
  readonly records: number;
}

interface QuarantinedView {
  readonly record: { id: string; createdAt: string; fields: Record<string, { value?: unknown }> };
  readonly receivedAt: string;
}

interface PushResultView {
  readonly id: string | null;
  readonly code?: string;
  readonly field?: string;
}

function name(value: string): string {
  if (!USERNAME_PATTERN.test(value)) throw new CliError('ADMIN_USAGE', `"${value}" is not a user name (lowercase letters, digits, ".", "_", "-")`);
  return value;
}

const path = (username: string, rest = ''): string => `/v1/signups/${encodeURIComponent(name(username))}${rest}`;

function decision(s: SignupView): string {
  return s.decidedAt === null ? '—' : `${timeOf(s.decidedAt)} by ${s.decidedBy ?? '—'}`;
}

function signupLines(s: SignupView): string {
  return keyValues([
    ['user', s.username],
    ['status', s.status],
    ['device (IMEI)', s.imei],
    ['requested', timeOf(s.requestedAt)],
    ['updated', timeOf(s.updatedAt)],
    ['decided', decision(s)],
    ['role', showValue(s.role)],
    ['records in quarantine', String(s.records)],
  ]);
}

/** Reject deletes the request's records: ask, as for a wiping device action. */
async function confirm(ctx: Context, username: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!ctx.env.stdinIsTty || ctx.globals.stdin === true) throw new CliError('ADMIN_NOT_CONFIRMED', `reject ${username}`);
  const typed = await ctx.prompter.ask(`This will reject ${username} and delete the records sent with the request. Type the user name to confirm`, { secret: false });
  if (typed.trim() !== username) throw new CliError('ADMIN_NOT_CONFIRMED', 'the user name typed does not match');
}

export function registerSignupCommands(program: Command, action: Action): void {
  const signups = program
    .command('signups')
    .description('pending sign-ups of phone users: list, show, approve (they keep their phone password), reject');

  signups
    .command('list')
    .description('list sign-up requests (pending ones unless --status; one page, --all for every page)')
    .addOption(new Option('--status <status>', 'requests in this state, or "any"').choices(['pending', 'approved', 'rejected', 'any']).default('pending'))
    .option('--limit <n>', 'requests per page (1..500)', '100')
    .option('--all', 'fetch every page')
    .action(
      action(async (ctx, opts) => {
        const o = opts as { status: string; limit: string; all?: boolean };
        const query = { status: o.status === 'any' ? undefined : o.status };
        const list = await fetchAll<SignupView, 'signups'>(ctx, '/v1/signups', 'signups', query, o.limit, o.all === true);
        ctx.out.result(list, () =>
          list.signups.length === 0
            ? `No ${o.status === 'any' ? '' : `${o.status} `}sign-up requests.`
            : table(list.signups, [
                { header: 'USER', value: (s) => s.username },
                { header: 'STATUS', value: (s) => s.status },
                { header: 'DEVICE', value: (s) => s.imei },
                { header: 'RECORDS', value: (s) => String(s.records) },
                { header: 'REQUESTED', value: (s) => timeOf(s.requestedAt) },
                { header: 'DECIDED', value: decision },
              ]) + (list.nextCursor === null ? '' : '\n(more: use --all)'),
        );
      }),
    );

  signups
    .command('show <username>')
    .description('show one request and the records waiting in quarantine with it')
    .option('--limit <n>', 'records to show (1..500)', '100')
    .action(
      action(async (ctx, username, opts) => {
        const limit = pageSize((opts as { limit: string }).limit);
        const res = await ctx.api<{ signup: SignupView; records: QuarantinedView[]; nextCursor: string | null }>({
          method: 'GET',
          path: `${path(username as string)}?limit=${limit}`,
        });
        ctx.out.result(res, () => {
          const head = signupLines(res.signup);
          if (res.records.length === 0) return head;
          const rows = table(res.records, [
            { header: 'RECORD', value: (q) => q.record.id },
            { header: 'NAME', value: (q) => showValue(q.record.fields['name']?.value) },
            { header: 'RECEIVED', value: (q) => timeOf(q.receivedAt) },
          ]);
          return `${head}\n\n${rows}${res.nextCursor === null ? '' : `\n(more: use --limit or --json)`}`;
        });
      }),
    );

  signups
    .command('approve <username>')
    .description('create the account with the password the user chose on the phone, and move their records into the records database')
    .addOption(new Option('--role <role>', 'their role (make an admin later with "users role")').choices(['field_worker', 'supervisor']).default('field_worker'))
    .action(
      action(async (ctx, username, opts) => {
        const res = await ctx.api<{ signup: SignupView; user: { username: string; role: string }; moved: number; failed: PushResultView[] }>({
          method: 'POST',
          path: path(username as string, '/approve'),
          body: { role: (opts as { role: string }).role },
        });
        ctx.out.result(res, () => {
          const lines = [
            `${res.user.username} is approved as ${res.user.role}; they log in online with the password they chose on the phone.`,
            `${res.moved} record(s) moved into the records database.`,
          ];
          if (res.failed.length > 0) {
            lines.push(`${res.failed.length} record(s) could not be moved and stay in quarantine ("signups show ${res.user.username}"; approve again to retry):`);
            for (const f of res.failed) lines.push(`  ${f.id ?? '—'}  ${f.code ?? ''}${f.field === undefined ? '' : ` (${f.field})`}`);
          }
          return lines.join('\n');
        });
      }),
    );

  signups
    .command('reject <username>')
    .description('refuse the request: its stored password hash and its records are deleted (audited)')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      action(async (ctx, username, opts) => {
        const who = name(username as string);
        await confirm(ctx, who, (opts as { yes?: boolean }).yes === true);
        const res = await ctx.api<{ signup: SignupView; deleted: number }>({ method: 'POST', path: path(who, '/reject'), body: {} });
        ctx.out.result(res, () => `${who}'s request is rejected; ${res.deleted} record(s) deleted.`);
      }),
    );
}
