// Real fieldvault servers for the online tests: `apps/server/dist/main.js` as a child process on
// a temporary data directory (embedded store, self-signed TLS), plus a small admin client.
// Spawned by path (no dependency on the app package, which would make every test package depend
// on the server's build graph): the root `npm test` builds every package before any test runs.
// Shared by packages/storage-sqlcipher, apps/field and packages/scenarios (was duplicated).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHttpTransport, type HttpTransport, type HttpTransportOptions } from '@fieldvault/client';
import { generateDeviceKeyPair, signDevice, toBase64 } from '@fieldvault/crypto';
import { loginSignatureMessage, type ChildRecord, type KeyRecord } from '@fieldvault/protocol';

// dist/server-process.js → <root>/apps/server/dist/main.js
const MAIN = fileURLToPath(new URL('../../../apps/server/dist/main.js', import.meta.url));

export const ADMIN_PASSWORD = 'correct horse battery staple rooftop';

/** An admin action on a device (`blacklist`: stolen; `retire`: final sync, then wipe; `rekey`: a new key). */
export type DeviceAction = 'blacklist' | 'retire' | 'reinstate' | 'rekey' | 'unbind';

export interface ServerProcess {
  readonly serverId: string;
  /** The server's data directory (embedded store, secrets, TLS). */
  readonly dataDir: string;
  readonly url: string;
  /** The HTTPS port (a restart listens on the same one). */
  readonly port: number;
  readonly pid: number;
  /** What the server printed so far (stdout and stderr; its log level is warn): for failure reports. */
  output(): string;
  /** SHA-256 certificate fingerprint as the server prints it (`AB:CD:…`). */
  readonly fingerprint: string;
  /** The self-signed certificate (PEM), usable as the CA of this server. */
  readonly certPem: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** A transport trusting this server by its pinned certificate. */
  transport(extra?: Partial<HttpTransportOptions>): HttpTransport;
  /** An admin API call with the admin's session; returns status and JSON body. */
  admin(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
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
  /** A plain HTTPS call trusting this server's certificate (no session). */
  call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  /** Stops the server cleanly (SIGINT). */
  stop(): Promise<void>;
  /** kill -9 of the server process; resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same data directory and port (after `kill` or `stop`). */
  restart(): Promise<ServerProcess>;
}

export interface ServerProcessOptions {
  /** Extra FIELDVAULT_* settings (rate limits…). */
  readonly env?: Readonly<Record<string, string>>;
  /** HTTPS port; default a random free one. */
  readonly port?: number;
}

function request(
  url: string,
  ca: string,
  method: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
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

interface Launched {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
  readonly url: string;
  readonly fingerprint: string;
  readonly token: string | null;
}

async function launch(dataDir: string, serverId: string, options: ServerProcessOptions): Promise<Launched> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build apps/server first (npm test does)`);
  const child: ChildProcess = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env['PATH'] ?? '',
      FIELDVAULT_DATA_DIR: dataDir,
      FIELDVAULT_PORT: String(options.port ?? 0),
      FIELDVAULT_HTTP_PORT: 'off',
      FIELDVAULT_SERVER_ID: serverId,
      FIELDVAULT_LOG_LEVEL: 'warn',
      // The fixture's admin logs in from a device with its password alone; admin TOTP is
      // covered by packages/server/test/admin-totp.test.ts and apps/admin's tests.
      FIELDVAULT_ADMIN_TOTP: 'optional',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = await new Promise<{ url: string; fingerprint: string; token: string | null }>((resolve, reject) => {
    const timer = setInterval(() => {
      const url = /listening on (https:\/\/\S+)/.exec(out)?.[1];
      const fingerprint = /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(out)?.[1];
      const token = /setup token:\s+(\S+)/.exec(out)?.[1] ?? null;
      if (url !== undefined && fingerprint !== undefined && /Ctrl-C/.test(out)) {
        clearInterval(timer);
        resolve({ url, fingerprint, token });
      }
    }, 25);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`server exited with ${String(code)}: ${out}`));
    });
  });
  return { child, exited, output: () => out, ...started };
}

/**
 * Starts `apps/server` on `dataDir` (HTTPS on a loopback port, no HTTP redirect), creates the
 * first admin with the printed setup token (first start only) and logs the admin in from its own
 * device key.
 */
export async function startServerProcess(
  dataDir: string,
  serverId: string,
  options: ServerProcessOptions = {},
  adminKeys = generateDeviceKeyPair(),
): Promise<ServerProcess> {
  let launched: Launched | undefined;
  // After a kill -9 the store of the dead server may still hold its data directory for a moment.
  for (let attempt = 1; launched === undefined; attempt++) {
    try {
      launched = await launch(dataDir, serverId, options);
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const { child, exited, output, url, fingerprint, token: setupToken } = launched;
  const port = Number(new URL(url).port);
  const certFile = join(dataDir, 'tls', 'dev-cert.pem');
  const certPem = readFileSync(certFile, 'utf8');
  const call: ServerProcess['call'] = (method, path, body, headers = {}) => request(`${url}${path}`, certPem, method, body, headers);
  const transport = (extra: Partial<HttpTransportOptions> = {}): HttpTransport =>
    createHttpTransport({ baseUrl: url, serverId, tls: { pinSha256: fingerprint }, timeoutMs: 30_000, ...extra });

  if (setupToken !== null) {
    const setup = await call('POST', '/v1/setup/admin', { setupToken, username: 'admin', password: ADMIN_PASSWORD });
    if (setup.status !== 201) throw new Error(`setup failed: ${JSON.stringify(setup.body)}`);
  }
  // The admin logs in from their own device (its own IMEI and key pair), like any user.
  const adminImei = '100000000000001';
  const t = transport();
  const { challenge } = await t.challenge({ imei: adminImei });
  const { token } = await t.login({
    username: 'admin',
    password: ADMIN_PASSWORD,
    imei: adminImei,
    devicePublicKey: toBase64(adminKeys.publicKey),
    challenge,
    signature: toBase64(signDevice(adminKeys.privateKey, loginSignatureMessage({ challenge, username: 'admin', imei: adminImei, keyId: '' }))),
  });
  const admin: ServerProcess['admin'] = (method, path, body) => call(method, path, body, { authorization: `Bearer ${token}` });

  return {
    serverId,
    dataDir,
    url,
    port,
    pid: child.pid ?? 0,
    output,
    fingerprint,
    certPem,
    certFile,
    keyFile: join(dataDir, 'tls', 'dev-key.pem'),
    transport,
    admin,
    call,
    async createUser(username, password, role = 'field_worker') {
      const made = await admin('POST', '/v1/users', { username, role });
      if (made.status !== 201) throw new Error(`create user failed: ${JSON.stringify(made.body)}`);
      const invitation = made.body['invitation'] as { token: string };
      const set = await call('POST', '/v1/auth/password', { resetToken: invitation.token, password });
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
    async kill() {
      // The embedded store (a child of the server) outlives a kill -9 of its parent for a moment,
      // holding the data directory's lock: wait until it has noticed and exited, so that a
      // restart does not race it.
      const store = childPids(child.pid);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await waitGone(store);
    },
    async stop() {
      const store = childPids(child.pid);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
      await waitGone(store);
    },
    restart() {
      return startServerProcess(dataDir, serverId, { ...options, port }, adminKeys);
    },
  };
}
