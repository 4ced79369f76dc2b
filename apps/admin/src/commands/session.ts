import type { Command } from 'commander';
import { FieldvaultError, NODE_ID_PATTERN, USERNAME_PATTERN, isFieldvaultError } from '@fieldvault/protocol';
import type { Context, ServerOptions } from '../context.js';
import { CliError } from '../errors.js';
import type { ServerTrust } from '../home.js';
import type { ApiClient } from '../http.js';
import { keyValues, timeOf } from '../output.js';
import type { Action } from './action.js';

interface SessionView {
  readonly token: string;
  readonly expiresAt: string;
  readonly user: { readonly username: string; readonly role: string };
  /** The server's id; servers from before it was sent leave it out. */
  readonly serverId?: unknown;
}

function checkUsername(name: string): string {
  if (!USERNAME_PATTERN.test(name)) throw new CliError('ADMIN_USAGE', `"${name}" is not a user name (lowercase letters, digits, ".", "_", "-")`);
  return name;
}

async function askUsername(ctx: Context, option: string | undefined): Promise<string> {
  return checkUsername(option ?? ctx.home.config().username ?? (await ctx.prompter.ask('Admin user name', { secret: false })));
}

/** What `login` and `enrol` start from: the server (from the options or remembered), its client, the admin and their password. */
async function signIn(ctx: Context, opts: unknown): Promise<{ trust: ServerTrust; client: ApiClient; username: string; password: string }> {
  const o = opts as ServerOptions & { user?: string };
  const trust = ctx.server(o);
  const client = ctx.client(trust);
  const username = await askUsername(ctx, o.user);
  const password = await ctx.prompter.ask(`Password for ${username}`);
  return { trust, client, username, password };
}

/**
 * TOTP enrolment: the server makes a secret, shown here once (stderr, even with --json: it is
 * never printed to stdout where scripts might store it); the admin adds it to an authenticator
 * app and types the first code, which confirms it and opens the first session.
 */
async function enrol(
  ctx: Context,
  client: ApiClient,
  username: string,
  password: string,
  onStarted?: () => void,
): Promise<{ recoveryCodes: string[]; session: SessionView }> {
  const started = await client.call<{ secret: string; otpauthUri: string; issuer: string }>({ method: 'POST', path: '/v1/admin/totp/enrol', body: { username, password } });
  onStarted?.();
  process.stderr.write(
    [
      '',
      'Two-factor authentication: add this account to an authenticator app (shown once).',
      `  secret:      ${started.secret}`,
      `  otpauth URI: ${started.otpauthUri}`,
      '  (type the secret in, or make a QR code of the URI on a trusted machine; settings: TOTP, SHA-1, 6 digits, 30 s)',
      '',
    ].join('\n'),
  );
  const code = checkCode(await ctx.prompter.ask('First 6-digit code from the app', { secret: false }), { recovery: false });
  return client.call<{ recoveryCodes: string[]; session: SessionView }>({ method: 'POST', path: '/v1/admin/totp/confirm', body: { username, password, code } });
}

const TOTP_CODE = /^[0-9]{6}$/;
const RECOVERY_CODE = /^[A-Za-z2-7]{4}(-?[A-Za-z2-7]{4}){3}$/;

/**
 * The code as typed (spaces removed: apps show "123 456"), checked locally so a typo is not sent.
 * @throws ADMIN_CODE_MALFORMED
 */
function checkCode(typed: string, { recovery = true } = {}): string {
  const code = typed.replace(/\s+/g, '');
  if (TOTP_CODE.test(code) || (recovery && RECOVERY_CODE.test(code))) return code;
  throw new CliError('ADMIN_CODE_MALFORMED', recovery ? undefined : 'enrolment is confirmed with a code from the app, not a recovery code');
}

/** Remembers the server and the admin (no secret) for the next command. */
function remember(ctx: Context, trust: ServerTrust, username: string): void {
  ctx.home.saveConfig({ server: trust, username });
}

function showRecoveryCodes(codes: readonly string[]): string {
  return [
    'Recovery codes (each works once instead of a code; shown only now — store them offline):',
    ...codes.map((c) => `  ${c}`),
  ].join('\n');
}

function sessionLines(session: Pick<SessionView, 'user' | 'expiresAt'>, server: ServerTrust | null): string {
  return keyValues([
    ['logged in as', `${session.user.username} (${session.user.role})`],
    ['server', server?.url ?? ''],
    // Unknown (no row) until the first login with a CLI that keeps it.
    ...(server?.id === undefined ? [] : [['server id', server.id] as [string, string]]),
    ['session expires', timeOf(session.expiresAt)],
  ]);
}

/**
 * The server as the login answer identified it: its id replaces any remembered one (the server
 * at a URL can change), and is dropped when an older server does not send it. One that is not a
 * server id (only a misbehaving server sends that) is dropped too rather than refused: the login
 * has already happened, and an enrolment's one-time recovery codes are in this same answer, so
 * failing here would lose them; the id only names the server in the CLI's output.
 */
function identified(trust: ServerTrust, serverId: unknown): ServerTrust {
  const { id: _remembered, ...rest } = trust;
  return typeof serverId === 'string' && NODE_ID_PATTERN.test(serverId) ? { ...rest, id: serverId } : rest;
}

/**
 * Remembers the server and user, keeps the session token in the 0600 session file, and prints the
 * session, with the recovery codes when an enrolment has just made them.
 */
function opened(ctx: Context, trust: ServerTrust, session: SessionView, recoveryCodes: string[] | undefined): void {
  const server = identified(trust, session.serverId);
  ctx.home.saveConfig({ server, username: session.user.username });
  ctx.home.saveSession({ token: session.token, expiresAt: session.expiresAt, username: session.user.username, url: server.url });
  ctx.out.result(
    { user: session.user, expiresAt: session.expiresAt, server: server.url, serverId: server.id ?? null, ...(recoveryCodes === undefined ? {} : { recoveryCodes }) },
    () => `${sessionLines(session, server)}${recoveryCodes === undefined ? '' : `\n\n${showRecoveryCodes(recoveryCodes)}`}`,
  );
}

export function registerSessionCommands(program: Command, action: Action): void {
  const serverOptions = (c: Command): Command =>
    c
      .option('--server <url>', 'the server, https://host:port (remembered)')
      .option('--ca <file>', 'PEM certificate to trust for it (e.g. the server\'s data/tls/dev-cert.pem)')
      .option('--pin <sha256>', 'SHA-256 fingerprint of its certificate, as the server prints it at start');
  /** `login` and `enrol`: an existing admin (named, or the remembered one) on a server (named, or the remembered one). */
  const signInCommand = (name: string, description: string): Command =>
    serverOptions(program.command(name)).description(description).option('--user <name>', 'admin user name (default: the remembered one)');

  serverOptions(program.command('init'))
    .description('create the first admin with the one-time setup token, enrol TOTP, and log in')
    .option('--user <name>', 'user name of the first admin', 'admin')
    .action(
      action(async (ctx, opts) => {
        const o = opts as ServerOptions & { user: string };
        const username = checkUsername(o.user);
        const trust = ctx.server(o);
        const client = ctx.client(trust);
        const setupToken = await ctx.prompter.ask('Setup token (printed by the server at its first start)');
        const password = await ctx.prompter.ask(`New password for ${username} (15+ characters, a few unrelated words)`, { confirm: true });
        await client.call({ method: 'POST', path: '/v1/setup/admin', body: { setupToken, username, password } });
        ctx.home.saveConfig({ server: trust, username });
        ctx.out.note(`Admin ${username} created.`);
        const { recoveryCodes, session } = await enrol(ctx, client, username, password);
        opened(ctx, trust, session, recoveryCodes);
      }),
    );

  signInCommand('login', 'log in with password and a one-time code (enrols TOTP first if the account has none); keeps the session in a 0600 file')
    .action(
      action(async (ctx, opts) => {
        const { trust, client, username, password } = await signIn(ctx, opts);
        // First the password alone: the server answers whether the account has an authenticator,
        // so an admin without one goes to enrolment without being asked for a code they cannot have.
        const step = await client.call<SessionView>({ method: 'POST', path: '/v1/admin/login', body: { username, password } }).then(
          () => {
            // The console never opens a session without a code; an answer without one is not ours.
            throw new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail: 'a console session without a second factor' });
          },
          (err: unknown) => {
            if (isFieldvaultError(err) && (err.code === 'AUTH_TOTP_ENROLMENT_REQUIRED' || err.code === 'AUTH_TOTP_REQUIRED')) return err.code;
            throw err;
          },
        );
        // The server is reachable and trusted and the password right: remember them now, so that
        // an enrolment or a code cut short can be finished with "enrol" or "login" alone.
        remember(ctx, trust, username);
        if (step === 'AUTH_TOTP_ENROLMENT_REQUIRED') {
          process.stderr.write('This account has no authenticator yet: enrolling one now.\n');
          const { session, recoveryCodes } = await enrol(ctx, client, username, password);
          opened(ctx, trust, session, recoveryCodes);
          return;
        }
        const code = checkCode(await ctx.prompter.ask('6-digit code from the authenticator app (or a recovery code)', { secret: true }));
        const session = await client.call<SessionView>({ method: 'POST', path: '/v1/admin/login', body: { username, password, code } });
        opened(ctx, trust, session, undefined);
      }),
    );

  signInCommand('enrol', 'set up TOTP for an admin account that has none (after an invitation or a TOTP reset), and log in')
    .action(
      action(async (ctx, opts) => {
        const { trust, client, username, password } = await signIn(ctx, opts);
        const { recoveryCodes, session } = await enrol(ctx, client, username, password, () => remember(ctx, trust, username));
        opened(ctx, trust, session, recoveryCodes);
      }),
    );

  program
    .command('logout')
    .description('end the admin session on the server and delete the local session file')
    .action(
      action(async (ctx) => {
        const had = ctx.session() !== undefined;
        try {
          if (had) await ctx.api({ method: 'POST', path: '/v1/auth/logout', body: {} });
        } catch (err) {
          // Logged out already (expired or revoked): the local file goes anyway.
          if (!(err instanceof CliError && err.code === 'ADMIN_NOT_LOGGED_IN')) throw err;
        } finally {
          ctx.home.forgetSession();
        }
        ctx.out.result({ loggedOut: true }, () => (had ? 'Logged out.' : 'No session was stored.'));
      }),
    );

  program
    .command('whoami')
    .description('show the current admin session')
    .action(
      action(async (ctx) => {
        const info = await ctx.api<{ user: { username: string; role: string }; expiresAt: string; console: boolean }>({ method: 'GET', path: '/v1/auth/session' });
        const server = ctx.home.config().server;
        ctx.out.result({ ...info, server: server?.url ?? '', serverId: server?.id ?? null }, () => sessionLines(info, server));
      }),
    );
}
