// Test helpers: the BUILT admin CLI run as a child process against a real fieldvault server
// process (packages/test-support's launcher: apps/server/dist/main.js on a temporary data
// directory, embedded store, self-signed TLS, admin TOTP required as in production). Both are
// spawned by path: the root `npm test` builds every package first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Secret, TOTP } from 'otpauth';
import type { DeviceKeyPair } from '@fieldvault/crypto';
import { join } from 'node:path';
import type { ChildRecord } from '@fieldvault/protocol';
import { launchServerProcess } from '@fieldvault/test-support';

export const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export const ADMIN_PASSWORD = 'correct horse battery staple rooftop';
export const STEP_MS = 30_000;

/** The TOTP code of `secret` (base32) at `ms`, computed independently of the server (otpauth). */
export function totp(secret: string, ms = Date.now()): string {
  return new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) }).generate({ timestamp: ms });
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(home: string, args: readonly string[], feed: (child: ChildProcess, stderr: () => string) => void): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build apps/admin first (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--home', home, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: home },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    feed(child, () => stderr);
  });
}

/** `fieldvault-admin --home <home> [--stdin] ...args` with these answer lines on stdin. */
export function cli(home: string, args: readonly string[], lines: readonly string[] = []): Promise<CliResult> {
  return run(home, lines.length > 0 ? ['--stdin', ...args] : args, (child) => child.stdin?.end(lines.map((l) => `${l}\n`).join('')));
}

/**
 * A command that enrols TOTP: `before` lines are written at once; once the CLI prints the secret
 * (stderr), `after(secret)` gives the remaining lines (the first code).
 */
export function cliEnrolling(home: string, args: readonly string[], before: readonly string[], after: (secret: string) => readonly string[]): Promise<CliResult & { secret: string }> {
  let secret = '';
  return run(home, ['--stdin', ...args], (child, stderr) => {
    child.stdin?.write(before.map((l) => `${l}\n`).join(''));
    const timer = setInterval(() => {
      const m = /secret:\s+([A-Z2-7]+)/.exec(stderr());
      if (m?.[1] !== undefined) {
        clearInterval(timer);
        secret = m[1];
        child.stdin?.end(after(secret).map((l) => `${l}\n`).join(''));
      }
    }, 20);
    child.on('close', () => {
      clearInterval(timer);
      child.stdin?.destroy();
    });
  }).then((r) => ({ ...r, secret }));
}

/** Parses stdout of a --json command (fails the test with the output when it is not JSON). */
export function json<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${String(r.code)}):\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  }
}

/** The catalogued code of a failed --json command. */
export function errorCode(r: CliResult): string | undefined {
  try {
    return (JSON.parse(r.stderr.trim().split('\n').at(-1) ?? '') as { error: { code: string } }).error.code;
  } catch {
    return /error ([A-Z_]+):/.exec(r.stderr)?.[1];
  }
}

export interface ServerProcess {
  readonly url: string;
  readonly fingerprint: string;
  readonly certFile: string;
  readonly setupToken: string;
  /** A plain HTTPS call trusting this server's certificate. */
  call(method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** A phone's login (challenge + Ed25519 signature) of a field user; returns the session token. `keys`: another device key (a wiped phone). */
  deviceLogin(username: string, password: string, imei: string, keys?: DeviceKeyPair): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/**
 * A fresh server with no admin yet (the tests make the first one through the CLI, enrolling
 * TOTP): the shared launcher of packages/test-support with production settings, admin TOTP
 * required. One start attempt, so that a start meant to fail (an insecure secret file) fails at once.
 */
export async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await launchServerProcess(dataDir, env['FIELDVAULT_SERVER_ID'] ?? 'srv-admin-cli', { env, startAttempts: 1 });
  if (server.setupToken === null) {
    await server.stop();
    throw new Error(`server on ${dataDir} printed no setup token: it already has an admin`);
  }
  return {
    url: server.url,
    fingerprint: server.fingerprint,
    certFile: server.certFile,
    setupToken: server.setupToken,
    call: (method, path, body, token) => server.call(method, path, body, token === undefined ? {} : { authorization: `Bearer ${token}` }),
    deviceLogin: (username, password, imei, keys) => server.deviceLogin(username, password, imei, keys),
    stop: () => server.stop(),
  };
}

/** Two field workers of the records tests, each on their own phone. */
export const AMINA = { name: 'amina', password: 'amber lantern over quiet harbour', imei: '490154203237518' } as const;
export const BARAKA = { name: 'baraka', password: 'copper kettle under morning rain', imei: '356938035643809' } as const;

/** A server with its first admin (an admin home logged in to it) and device sessions of AMINA and BARAKA. */
export interface RecordsServer {
  readonly server: ServerProcess;
  readonly home: string;
  readonly tokens: Readonly<Record<string, string>>;
}

/**
 * Starts a server under `dir/name`, makes its first admin through the CLI (admin home
 * `dir/home-name`), adds AMINA and BARAKA, sets their passwords and logs each in from their phone.
 */
export async function recordsServer(dir: string, name: string, env: Record<string, string> = {}): Promise<RecordsServer> {
  const server = await startServer(join(dir, name), env);
  const home = join(dir, `home-${name}`);
  try {
    const init = await cliEnrolling(home, ['--json', 'init', '--server', server.url, '--ca', server.certFile], [server.setupToken, ADMIN_PASSWORD], (s) => [totp(s)]);
    if (init.code !== 0) throw new Error(init.stderr);
    const tokens: Record<string, string> = {};
    for (const u of [AMINA, BARAKA]) {
      const added = json<{ invitation: { token: string } }>(await cli(home, ['--json', 'users', 'add', u.name, '--role', 'field_worker']));
      await server.call('POST', '/v1/auth/password', { resetToken: added.invitation.token, password: u.password });
      const login = await server.deviceLogin(u.name, u.password, u.imei);
      if (login.status !== 200) throw new Error(JSON.stringify(login.body));
      tokens[u.name] = login.body['token'] as string;
    }
    return { server, home, tokens };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** Pushes `records` as `user`'s phone; throws unless every one is stored. */
export async function pushAs(s: RecordsServer, user: string, records: readonly ChildRecord[]): Promise<void> {
  const res = await s.server.call('POST', '/v1/sync/push', { records }, s.tokens[user]);
  const failed = (res.body['results'] as Array<{ status: string }> | undefined)?.filter((r) => r.status === 'error') ?? [];
  if (res.status !== 200 || failed.length > 0) throw new Error(`push: ${res.status} ${JSON.stringify(res.body)}`);
}
