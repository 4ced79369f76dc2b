import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDevice, createHttpTransport, type Device, type HttpTransport, type Session } from '@fieldvault/client';
import { isFieldvaultError, FieldvaultError } from '@fieldvault/protocol';
import { SqlCipherStorage } from '@fieldvault/storage-sqlcipher';
import type { Environment } from './config.js';
import { Home, type HomeConfig, type ServerEntry } from './home.js';
import type { Output } from './output.js';
import type { PasswordSource } from './password.js';
import { createProgress, type Progress } from './progress.js';

/*
 * Sessions in a command line. The SDK keeps database keys and server tokens in memory only, and
 * every CLI invocation is a new process, so no login survives a command. Each command that needs
 * the vault therefore asks for the password (prompt, or --password-stdin), logs in — offline, or
 * online for `login` and `sync` — does its work and logs out before the process ends. What the CLI
 * remembers between commands is only a *name*: the current user (`login` sets it, `logout` forgets
 * it), so `--user` can be left out. Nothing secret is ever written by the CLI.
 */

/** Options every command accepts. */
export interface GlobalOptions {
  readonly home?: string;
  readonly user?: string;
  readonly json?: boolean;
  readonly passwordStdin?: boolean;
  readonly debug?: boolean;
}

export interface Context {
  readonly env: Environment;
  readonly home: Home;
  readonly globals: GlobalOptions;
  readonly out: Output;
  readonly passwords: PasswordSource;
  /**
   * Makes Ctrl-C stop this command at a safe point (sync) instead of quitting at once, and returns
   * the signal that the first Ctrl-C aborts.
   */
  cancellation(): AbortSignal;
  /** A progress bar, when stderr is a terminal and --json is off. */
  progress(): Progress;
}

export function makeContext(parts: Omit<Context, 'progress'>): Context {
  return {
    ...parts,
    progress: () => createProgress(parts.env.stderrIsTty && parts.globals.json !== true),
  };
}

/** The device this home plays, its config, and its storage (for listing databases). */
export interface OpenDevice {
  readonly device: Device;
  readonly storage: SqlCipherStorage;
  readonly config: HomeConfig;
}

/**
 * Opens the SDK on the home's `sdk/` directory (creating the home and its IMEI on first use).
 * Takes the home's lock: it is released when the process ends (main).
 */
export async function openDevice(ctx: Context): Promise<OpenDevice> {
  ctx.home.lock();
  const { config } = ctx.home.ensure();
  const directory = ctx.home.sdkDirectory;
  const storage = new SqlCipherStorage({ directory: join(directory, 'databases') });
  const device = await createDevice({ directory, imei: config.imei, storage });
  return { device, storage, config };
}

/** `--user`, else the remembered user. @throws FIELD_NO_USER */
export function userOf(ctx: Context, config: HomeConfig): string {
  const user = ctx.globals.user ?? config.currentUser;
  if (user === null || user === undefined) throw new FieldvaultError('FIELD_NO_USER');
  return user;
}

/** The named server, or the only one configured. @throws FIELD_SERVER_UNKNOWN, FIELD_SERVER_AMBIGUOUS */
export function serverOf(config: HomeConfig, name: string | undefined): { name: string; entry: ServerEntry } {
  if (name !== undefined) {
    const entry = Object.hasOwn(config.servers, name) ? config.servers[name] : undefined;
    if (entry === undefined) throw new FieldvaultError('FIELD_SERVER_UNKNOWN', { detail: name });
    return { name, entry };
  }
  const names = Object.keys(config.servers);
  const only = names.length === 1 ? names[0] : undefined;
  if (only === undefined) throw new FieldvaultError('FIELD_SERVER_AMBIGUOUS', { detail: names.length === 0 ? 'none configured' : `configured: ${names.join(', ')}` });
  return { name: only, entry: config.servers[only] as ServerEntry };
}

/** The SDK transport for a configured server: TLS pinned or checked against its CA, never "any certificate". */
export function transportOf(entry: ServerEntry): HttpTransport {
  return createHttpTransport({
    baseUrl: entry.url,
    serverId: entry.serverId,
    tls: {
      ...(entry.pinSha256 === undefined ? {} : { pinSha256: entry.pinSha256 }),
      ...(entry.ca === undefined ? {} : { ca: entry.ca }),
    },
  });
}

/** Reads a file named on the command line. @throws FIELD_FILE_UNREADABLE */
export function readArgFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new FieldvaultError('FIELD_FILE_UNREADABLE', { detail: `${path}${typeof code === 'string' ? `: ${code}` : ''}` });
  }
}

export type LoginMode = { readonly offline: true } | { readonly offline: false; readonly server: string | undefined };

export interface OpenSession extends OpenDevice {
  readonly session: Session;
  readonly username: string;
  /** The server logged in to (online mode). */
  readonly server?: { readonly name: string; readonly entry: ServerEntry; readonly transport: HttpTransport };
}

/**
 * Asks the user's password, logs in (offline, or online to one server), runs `work`, and logs out
 * whatever happens: the keys and any server token leave memory before the command returns.
 * `device`: the device the command already opened (one Device per process).
 */
export async function withSession<T>(ctx: Context, mode: LoginMode, work: (s: OpenSession) => Promise<T>, device?: OpenDevice): Promise<T> {
  const opened = device ?? (await openDevice(ctx));
  const username = userOf(ctx, opened.config);
  // Resolve the server before the password is asked, so a typo costs no typing.
  const target = mode.offline ? undefined : serverOf(opened.config, mode.server);
  const transport = target === undefined ? undefined : transportOf(target.entry);
  const password = await ctx.passwords.ask(`Password for ${username}`);
  const session = await forgettingWipedUser(ctx, () =>
    transport === undefined ? opened.device.loginOffline(username, password) : opened.device.loginOnline(username, password, { transport }),
  );
  try {
    return await forgettingWipedUser(ctx, () =>
      work({
        ...opened,
        session,
        username,
        ...(target === undefined || transport === undefined ? {} : { server: { ...target, transport } }),
      }),
    );
  } finally {
    await session.logout();
  }
}

/**
 * Runs an SDK call that may learn the device is blacklisted. The SDK has then wiped the device,
 * so the remembered user has no keys here any more: the CLI forgets the name too.
 */
export async function forgettingWipedUser<T>(ctx: Context, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isFieldvaultError(err) && err.code === 'DEVICE_BLACKLISTED') ctx.home.update((c) => ({ ...c, currentUser: null }));
    throw err;
  }
}
