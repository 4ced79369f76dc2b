import { Argument, Option, type Command } from 'commander';
import { USERNAME_PATTERN } from '@fieldvault/protocol';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import { keyValues, table, timeOf } from '../output.js';
import { HELP_USER_SCOPE, userScopeLine } from '../scope.js';
import type { Action } from './action.js';
import { fetchAll } from './paging.js';

const ROLES = ['field_worker', 'supervisor', 'admin'] as const;

export interface UserView {
  readonly username: string;
  readonly role: string;
  readonly disabled: boolean;
  readonly hasPassword: boolean;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly updatedAt: string;
  readonly passwordChangedAt: string | null;
  readonly totp: string;
  /** Present on show, list and reset: the login lock after repeated failed logins (null: none). */
  readonly lock?: { readonly failures: number; readonly until: string | null } | null;
}

function name(value: string): string {
  if (!USERNAME_PATTERN.test(value)) throw new CliError('ADMIN_USAGE', `"${value}" is not a user name (lowercase letters, digits, ".", "_", "-")`);
  return value;
}

const path = (username: string, rest = ''): string => `/v1/users/${encodeURIComponent(name(username))}${rest}`;

function state(u: UserView): string {
  if (u.disabled) return 'disabled';
  if (u.lock != null) return 'locked';
  // Without a password: never had one (invited) or had it voided by "users reset".
  if (!u.hasPassword) return u.passwordChangedAt === null ? 'invited' : 'reset pending';
  return 'active';
}

function passwordLine(u: UserView): string {
  if (u.hasPassword || u.passwordChangedAt === null) return timeOf(u.passwordChangedAt);
  return `— (reset: the one set ${timeOf(u.passwordChangedAt)} no longer works; the user sets a new one with the reset token)`;
}

function lockLine(lock: NonNullable<UserView['lock']>): string {
  const until = lock.until === null ? 'until a password reset ("users reset")' : `until ${timeOf(lock.until)}`;
  return `locked ${until} after ${lock.failures} failed logins; "users reset" ends it`;
}

function userLines(u: UserView): string {
  return keyValues([
    ['user', u.username],
    ['role', u.role],
    ['state', state(u)],
    ...(u.lock == null ? [] : [['login lock', lockLine(u.lock)] as [string, string]]),
    ['two-factor (TOTP)', u.role === 'admin' || u.totp !== 'none' ? u.totp : '— (not used by this role)'],
    ['created', `${timeOf(u.createdAt)} by ${u.createdBy}`],
    ['updated', timeOf(u.updatedAt)],
    ['password set', passwordLine(u)],
  ]);
}

function tokenLines(u: UserView, what: 'invitation' | 'password reset', token: { token: string; expiresAt: string }): string {
  return [
    userLines(u),
    '',
    `One-time ${what} token for ${u.username} (shown once; valid until ${timeOf(token.expiresAt)}):`,
    `  ${token.token}`,
    `Give it to ${u.username} in person or over a trusted channel; they choose their own password with it`,
    'in the field app (or POST /v1/auth/password). You never see or choose their password.',
  ].join('\n');
}

export function registerUserCommands(program: Command, action: Action): void {
  const users = program.command('users').description('user accounts: add, list, show, disable, enable, role, reset, reset-totp');

  users
    .command('add <username>')
    .description('create a user; prints a one-time invitation token with which they set their own password')
    .addOption(new Option('--role <role>', 'their role').choices(ROLES).default('field_worker'))
    .action(
      action(async (ctx, username, opts) => {
        const res = await ctx.api<{ user: UserView; invitation: { token: string; expiresAt: string } }>({
          method: 'POST',
          path: '/v1/users',
          body: { username: name(username as string), role: (opts as { role: string }).role },
        });
        ctx.out.result(res, () => tokenLines(res.user, 'invitation', res.invitation));
      }),
    );

  users
    .command('list')
    .description('list users (one page; --all for every page)')
    .option('--limit <n>', 'users per page (1..500)', '100')
    .option('--all', 'fetch every page')
    .action(
      action(async (ctx, opts) => {
        const o = opts as { limit: string; all?: boolean };
        const list = await fetchAll<UserView, 'users'>(ctx, '/v1/users', 'users', {}, o.limit, o.all === true);
        ctx.out.result(list, () =>
          list.users.length === 0
            ? 'No users.'
            : table(list.users, [
                { header: 'USER', value: (u) => u.username },
                { header: 'ROLE', value: (u) => u.role },
                { header: 'STATE', value: state },
                { header: 'TOTP', value: (u) => (u.role === 'admin' || u.totp !== 'none' ? u.totp : '—') },
                { header: 'CREATED', value: (u) => timeOf(u.createdAt) },
                { header: 'BY', value: (u) => u.createdBy },
              ]) + (list.nextCursor === null ? '' : '\n(more: use --all)'),
        );
      }),
    );

  users
    .command('show <username>')
    .description('show one user')
    .action(
      action(async (ctx, username) => {
        const { user } = await ctx.api<{ user: UserView }>({ method: 'GET', path: path(username as string) });
        ctx.out.result({ user }, () => userLines(user));
      }),
    );

  const patch = (ctx: Context, username: string, body: Record<string, unknown>): Promise<{ user: UserView }> =>
    ctx.api<{ user: UserView }>({ method: 'PATCH', path: path(username), body });

  users
    .command('disable <username>')
    .description(
      'disable a user: their sessions here end and their logins here are refused; phones keep their offline access ' +
        `(blacklist or retire the phones to end it) ${HELP_USER_SCOPE}`,
    )
    .action(
      action(async (ctx, username) => {
        const { user } = await patch(ctx, username as string, { disabled: true });
        // Admin audit s16, F1: nothing reaches the phone (the SDK does not act on USER_DISABLED).
        ctx.out.result({ user }, () =>
          [
            `${user.username} is disabled: their sessions here have ended and their logins here are refused.`,
            'Phones they used keep their offline access to the records on them: to end it, blacklist or retire',
            'those phones ("fieldvault-admin devices list" shows the users each phone has seen).',
            userScopeLine(ctx, 'users disable', user.username),
          ].join('\n'),
        );
      }),
    );

  users
    .command('enable <username>')
    .description('enable a disabled user again')
    .action(
      action(async (ctx, username) => {
        const { user } = await patch(ctx, username as string, { disabled: false });
        ctx.out.result({ user }, () => `${user.username} is enabled.`);
      }),
    );

  users
    .command('role')
    .argument('<username>')
    .description('change a user\'s role (a new admin must enrol TOTP at their next login)')
    .addArgument(new Argument('<role>', 'the new role').choices(ROLES))
    .action(
      action(async (ctx, username, role) => {
        const { user } = await patch(ctx, username as string, { role: role as string });
        ctx.out.result({ user }, () => `${user.username} is now ${user.role}.`);
      }),
    );

  users
    .command('reset <username>')
    .description(
      'reset a password: the old one stops working, sessions end, and a one-time reset token is printed for the user ' +
        '(this server only: repeat it on every server the user uses, and they set the same new password on each)',
    )
    .action(
      action(async (ctx, username) => {
        const res = await ctx.api<{ user: UserView; reset: { token: string; expiresAt: string } }>({ method: 'POST', path: path(username as string, '/password-reset'), body: {} });
        ctx.out.result(res, () =>
          [
            tokenLines(res.user, 'password reset', res.reset),
            userScopeLine(ctx, 'users reset', res.user.username),
            // A phone keeps one password per user: the one of its last online login opens it offline.
            `${res.user.username} sets the same new password on each: a phone opens offline only with the password of its last online login.`,
          ].join('\n'),
        );
      }),
    );

  users
    .command('reset-totp <username>')
    .description('remove an admin\'s authenticator (lost phone): their sessions end and they enrol again at the next login')
    .action(
      action(async (ctx, username) => {
        const { user } = await ctx.api<{ user: UserView }>({ method: 'POST', path: path(username as string, '/totp-reset'), body: {} });
        ctx.out.result({ user }, () => `${user.username}'s authenticator was removed; they enrol a new one with "fieldvault-admin login".`);
      }),
    );
}
