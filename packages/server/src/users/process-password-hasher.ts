import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FieldvaultError } from '@fieldvault/protocol';
import type { HasherChildOp, HasherChildRequest, HasherChildResponse } from './hasher-child-protocol.js';
import { createPasswordHasher, type Argon2Params, type PasswordHasher } from './password-hasher.js';

/** The few logger methods the hasher uses (Fastify's pino logger fits). */
export interface HasherLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ProcessPasswordHasherOptions {
  /** `nice` increment of the child (0..19); applied only when `nice` is on PATH. */
  readonly niceness: number;
  readonly logger?: HasherLogger;
}

/** A `PasswordHasher` whose Argon2id work runs in one long-lived, lower-priority child process. */
export interface ProcessPasswordHasher extends PasswordHasher {
  /** The running child's pid, undefined before first use and after it died or was closed. */
  readonly pid: number | undefined;
  /** Stops the child; later calls reject with INTERNAL_ERROR. */
  close(): Promise<void>;
}

/**
 * The child script is always the compiled one: it runs under plain `node`. Resolving
 * `../../dist/users/hasher-child.js` from this module works both from `dist/` and from `src/` (tests).
 */
function childScriptPath(): string {
  return fileURLToPath(new URL('../../dist/users/hasher-child.js', import.meta.url));
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

interface Pending {
  resolve(value: string | boolean | null): void;
  reject(err: Error): void;
}

/**
 * Runs hash / verify / verifyDummy in one child process started lazily (on first use) as
 * `nice -n <niceness> node hasher-child.js`. Linux priorities are per thread and the threads of a
 * Node process exist before its code runs, so the priority must be set by `nice` at exec time:
 * then the libuv threads doing Argon2id yield the CPU to the server's event loop and the store.
 *
 * A child that dies fails its requests in flight with INTERNAL_ERROR; the next call starts a new
 * one. The child is unreferenced while idle, so it never keeps the server process alive.
 */
/**
 * What the hasher child may see of the server's environment. It reads none of it itself (its
 * settings come as an argument), so it gets only what Node and libuv use: the server's
 * environment can hold secrets (a `COUCHDB_URL` with its password, secrets audit s15 F4) that a
 * process hashing untrusted input has no use for. NODE_OPTIONS is left out too: it may carry a
 * TypeScript loader or test-runner hooks, and the child is plain JS.
 */
const CHILD_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ', 'UV_THREADPOOL_SIZE', 'SYSTEMROOT'] as const;

/** The allow-listed part of `env` (see {@link CHILD_ENV}). */
export function childEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = {};
  for (const name of CHILD_ENV) if (env[name] !== undefined) kept[name] = env[name];
  return kept;
}

export function createProcessPasswordHasher(params: Argon2Params, options: ProcessPasswordHasherOptions): ProcessPasswordHasher {
  const local = createPasswordHasher(params);
  const pending = new Map<number, Pending>();
  let child: ChildProcess | undefined;
  let nextId = 1;
  let closed = false;

  function setRef(c: ChildProcess, on: boolean): void {
    if (on) {
      c.ref();
      c.channel?.ref();
    } else {
      c.unref();
      c.channel?.unref();
    }
  }

  function failPending(): void {
    const all = [...pending.values()];
    pending.clear();
    for (const p of all) p.reject(new FieldvaultError('INTERNAL_ERROR'));
  }

  function start(): ChildProcess {
    const script = childScriptPath();
    const nice = findOnPath('nice');
    const args = [script, JSON.stringify({ memoryKiB: params.memoryKiB, timeCost: params.timeCost, parallelism: params.parallelism })];
    const env = childEnvironment(process.env);
    const spawnOptions: SpawnOptions = { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env, serialization: 'json' };
    const c: ChildProcess =
      nice === undefined
        ? spawn(process.execPath, args, spawnOptions)
        : spawn(nice, ['-n', String(options.niceness), process.execPath, ...args], spawnOptions);
    options.logger?.debug(
      { pid: c.pid, niceness: nice === undefined ? 0 : options.niceness, nice: nice !== undefined },
      nice === undefined ? 'password hasher process started without nice (not on PATH)' : 'password hasher process started under nice',
    );
    c.on('message', (msg: HasherChildResponse) => {
      const p = pending.get(msg.id);
      if (p === undefined) return;
      pending.delete(msg.id);
      if (pending.size === 0) setRef(c, false);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new FieldvaultError('INTERNAL_ERROR'));
    });
    const gone = (): void => {
      if (child !== c) return;
      child = undefined;
      failPending();
    };
    c.on('exit', (code, signal) => {
      if (!closed) options.logger?.warn({ pid: c.pid, code, signal }, 'password hasher process exited; it is restarted on next use');
      gone();
    });
    c.on('error', (err) => {
      options.logger?.warn({ code: (err as NodeJS.ErrnoException).code }, 'password hasher process failed');
      c.kill('SIGKILL');
      gone();
    });
    setRef(c, false);
    return c;
  }

  function call(req: HasherChildOp): Promise<string | boolean | null> {
    if (closed) return Promise.reject(new FieldvaultError('INTERNAL_ERROR', { detail: 'password hasher is closed' }));
    child ??= start();
    const c = child;
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      setRef(c, true);
      c.send({ ...req, id } as HasherChildRequest, (err) => {
        if (err == null || !pending.has(id)) return;
        pending.delete(id);
        if (pending.size === 0) setRef(c, false);
        reject(new FieldvaultError('INTERNAL_ERROR'));
      });
    });
  }

  return {
    get pid() {
      return child?.pid;
    },
    async hash(password) {
      return (await call({ op: 'hash', password })) as string;
    },
    async verify(digest, password) {
      return (await call({ op: 'verify', digest, password })) as boolean;
    },
    async verifyDummy(password) {
      await call({ op: 'verifyDummy', password });
    },
    // Parsing a PHC string is cheap and runs no Argon2: no need for the child.
    needsRehash: (digest) => local.needsRehash(digest),
    async close() {
      closed = true;
      const c = child;
      if (c === undefined) return;
      await new Promise<void>((done) => {
        if (c.exitCode !== null || c.signalCode !== null) return done();
        c.once('exit', () => done());
        // Held while it stops, or a caller awaiting close() could see its process exit first.
        setRef(c, true);
        c.kill('SIGTERM');
      });
      child = undefined;
      failPending();
    },
  };
}
