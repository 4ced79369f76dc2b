import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PUBLIC_KEY_PIN_PATTERN, createDevice, createHttpTransport, type Device, type HttpTransport, type Session } from '@fieldvault/client';
import { USERNAME_PATTERN, isFieldvaultError, FieldvaultError } from '@fieldvault/protocol';
import { SqlCipherStorage } from '@fieldvault/storage-sqlcipher';
import type { Environment } from './config.js';
import { fieldError, inFieldWorkerWords, inServerWords, type ConfiguredServers, type ServerRef } from './errors.js';
import { Home, type HomeConfig, type ServerEntry } from './home.js';
import type { Output } from './output.js';
import type { PasswordSource } from './password.js';
import { createInterruptibleProgress, type InterruptibleProgress, type Progress } from './progress.js';

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

export interface ContextParts extends Omit<Context, 'progress'> {
  /** Written to `stderr` when the first Ctrl-C asks a cancellable command to stop. */
  readonly interruptNote: string;
  /** Where progress bars and the interrupt note go (process.stderr). */
  readonly stderr?: NodeJS.WritableStream;
}

/**
 * The context of one command. Ctrl-C during a cancellable command first clears the progress bars
 * (a bar redraws its line from a saved cursor position: text written below it while it runs ends
 * up glued into the next message), then prints the note; bars stay silent from then on.
 */
export function makeContext({ interruptNote, stderr = process.stderr, ...parts }: ContextParts): Context {
  const bars: InterruptibleProgress[] = [];
  let interrupted = false;
  return {
    ...parts,
    cancellation() {
      const signal = parts.cancellation();
      signal.addEventListener(
        'abort',
        () => {
          interrupted = true;
          const cleared = bars.map((b) => b.interrupt()).some((active) => active);
          // A cleared bar leaves the cursor at the start of its line; otherwise start a new line after the echoed ^C.
          stderr.write(cleared ? interruptNote : `\n${interruptNote}`);
        },
        { once: true },
      );
      return signal;
    },
    progress() {
      const bar = createInterruptibleProgress(parts.env.stderrIsTty && parts.globals.json !== true && !interrupted, stderr);
      bars.push(bar);
      return bar;
    },
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
  ctx.home.checkImei(config);
  const directory = ctx.home.sdkDirectory;
  const storage = new SqlCipherStorage({ directory: join(directory, 'databases') });
  const device = await createDevice({ directory, imei: config.imei, storage });
  return { device, storage, config };
}

/** `--user`, else the remembered user. @throws FIELD_NO_USER, FIELD_USAGE (not a username) */
export function userOf(ctx: Context, config: HomeConfig): string {
  const user = ctx.globals.user ?? config.currentUser;
  if (user === null || user === undefined) throw new FieldvaultError('FIELD_NO_USER');
  // Checked before any password is asked: the SDK and the servers accept only this form.
  if (!USERNAME_PATTERN.test(user)) {
    const lower = user.toLowerCase();
    throw new FieldvaultError('FIELD_USAGE', {
      detail:
        `--user "${user}": a username is 1 to 64 lowercase letters, digits, ".", "_" or "-", starting with a letter or digit` +
        (lower !== user && USERNAME_PATTERN.test(lower) ? `; did you mean --user ${lower}?` : ''),
    });
  }
  return user;
}

/**
 * Refuses, before a password is asked, a user the phone does not know at all: the phone lists its
 * users without a password (as `status --locked` does), so saying so gives nothing away, and
 * "wrong password" would send the user hunting for a password that cannot work.
 * @throws FIELD_USER_UNKNOWN
 */
async function checkUserOnPhone(device: Device, username: string): Promise<void> {
  const users = await device.users();
  if (users.some((u) => u.username === username)) return;
  const known = users.map((u) => u.username);
  throw fieldError(
    'FIELD_USER_UNKNOWN',
    `There is no user "${username}" on this phone${known.length === 0 ? ' (no one has signed up or logged in here yet)' : ` (users here: ${known.join(', ')})`}. ` +
      `If "${username}" has an account on a server, log in online once: "fieldvault-field login --user ${username} SERVER". ` +
      `Otherwise sign up on this phone: "fieldvault-field signup --user ${username}".`,
  );
}

/**
 * The named server, or the only one configured. `command`: how the user names a server to this
 * command (`login`, `request-account` …), so that the refusal shows the command to type.
 * @throws FIELD_SERVER_UNKNOWN, FIELD_SERVER_AMBIGUOUS
 */
export function serverOf(config: HomeConfig, name: string | undefined, command?: string): { name: string; entry: ServerEntry } {
  if (name !== undefined) {
    const entry = Object.hasOwn(config.servers, name) ? config.servers[name] : undefined;
    if (entry === undefined) throw new FieldvaultError('FIELD_SERVER_UNKNOWN', { detail: name });
    return { name, entry };
  }
  const names = Object.keys(config.servers);
  const only = names.length === 1 ? names[0] : undefined;
  if (only !== undefined) return { name: only, entry: config.servers[only] as ServerEntry };
  if (names.length === 0) throw new FieldvaultError('FIELD_SERVER_AMBIGUOUS', { detail: 'none configured' });
  // Several: adding one more cannot help (field audit F6), naming one does.
  const example = command === undefined ? 'name one of them' : `name one: "fieldvault-field ${command} ${names[0] ?? ''}"`;
  throw fieldError(
    'FIELD_SERVER_AMBIGUOUS',
    `No server was named and this phone has ${names.length} configured (${names.join(', ')}): ${example} ("fieldvault-field servers list" shows them).`,
  );
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

/** `command`: the command that logs in online, to show how to name a server (see `serverOf`). */
export type LoginMode = { readonly offline: true } | { readonly offline: false; readonly server: string | undefined; readonly command?: string };

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
  const target = mode.offline ? undefined : serverOf(opened.config, mode.server, mode.command);
  const transport = target === undefined ? undefined : transportOf(target.entry);
  if (mode.offline) await checkUserOnPhone(opened.device, username);
  const ref: ServerRef | undefined = target === undefined ? undefined : serverRefOf(target);
  const password = await ctx.passwords.ask(`Password for ${username}`);
  const session = await inServerTerms(ref, opened.config.servers, () =>
    forgettingWipedUser(ctx, () =>
      transport === undefined ? opened.device.loginOffline(username, password) : opened.device.loginOnline(username, password, { transport }),
    ),
  );
  try {
    if (target !== undefined && transport !== undefined) learnKeyPin(ctx, target, transport);
    return await inServerTerms(ref, opened.config.servers, () =>
      forgettingWipedUser(ctx, () =>
        work({
          ...opened,
          session,
          username,
          ...(target === undefined || transport === undefined ? {} : { server: { ...target, transport } }),
        }),
      ),
    );
  } finally {
    await session.logout();
  }
}

/**
 * A server pinned by its certificate fingerprint alone (added before public-key pins existed, or
 * with `servers add --offline`) gets its public key pinned too at the first online login, over
 * the connection that fingerprint has just verified: a certificate later renewed with the same
 * key keeps working, where the fingerprint alone would lock the phone out (as `servers add`
 * does online; admin audit s16, F7). A server trusted through a CA needs nothing.
 */
export function learnKeyPin(ctx: Context, target: { readonly name: string; readonly entry: ServerEntry }, transport: HttpTransport): void {
  const pins = target.entry.pinSha256;
  if (pins === undefined || pins.some((p) => PUBLIC_KEY_PIN_PATTERN.test(p))) return;
  const keyPin = transport.peerKeyPin();
  if (keyPin === undefined) return;
  let learned = false;
  ctx.home.update((c) => {
    const now = c.servers[target.name];
    // Only the entry this login used (a concurrent `servers remove`/`add` is not undone).
    if (now === undefined || now.url !== target.entry.url || now.pinSha256 === undefined || now.pinSha256.some((p) => PUBLIC_KEY_PIN_PATTERN.test(p))) return c;
    learned = true;
    return { ...c, servers: { ...c.servers, [target.name]: { ...now, pinSha256: [...now.pinSha256, keyPin] } } };
  });
  if (learned) ctx.out.note(`Pinned the public key of server ${target.name} too (${keyPin}): a certificate renewed with the same key will be accepted.`);
}

/** How errors name a configured server. */
export function serverRefOf({ name, entry }: { readonly name: string; readonly entry: ServerEntry }): ServerRef {
  return { name, url: entry.url, serverId: entry.serverId };
}

/**
 * Runs `call` of a command working with `server`: its catalogued errors come out in the field
 * worker's words, and those tied to a server name it (see `inServerWords`).
 */
export async function inServerTerms<T>(server: ServerRef | undefined, configured: ConfiguredServers, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!isFieldvaultError(err)) throw err;
    throw server === undefined ? inFieldWorkerWords(err, undefined, configured) : inServerWords(err, server, configured);
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
