// Test helpers: the BUILT CLI run as a child process, and a real fieldvault server process
// (apps/server/dist/main.js on a temporary data directory: embedded store, self-signed TLS) with a
// small admin client to create users. Both are spawned by path: the root `npm test` builds every
// package before any test runs (same approach as packages/storage-sqlcipher/test/server-process.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';
import { createHttpTransport } from '@fieldvault/client';
import { loginSignatureMessage } from '@fieldvault/protocol';

export const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SERVER_MAIN = fileURLToPath(new URL('../../server/dist/main.js', import.meta.url));

export const PASSWORD_A = 'amber lantern over quiet harbour';
export const PASSWORD_B = 'seven copper kettles sing at dawn';
export const ADMIN_PASSWORD = 'correct horse battery staple rooftop';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node apps/field/dist/main.js --home <home> ...args` with `stdin` piped in (a password line
 * for --password-stdin) and a clean environment (no FIELDVAULT_FIELD_HOME leaking in).
 */
export function cli(home: string, args: readonly string[], stdin = '', env: Record<string, string> = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build apps/field first (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--home', home, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: home, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** `cli` with a password on stdin and --password-stdin. */
export function cliWith(home: string, password: string, args: readonly string[]): Promise<CliResult> {
  return cli(home, ['--password-stdin', ...args], `${password}\n`);
}

/** Parses stdout of a --json command (fails the test with the output when it is not JSON). */
export function json<T = Record<string, unknown>>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${String(r.code)}):\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  }
}

function crc32(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of buf) {
    let c = (crc ^ b) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A real (decodable) 16×16 RGB PNG with a text chunk holding `canary` (the SDK strips text chunks). */
export function png(canary = 'GPS 12.3456,45.6789'): Buffer {
  const w = 16;
  const h = 16;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = x * 16;
      raw[o + 1] = y * 16;
      raw[o + 2] = 128;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('tEXt', Buffer.from(`Comment\0${canary}`, 'latin1')),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Every file under `dir`, relative, sorted. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(relative(dir, full));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/** Path → SHA-256 of every file under `dir` (without the lock file), to prove nothing changed. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of filesUnder(dir)) {
    if (f === 'lock') continue;
    out[f] = createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
  }
  return out;
}

export interface ServerProcess {
  readonly serverId: string;
  readonly url: string;
  /** SHA-256 certificate fingerprint as the server prints it (`AB:CD:…`). */
  readonly fingerprint: string;
  readonly certFile: string;
  /** Creates a user (a field worker by default) with this password (the invitation redeemed as the user would). */
  createUser(username: string, password: string, role?: 'field_worker' | 'supervisor'): Promise<void>;
  /** Admin actions on a device (`blacklist`: stolen; `retire`: final sync, then wipe). */
  deviceAction(imei: string, action: 'blacklist' | 'retire'): Promise<void>;
  /** The server's view of a device (admin API), or undefined when it never saw the IMEI. */
  device(imei: string): Promise<Record<string, unknown> | undefined>;
  stop(): Promise<void>;
}

function request(url: string, ca: string, method: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
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
 * Starts apps/server on `dataDir` (HTTPS on a random loopback port, no HTTP redirect), creates the
 * first admin with the printed setup token and logs the admin in from its own Ed25519 device key.
 */
export async function startServer(dataDir: string, serverId: string): Promise<ServerProcess> {
  if (!existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} is missing: build apps/server first (npm test does)`);
  const child: ChildProcess = spawn(process.execPath, [SERVER_MAIN], {
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
  const call = (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> =>
    request(`${started.url}${path}`, certPem, method, body, headers);

  const setup = await call('POST', '/v1/setup/admin', { setupToken: started.token, username: 'admin', password: ADMIN_PASSWORD });
  if (setup.status !== 201) throw new Error(`setup failed: ${JSON.stringify(setup.body)}`);
  const adminImei = '100000000000001';
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicRaw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  const transport = createHttpTransport({ baseUrl: started.url, serverId, tls: { pinSha256: started.fingerprint } });
  const { challenge } = await transport.challenge({ imei: adminImei });
  const signature = sign(null, loginSignatureMessage({ challenge, username: 'admin', imei: adminImei, keyId: '' }), privateKey);
  const { token } = await transport.login({
    username: 'admin',
    password: ADMIN_PASSWORD,
    imei: adminImei,
    devicePublicKey: publicRaw.toString('base64'),
    challenge,
    signature: signature.toString('base64'),
  });
  const admin = (method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> =>
    call(method, path, body, { authorization: `Bearer ${token}` });

  return {
    serverId,
    url: started.url,
    fingerprint: started.fingerprint,
    certFile,
    async createUser(username, password, role = 'field_worker') {
      const made = await admin('POST', '/v1/users', { username, role });
      if (made.status !== 201) throw new Error(`create user failed: ${JSON.stringify(made.body)}`);
      const invitation = made.body['invitation'] as { token: string };
      const set = await call('POST', '/v1/auth/password', { resetToken: invitation.token, password });
      if (set.status !== 200) throw new Error(`set password failed: ${JSON.stringify(set.body)}`);
    },
    async deviceAction(imei, action) {
      const res = await admin('POST', `/v1/devices/${imei}/${action}`, { reason: 'test' });
      if (res.status !== 200) throw new Error(`${action} failed: ${JSON.stringify(res.body)}`);
    },
    async device(imei) {
      const res = await admin('GET', `/v1/devices/${imei}`);
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw new Error(`device failed: ${JSON.stringify(res.body)}`);
      return res.body['device'] as Record<string, unknown>;
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}
