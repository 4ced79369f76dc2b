import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FieldvaultError } from '@fieldvault/protocol';
import type { ChildConfig, ChildCredential, ChildMessage } from './child-protocol.js';

/**
 * A pino-compatible logger (a pino instance fits). The store is quiet without one: its output
 * goes here, never to stdout.
 */
export interface EmbeddedCouchLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export interface StartEmbeddedCouchOptions {
  /** Directory holding the store's LevelDB databases; created if missing. */
  readonly dataDir: string;
  /** Loopback address to bind (`127.0.0.0/8`, `::1` or `localhost`). Default `127.0.0.1`. */
  readonly host?: string;
  /** Port to bind. Default 0: a free port chosen by the system. */
  readonly port?: number;
  /** Receives the store's output and lifecycle events. Default: discard. */
  readonly logger?: EmbeddedCouchLogger;
  /** How long the store may take to answer HTTP before start fails. Default 20 000 ms. */
  readonly startTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before it sends SIGKILL. Default 10 000 ms. */
  readonly stopTimeoutMs?: number;
  /**
   * The HTTP Basic credential the store requires on every request. Default: a fresh one
   * (user `fieldvault`, 32 random bytes as password). Pass {@link EmbeddedCouch.credential} of a
   * crashed store to restart it with the same one, so that URLs handed out stay valid.
   */
  readonly credential?: EmbeddedCouchCredential;
}

/**
 * The credential of a store: secret, never log it. User name `[A-Za-z0-9_-]{1,64}`, password
 * `[A-Za-z0-9_-]{43,}` (at least 256 bits as base64url), so both go into a URL unescaped.
 */
export interface EmbeddedCouchCredential {
  readonly username: string;
  readonly password: string;
}

/** Why the store process ended on its own. */
export interface EmbeddedCouchCrash {
  /** Exit code, or null when a signal ended it. */
  readonly code: number | null;
  /** The signal that ended it, or null. */
  readonly signal: NodeJS.Signals | null;
}

export interface EmbeddedCouchEvents {
  /** The store process ended without `stop()` being called. Emitted once. */
  crash: [info: EmbeddedCouchCrash];
}

/**
 * A running embedded store. Every request must carry its credential (HTTP Basic), else it gets
 * 401: give {@link EmbeddedCouch.url} to nano or PouchDB, or send {@link EmbeddedCouch.authorization}
 * to {@link EmbeddedCouch.origin} with raw HTTP (Node's `fetch` refuses URLs with credentials).
 * The secret-bearing members are getters, so logging or serialising the object does not show them.
 */
export interface EmbeddedCouch {
  /**
   * Base URL with the credential and without a trailing slash, e.g.
   * `http://fieldvault:<password>@127.0.0.1:41234`, the form nano, PouchDB and `COUCHDB_URL`
   * take. Secret: never log it (log {@link origin}).
   */
  readonly url: string;
  /** Base URL without the credential, e.g. `http://127.0.0.1:41234`: safe to log and show. */
  readonly origin: string;
  /** `Authorization` header value (`Basic …`) for raw HTTP to {@link origin}. Secret. */
  readonly authorization: string;
  /** The credential, for a restart with the same one (`startEmbeddedCouch({ credential })`). Secret. */
  readonly credential: EmbeddedCouchCredential;
  readonly port: number;
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  /** Process id of the store process. */
  readonly pid: number;
  /** True once the store process has ended without `stop()`. */
  readonly crashed: boolean;
  /**
   * Stops the store: SIGTERM, then SIGKILL after `stopTimeoutMs`. Resolves once the process has
   * exited (at once if it already has, e.g. after a crash). Idempotent.
   */
  stop(): Promise<void>;
  on<K extends keyof EmbeddedCouchEvents>(event: K, listener: (...args: EmbeddedCouchEvents[K]) => void): this;
  once<K extends keyof EmbeddedCouchEvents>(event: K, listener: (...args: EmbeddedCouchEvents[K]) => void): this;
  off<K extends keyof EmbeddedCouchEvents>(event: K, listener: (...args: EmbeddedCouchEvents[K]) => void): this;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_USERNAME = 'fieldvault';
const USERNAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** base64url of at least 32 bytes: the credential must not be guessable by another local account. */
const PASSWORD_PATTERN = /^[A-Za-z0-9_-]{43,512}$/;
const DEFAULT_START_TIMEOUT_MS = 20_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** Lines of the child's stderr kept to explain a failed start. */
const STDERR_TAIL_LINES = 20;

/** A start failure the child process reported with its reason. */
class ChildReportedError extends Error {}

const silentLogger: EmbeddedCouchLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * The child script is always the compiled one: it runs under plain `node`. Resolving
 * `../dist/child.js` from this module works both from `dist/` and from `src/` (tests).
 */
function childScriptPath(): string {
  return fileURLToPath(new URL('../dist/child.js', import.meta.url));
}

/** Maps `host` to a loopback IP literal, or returns undefined if it is not loopback. */
function loopbackAddress(host: string): string | undefined {
  if (host === 'localhost') return DEFAULT_HOST;
  if (isIP(host) === 4 && host.startsWith('127.')) return host;
  if (host === '::1' || host === '0:0:0:0:0:0:0:1') return '::1';
  return undefined;
}

function invalid(detail: string): FieldvaultError {
  return new FieldvaultError('INPUT_INVALID', { detail });
}

function startFailed(detail: string, cause?: unknown): FieldvaultError {
  return new FieldvaultError('STORE_START_FAILED', cause === undefined ? { detail } : { detail, cause });
}

function positiveInt(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw invalid(`"${name}" must be a positive integer of milliseconds`);
  return value;
}

/**
 * Takes group and other permissions off the store directory and everything in it. The databases
 * hold child records in plain JSON and password hashes, so no other local account may read them;
 * the child also runs with umask 077 (child.ts), this covers stores created before that.
 */
function makePrivate(dir: string): void {
  const tighten = (path: string, isDir: boolean): void => {
    const mode = lstatSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) chmodSync(path, mode & (isDir ? 0o700 : 0o600));
  };
  tighten(dir, true);
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isDirectory() && !entry.isFile()) continue; // never follow a symlink out of the store
    tighten(join(entry.parentPath, entry.name), entry.isDirectory());
  }
}

/** A fresh credential, or the given one once checked (never quoting it). @throws INPUT_INVALID */
function credentialFrom(given: EmbeddedCouchCredential | undefined): EmbeddedCouchCredential {
  if (given === undefined) return { username: DEFAULT_USERNAME, password: randomBytes(32).toString('base64url') };
  if (typeof given.username !== 'string' || !USERNAME_PATTERN.test(given.username)) {
    throw invalid('"credential.username" must be 1 to 64 characters of A-Z, a-z, 0-9, "-" or "_"');
  }
  if (typeof given.password !== 'string' || !PASSWORD_PATTERN.test(given.password)) {
    throw invalid('"credential.password" must be 43 to 512 base64url characters (32+ random bytes); leave "credential" out to get a fresh one');
  }
  return { username: given.username, password: given.password };
}

function basicAuthorization(credential: EmbeddedCouchCredential): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}`;
}

/** GET / on the store with the credential; resolves true when it answers with the express-pouchdb welcome. */
function answersWelcome(origin: string, authorization: string, timeoutMs: number): Promise<boolean> {
  return new Promise((done) => {
    const req = request(`${origin}/`, { agent: false, timeout: timeoutMs, headers: { authorization } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => done(false));
      res.on('end', () => {
        try {
          const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          done(res.statusCode === 200 && typeof body === 'object' && body !== null && 'express-pouchdb' in body);
        } catch {
          done(false);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(false));
    req.end();
  });
}

class EmbeddedCouchProcess extends EventEmitter<EmbeddedCouchEvents> implements EmbeddedCouch {
  readonly origin: string;
  readonly port: number;
  readonly dataDir: string;
  readonly pid: number;
  #crashed = false;
  #stopping: Promise<void> | undefined;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  readonly #stopTimeoutMs: number;
  readonly #logger: EmbeddedCouchLogger;
  // Private fields behind getters: JSON.stringify, util.inspect and loggers see none of them.
  readonly #credential: EmbeddedCouchCredential;

  constructor(args: {
    child: ChildProcess & { pid: number };
    exited: Promise<void>;
    origin: string;
    credential: EmbeddedCouchCredential;
    port: number;
    dataDir: string;
    stopTimeoutMs: number;
    logger: EmbeddedCouchLogger;
  }) {
    super();
    this.#child = args.child;
    this.#exited = args.exited;
    this.origin = args.origin;
    this.#credential = args.credential;
    this.port = args.port;
    this.dataDir = args.dataDir;
    this.pid = args.child.pid;
    this.#stopTimeoutMs = args.stopTimeoutMs;
    this.#logger = args.logger;
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
      this.#onExit(this.#child.exitCode, this.#child.signalCode);
    } else {
      this.#child.once('exit', (code, signal) => this.#onExit(code, signal));
    }
  }

  get crashed(): boolean {
    return this.#crashed;
  }

  get url(): string {
    const { username, password } = this.#credential;
    return this.origin.replace('http://', `http://${username}:${password}@`);
  }

  get authorization(): string {
    return basicAuthorization(this.#credential);
  }

  get credential(): EmbeddedCouchCredential {
    return this.#credential;
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#stopping !== undefined) {
      this.#logger.info({ pid: this.pid, code, signal }, 'embedded store stopped');
      return;
    }
    this.#crashed = true;
    this.#logger.error({ pid: this.pid, code, signal }, 'embedded store exited unexpectedly');
    this.emit('crash', { code, signal });
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#crashed) return;
    const child = this.#child;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => {
        this.#logger.warn({ pid: this.pid }, 'embedded store did not stop in time; killing it');
        child.kill('SIGKILL');
      }, this.#stopTimeoutMs);
      try {
        await this.#exited;
      } finally {
        clearTimeout(killTimer);
      }
    }
  }
}

/**
 * Starts the embedded CouchDB-compatible store (express-pouchdb over PouchDB/LevelDB) as a
 * supervised child process bound to a loopback address, and resolves once it answers HTTP.
 * The store refuses (401) every request without `credential` (default: a fresh random one), so
 * other local accounts, which can all reach a loopback port, cannot read or write it.
 *
 * The child exits when this process exits or dies. A later unexpected exit is reported through
 * the `crash` event and {@link EmbeddedCouch.crashed}.
 *
 * @throws `INPUT_INVALID` when an option is malformed or `host` is not a loopback address.
 * @throws `STORE_START_FAILED` when the data directory cannot be created or used (not writable,
 *   locked by another store), the port cannot be bound, or the store does not answer within
 *   `startTimeoutMs`; no child process is left behind.
 */
export async function startEmbeddedCouch(options: StartEmbeddedCouchOptions): Promise<EmbeddedCouch> {
  if (typeof options.dataDir !== 'string' || options.dataDir.trim() === '') {
    throw invalid('"dataDir" must be a non-empty path');
  }
  const requestedHost = options.host ?? DEFAULT_HOST;
  const host = loopbackAddress(requestedHost);
  if (host === undefined) {
    // Plain HTTP: the credential must never cross a network.
    throw invalid(`"host" must be a loopback address such as 127.0.0.1, got "${requestedHost}": the store speaks plain HTTP`);
  }
  const requestedPort = options.port ?? 0;
  if (!Number.isSafeInteger(requestedPort) || requestedPort < 0 || requestedPort > 65_535) {
    throw invalid('"port" must be an integer from 0 to 65535');
  }
  const startTimeoutMs = positiveInt(options.startTimeoutMs, 'startTimeoutMs', DEFAULT_START_TIMEOUT_MS);
  const stopTimeoutMs = positiveInt(options.stopTimeoutMs, 'stopTimeoutMs', DEFAULT_STOP_TIMEOUT_MS);
  const logger = options.logger ?? silentLogger;
  const credential = credentialFrom(options.credential);
  const dataDir = resolve(options.dataDir);

  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    makePrivate(dataDir);
  } catch (err) {
    throw startFailed(`cannot create data directory ${dataDir} or make it private: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const script = childScriptPath();
  if (!existsSync(script)) {
    throw startFailed(`${script} is missing; build @fieldvault/couch-embedded first`);
  }

  const started = Date.now();
  const config: ChildConfig = { dataDir, host, port: requestedPort };
  const child = fork(script, [JSON.stringify(config)], {
    // Anything the store writes outside its databases lands in dataDir, never in our cwd.
    cwd: dataDir,
    // The child is plain JS: don't pass on TypeScript loaders or inspector flags.
    execArgv: [],
    // stdin carries the credential (see child-protocol.ts): never argv, never the environment.
    stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
  // A child that dies at once closes the pipe under us: its exit is reported below, not as EPIPE.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(JSON.stringify(credential satisfies ChildCredential));

  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once('exit', () => done());
  });
  // The parent exiting normally (or via process.exit) takes the store down with it; the child
  // also watches the IPC channel for the cases where this hook cannot run (kill -9).
  const onParentExit = (): void => {
    child.kill('SIGTERM');
  };
  process.once('exit', onParentExit);
  void exited.then(() => process.off('exit', onParentExit));

  const stderrTail: string[] = [];
  const childPid = child.pid;
  if (child.stdout) {
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
      logger.info({ pid: childPid, stream: 'stdout' }, line);
    });
  }
  if (child.stderr) {
    createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
      logger.warn({ pid: childPid, stream: 'stderr' }, line);
    });
  }

  const abort = async (detail: string, cause?: unknown): Promise<never> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    // A reason the child reported itself is precise; otherwise its last output explains most.
    const tail = stderrTail.length > 0 && !(cause instanceof ChildReportedError) ? `; store output: ${stderrTail.join(' | ')}` : '';
    logger.error({ pid: childPid, dataDir }, `embedded store failed to start: ${detail}`);
    throw startFailed(`${detail}${tail}`, cause);
  };

  let port: number;
  try {
    port = await new Promise<number>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`the store did not start within startTimeoutMs (${startTimeoutMs} ms)`)), startTimeoutMs);
      const settle = (): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      const onMessage = (message: unknown): void => {
        const msg = message as ChildMessage;
        settle();
        if (msg.type === 'ready') done(msg.port);
        else fail(new ChildReportedError(msg.reason));
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        settle();
        fail(new Error(`store process exited during start (code ${code}, signal ${signal})`));
      };
      const onError = (err: Error): void => {
        settle();
        fail(err);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.once('error', onError);
    });
  } catch (err) {
    return abort(err instanceof Error ? err.message : String(err), err);
  }

  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const remaining = startTimeoutMs - (Date.now() - started);
  if (remaining <= 0 || !(await answersWelcome(origin, basicAuthorization(credential), remaining))) {
    return abort(`store at ${origin} did not answer GET / with the welcome document`);
  }
  if (child.pid === undefined) return abort('store process has no pid');

  logger.info({ pid: child.pid, origin, dataDir, ms: Date.now() - started }, 'embedded store started');
  // After start, an unexpected exit is a crash: keep the child's output flowing to the logger
  // but stop holding the start-up error listener.
  child.on('error', (err) => logger.error({ pid: childPid, err: err.message }, 'embedded store process error'));
  return new EmbeddedCouchProcess({
    child: child as ChildProcess & { pid: number },
    exited,
    origin,
    credential,
    port,
    dataDir,
    stopTimeoutMs,
    logger,
  });
}
