// Real fieldvault servers for the online tests: `apps/server/dist/main.js` as a child process on
// a temporary data directory (embedded store, self-signed TLS), plus a small admin client.
// Tests spawn it by path (no dependency on the app package): the root `npm test` builds every
// package before any test runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHttpTransport, type HttpTransport, type HttpTransportOptions } from '@fieldvault/client';
import { generateDeviceKeyPair, signDevice, toBase64 } from '@fieldvault/crypto';
import { loginSignatureMessage, type KeyRecord } from '@fieldvault/protocol';

const MAIN = fileURLToPath(new URL('../../../apps/server/dist/main.js', import.meta.url));

export const ADMIN_PASSWORD = 'correct horse battery staple rooftop';

export interface ServerProcess {
  readonly serverId: string;
  readonly url: string;
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
  /** Creates a field worker with this password (invitation redeemed as the user would). */
  createUser(username: string, password: string): Promise<void>;
  /** The key record this server holds for an IMEI (`null` before one was issued). */
  deviceKey(imei: string): Promise<KeyRecord | null>;
  /** The server's device view (status, key, usersSeen…), or undefined when it never saw the IMEI. */
  device(imei: string): Promise<Record<string, unknown> | undefined>;
  /** A plain HTTPS call trusting this server's certificate (no session). */
  call(method: 'GET' | 'POST', path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
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
      { method, ca, headers: { ...headers, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) } },
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

/**
 * Starts `apps/server` on `dataDir` (HTTPS on a random loopback port, no HTTP redirect), creates
 * the first admin with the printed setup token and logs the admin in from its own device key.
 */
export async function startServerProcess(dataDir: string, serverId: string): Promise<ServerProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build apps/server first (npm test does)`);
  const child: ChildProcess = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env['PATH'] ?? '',
      FIELDVAULT_DATA_DIR: dataDir,
      FIELDVAULT_PORT: '0',
      FIELDVAULT_HTTP_PORT: 'off',
      FIELDVAULT_SERVER_ID: serverId,
      FIELDVAULT_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const started = await new Promise<{ url: string; fingerprint: string; token: string }>((resolve, reject) => {
    const timer = setInterval(() => {
      const url = /listening on (https:\/\/\S+)/.exec(out)?.[1];
      const fingerprint = /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(out)?.[1];
      const token = /setup token:\s+(\S+)/.exec(out)?.[1];
      if (url !== undefined && fingerprint !== undefined && token !== undefined && /Ctrl-C/.test(out)) {
        clearInterval(timer);
        resolve({ url, fingerprint, token });
      }
    }, 25);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`server exited with ${String(code)}: ${out}`));
    });
  });
  const certFile = join(dataDir, 'tls', 'dev-cert.pem');
  const certPem = readFileSync(certFile, 'utf8');
  const call: ServerProcess['call'] = (method, path, body, headers = {}) => request(`${started.url}${path}`, certPem, method, body, headers);
  const transport = (extra: Partial<HttpTransportOptions> = {}): HttpTransport =>
    createHttpTransport({ baseUrl: started.url, serverId, tls: { pinSha256: started.fingerprint }, timeoutMs: 10_000, ...extra });

  const setup = await call('POST', '/v1/setup/admin', { setupToken: started.token, username: 'admin', password: ADMIN_PASSWORD });
  if (setup.status !== 201) throw new Error(`setup failed: ${JSON.stringify(setup.body)}`);
  // The admin logs in from their own device (its own IMEI and key pair), like any user.
  const adminImei = '100000000000001';
  const keys = generateDeviceKeyPair();
  const t = transport();
  const { challenge } = await t.challenge({ imei: adminImei });
  const { token } = await t.login({
    username: 'admin',
    password: ADMIN_PASSWORD,
    imei: adminImei,
    devicePublicKey: toBase64(keys.publicKey),
    challenge,
    signature: toBase64(signDevice(keys.privateKey, loginSignatureMessage({ challenge, username: 'admin', imei: adminImei, keyId: '' }))),
  });
  const admin: ServerProcess['admin'] = (method, path, body) => call(method, path, body, { authorization: `Bearer ${token}` });

  return {
    serverId,
    url: started.url,
    fingerprint: started.fingerprint,
    certPem,
    certFile,
    keyFile: join(dataDir, 'tls', 'dev-key.pem'),
    transport,
    admin,
    call,
    async createUser(username, password) {
      const made = await admin('POST', '/v1/users', { username, role: 'field_worker' });
      if (made.status !== 201) throw new Error(`create user failed: ${JSON.stringify(made.body)}`);
      const invitation = made.body['invitation'] as { token: string };
      const set = await call('POST', '/v1/auth/password', { resetToken: invitation.token, password });
      if (set.status !== 200) throw new Error(`set password failed: ${JSON.stringify(set.body)}`);
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
    async stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}
