// Real fieldvault servers for the online tests and the benches: `apps/server/dist/main.js` as a
// child process on a given data directory (embedded store or COUCHDB_URL, self-signed TLS).
// `launchServerProcess` is the bare process (what a fresh install prints: URL, fingerprint, setup
// token); `startServerProcess` adds the first admin and a small admin client on top.
// Spawned by path (no dependency on the app package, which would make every test package depend
// on the server's build graph): the root `npm test` and `npm run bench` build every package first.
// The one launcher of packages/storage-sqlcipher, apps/field, apps/admin, packages/scenarios,
// packages/load and packages/bench-sync (each used to have its own copy).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHttpTransport, type HttpTransport, type HttpTransportOptions } from '@fieldvault/client';
import { generateDeviceKeyPair, signDevice, toBase64, type DeviceKeyPair } from '@fieldvault/crypto';
import { loginSignatureMessage, type ChildRecord, type KeyRecord } from '@fieldvault/protocol';

// dist/server-process.js → <root>/apps/server/dist/main.js
const MAIN = fileURLToPath(new URL('../../../apps/server/dist/main.js', import.meta.url));

export const ADMIN_PASSWORD = 'correct horse battery staple rooftop';

/** An admin action on a device (`blacklist`: stolen; `retire`: final sync, then wipe; `rekey`: a new key). */
export type DeviceAction = 'blacklist' | 'retire' | 'reinstate' | 'rekey' | 'unbind';

/** A plain HTTPS answer: status and JSON body (`{}` when empty). */
export interface HttpAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** The bare server process, as a fresh install runs it: no admin yet unless an earlier start made one. */
export interface LaunchedServer {
  readonly serverId: string;
  /** The server's data directory (embedded store, secrets, TLS). */
  readonly dataDir: string;
  readonly url: string;
  /** The HTTPS port (a restart listens on the same one). */
  readonly port: number;
  readonly pid: number;
  /** What the server printed so far (stdout and stderr, or stderr alone with `logFile`): for failure reports. */
  output(): string;
  /** SHA-256 certificate fingerprint as the server prints it (`AB:CD:…`). */
  readonly fingerprint: string;
  /** The self-signed certificate (PEM), usable as the CA of this server. */
  readonly certPem: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The one-time setup token (first start only, read from its 0600 file, which the banner names; `null` once an admin exists). */
  readonly setupToken: string | null;
  /** A transport trusting this server by its pinned certificate. */
  transport(extra?: Partial<HttpTransportOptions>): HttpTransport;
  /** A plain HTTPS call trusting this server's certificate (no session unless given in `headers`). */
  call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpAnswer>;
  /**
   * A phone's login: challenge, then the login signed by the device key of `imei` (`keys`, else
   * one key pair per IMEI made on its first login, so that it binds like a phone). The raw answer.
   */
  deviceLogin(username: string, password: string, imei: string, keys?: DeviceKeyPair): Promise<HttpAnswer>;
  /** Stops the server cleanly (SIGINT; SIGKILL if it has not exited after 30 s). */
  stop(): Promise<void>;
  /** kill -9 of the server process; resolves once it is gone. */
  kill(): Promise<void>;
}

/** The server with its first admin logged in (password only: the fixture sets admin TOTP to optional). */
export interface ServerProcess extends LaunchedServer {
  /** An admin API call with the admin's session; returns status and JSON body. */
  admin(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer>;
  /** Creates a user with this password and role (default field worker; invitation redeemed as the user would). */
  createUser(username: string, password: string, role?: 'field_worker' | 'supervisor' | 'admin'): Promise<void>;
  /** An admin action on a device; resolves to the server's device view after it. */
  deviceAction(imei: string, action: DeviceAction, reason?: string): Promise<Record<string, unknown>>;
  /** The key record this server holds for an IMEI (`null` before one was issued). */
  deviceKey(imei: string): Promise<KeyRecord | null>;
  /** The server's device view (status, key, usersSeen…), or undefined when it never saw the IMEI. */
  device(imei: string): Promise<Record<string, unknown> | undefined>;
  /** Every record the server holds, read through the sync API with the admin's session (from the start). */
  records(): Promise<ChildRecord[]>;
  /** Starts the server again on the same data directory and port (after `kill` or `stop`). */
  restart(): Promise<ServerProcess>;
}

export interface LaunchOptions {
  /** Extra environment (FIELDVAULT_* settings, COUCHDB_URL…); overrides the fixture's own. */
  readonly env?: Readonly<Record<string, string>>;
  /** HTTPS port; default a random free one. */
  readonly port?: number;
  /** Extra `node` flags for the server (e.g. `--cpu-prof --cpu-prof-dir=…` to profile it). */
  readonly nodeArgs?: readonly string[];
  /**
   * Append the server's stdout (its request log) to this file instead of keeping it in memory:
   * for long runs at log level info, whose log nobody should have to drain through a pipe.
   */
  readonly logFile?: string;
  /**
   * Starts tried before giving up (default 20, 250 ms apart): after a kill -9 the dead server's
   * store may hold the data directory for a moment. 1 for a test that expects the start to fail.
   */
  readonly startAttempts?: number;
  /** A start that has not printed its banner by then is killed and fails (default 120 s). */
  readonly startTimeoutMs?: number;
}

export interface ServerProcessOptions extends LaunchOptions {
  /** The first admin's password (default `ADMIN_PASSWORD`). */
  readonly adminPassword?: string;
}

function request(
  url: string,
  ca: string,
  method: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpsRequest(
      url,
      { method, ca, agent: false, headers: { ...headers, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The child process ids of `pid` (Linux /proc; empty elsewhere or when it is gone). */
function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((x) => x !== '')
      .map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (at most ~30 s) until none of `pids` runs; SIGKILLs what is left after that. */
async function waitGone(pids: readonly number[]): Promise<void> {
  for (let i = 0; i < 300 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
}

interface Spawned {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
  readonly url: string;
  readonly fingerprint: string;
  readonly setupToken: string | null;
}

async function spawnOnce(dataDir: string, serverId: string, options: LaunchOptions): Promise<Spawned> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build apps/server first (npm test does)`);
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), MAIN], {
    env: {
      PATH: process.env['PATH'] ?? '',
      FIELDVAULT_DATA_DIR: dataDir,
      FIELDVAULT_PORT: String(options.port ?? 0),
      FIELDVAULT_HTTP_PORT: 'off',
      FIELDVAULT_SERVER_ID: serverId,
      FIELDVAULT_LOG_LEVEL: 'warn',
      ...options.env,
    },
    // The start-up banner is on stderr, so it is read from the pipe either way.
    stdio: ['ignore', logFd ?? 'pipe', 'pipe'],
  });
  if (logFd !== undefined) closeSync(logFd);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const timeoutMs = options.startTimeoutMs ?? 120_000;
  try {
    const started = await new Promise<{ url: string; fingerprint: string; setupToken: string | null }>((resolve, reject) => {
      const timer = setInterval(() => {
        const url = /listening on (https:\/\/\S+)/.exec(out)?.[1];
        const fingerprint = /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(out)?.[1];
        if (url !== undefined && fingerprint !== undefined && /Ctrl-C/.test(out)) {
          clearInterval(timer);
          clearTimeout(timeout);
          // Its output is a pipe, so the server names the token's file instead of printing the token.
          const setupToken = /No admin exists yet/.test(out) ? readFileSync(join(dataDir, 'secrets', 'setup-token'), 'utf8').trim() : null;
          resolve({ url, fingerprint, setupToken });
        }
      }, 25);
      const timeout = setTimeout(() => {
        clearInterval(timer);
        reject(new Error(`server ${serverId} did not start within ${timeoutMs / 1000} s: ${out.slice(-2000)}`));
      }, timeoutMs);
      void exited.then((code) => {
        clearInterval(timer);
        clearTimeout(timeout);
        reject(new Error(`server exited with ${String(code)}: ${out}`));
      });
    });
    return { child, exited, output: () => out, ...started };
  } catch (err) {
    // A server that failed to start must not outlive its test or bench.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    throw err;
  }
}

/**
 * Starts `apps/server` on `dataDir` (HTTPS on a loopback port, no HTTP redirect, log level warn,
 * production settings otherwise — admin TOTP required) and returns once it listens. Creates no
 * admin: `setupToken` is what the server printed for that.
 */
export async function launchServerProcess(dataDir: string, serverId: string, options: LaunchOptions = {}): Promise<LaunchedServer> {
  const attempts = options.startAttempts ?? 20;
  let spawned: Spawned | undefined;
  for (let attempt = 1; spawned === undefined; attempt++) {
    try {
      spawned = await spawnOnce(dataDir, serverId, options);
    } catch (err) {
      if (attempt >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const { child, exited, output, url, fingerprint, setupToken } = spawned;
  const certFile = join(dataDir, 'tls', 'dev-cert.pem');
  const certPem = readFileSync(certFile, 'utf8');
  const call: LaunchedServer['call'] = (method, path, body, headers = {}) => request(`${url}${path}`, certPem, method, body, headers);
  // One key pair per IMEI, like a phone: its first login binds it.
  const deviceKeys = new Map<string, DeviceKeyPair>();
  const stopWith = async (signal: 'SIGINT' | 'SIGKILL'): Promise<void> => {
    // The embedded store (a child of the server) outlives a kill -9 of its parent for a moment,
    // holding the data directory's lock: wait until it has noticed and exited, so that a
    // restart does not race it.
    const store = childPids(child.pid);
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(killer);
    await waitGone(store);
  };
  return {
    serverId,
    dataDir,
    url,
    port: Number(new URL(url).port),
    pid: child.pid ?? 0,
    output,
    fingerprint,
    certPem,
    certFile,
    keyFile: join(dataDir, 'tls', 'dev-key.pem'),
    setupToken,
    transport: (extra = {}) => createHttpTransport({ baseUrl: url, serverId, tls: { pinSha256: fingerprint }, timeoutMs: 30_000, ...extra }),
    call,
    async deviceLogin(username, password, imei, keys) {
      let pair = keys ?? deviceKeys.get(imei);
      if (pair === undefined) {
        pair = generateDeviceKeyPair();
        deviceKeys.set(imei, pair);
      }
      const ch = await call('POST', '/v1/auth/challenge', { imei });
      if (ch.status !== 200) return ch;
      const challenge = ch.body['challenge'] as string;
      return call('POST', '/v1/auth/login', {
        username,
        password,
        imei,
        devicePublicKey: toBase64(pair.publicKey),
        challenge,
        signature: toBase64(signDevice(pair.privateKey, loginSignatureMessage({ challenge, username, imei, keyId: '' }))),
      });
    },
    stop: () => stopWith('SIGINT'),
    kill: () => stopWith('SIGKILL'),
  };
}

/**
 * Starts `apps/server` on `dataDir` (as `launchServerProcess`, with admin TOTP optional), creates
 * the first admin with the printed setup token (first start only) and logs the admin in from its
 * own device key.
 */
export async function startServerProcess(
  dataDir: string,
  serverId: string,
  options: ServerProcessOptions = {},
  adminKeys = generateDeviceKeyPair(),
): Promise<ServerProcess> {
  const server = await launchServerProcess(dataDir, serverId, {
    ...options,
    // The fixture's admin logs in from a device with its password alone; admin TOTP is
    // covered by packages/server/test/admin-totp.test.ts and apps/admin's tests.
    env: { FIELDVAULT_ADMIN_TOTP: 'optional', ...options.env },
  });
  const { call } = server;
  const password = options.adminPassword ?? ADMIN_PASSWORD;
  let token: string;
  try {
    if (server.setupToken !== null) {
      const setup = await call('POST', '/v1/setup/admin', { setupToken: server.setupToken, username: 'admin', password });
      if (setup.status !== 201) throw new Error(`setup failed: ${JSON.stringify(setup.body)}`);
    }
    // The admin logs in from their own device (its own IMEI and key pair), like any user.
    const login = await server.deviceLogin('admin', password, '100000000000001', adminKeys);
    if (login.status !== 200) throw new Error(`admin login failed: ${JSON.stringify(login.body)}`);
    token = login.body['token'] as string;
  } catch (err) {
    await server.kill();
    throw err;
  }
  const admin: ServerProcess['admin'] = (method, path, body) => call(method, path, body, { authorization: `Bearer ${token}` });

  return {
    ...server,
    admin,
    async createUser(username, userPassword, role = 'field_worker') {
      const made = await admin('POST', '/v1/users', { username, role });
      if (made.status !== 201) throw new Error(`create user failed: ${JSON.stringify(made.body)}`);
      const invitation = made.body['invitation'] as { token: string };
      const set = await call('POST', '/v1/auth/password', { resetToken: invitation.token, password: userPassword });
      if (set.status !== 200) throw new Error(`set password failed: ${JSON.stringify(set.body)}`);
    },
    async deviceAction(imei, action, reason = 'test') {
      const res = await admin('POST', `/v1/devices/${imei}/${action}`, { reason });
      if (res.status !== 200) throw new Error(`${action} failed: ${JSON.stringify(res.body)}`);
      return res.body['device'] as Record<string, unknown>;
    },
    async device(imei) {
      const res = await admin('GET', `/v1/devices/${imei}`);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw new Error(`device failed: ${JSON.stringify(res.body)}`);
      return res.body['device'] as Record<string, unknown>;
    },
    async deviceKey(imei) {
      const res = await admin('GET', `/v1/devices/${imei}`);
      if (res.status === 404) return null;
      return ((res.body['device'] as { key: KeyRecord | null }).key ?? null) as KeyRecord | null;
    },
    async records() {
      const out: ChildRecord[] = [];
      let since: string | undefined;
      for (;;) {
        const qs = new URLSearchParams({ limit: '1000', ...(since === undefined ? {} : { since }) });
        const res = await admin('GET', `/v1/sync/pull?${qs.toString()}`);
        if (res.status !== 200) throw new Error(`pull failed: ${JSON.stringify(res.body)}`);
        out.push(...(res.body['records'] as ChildRecord[]));
        since = res.body['checkpoint'] as string;
        if (res.body['more'] !== true) return out;
      }
    },
    restart() {
      return startServerProcess(dataDir, serverId, { ...options, port: server.port }, adminKeys);
    },
  };
}
