// A real fieldvault server for the bench: `apps/server/dist/main.js` as a child process (HTTPS
// with its self-signed development certificate, production defaults) on a given store through
// COUCHDB_URL, so that several servers and the baselines can share one embedded store. Spawned
// by path: `npm run bench` builds every package first.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { createHttpTransport, type HttpTransport } from '@fieldvault/client';
import { generateDeviceKeyPair, signDevice, toBase64, type DeviceKeyPair } from '@fieldvault/crypto';
import { loginSignatureMessage } from '@fieldvault/protocol';

const MAIN = fileURLToPath(new URL('../../../apps/server/dist/main.js', import.meta.url));
/** No bench request may hang the run. */
const REQUEST_TIMEOUT_MS = 120_000;

export interface BenchServer {
  readonly serverId: string;
  readonly url: string;
  readonly pid: number;
  readonly certPem: string;
  /** An SDK transport pinning this server's certificate, as a phone configures it. */
  transport(): HttpTransport;
  /** Keep-alive HTTPS connections trusting this server's certificate (for the raw protocol runs). */
  readonly agent: Agent;
  /** Creates a field worker with this password (the invitation redeemed as the user would). */
  createUser(username: string, password: string): Promise<void>;
  /** Challenge + signed login from a new device (its own IMEI and key pair); the session token. */
  login(username: string, password: string, imei: string, keys?: DeviceKeyPair): Promise<string>;
  /** JSON call; throws unless the status is `expect` (the error names the route and code only). */
  call<T>(expect: number, method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<T>;
  stop(): Promise<void>;
}

export interface BenchServerOptions {
  readonly dataDir: string;
  readonly serverId: string;
  readonly couchUrl: string;
  readonly dbPrefix: string;
  readonly adminPassword: string;
  /** Extra `node` flags for the server process (e.g. `--cpu-prof --cpu-prof-dir=…` to profile it). */
  readonly nodeArgs?: readonly string[];
}

/** Starts the server and creates its first admin with the printed one-time setup token. */
export async function startBenchServer(o: BenchServerOptions): Promise<BenchServer> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build the workspace first (npm run bench does)`);
  // Request logs (info, the production level) go to a file: their cost stays in the server, and
  // nobody has to drain a pipe. The start-up banner is on stderr.
  const logFd = openSync(join(o.dataDir, 'server.log'), 'a');
  const child: ChildProcess = spawn(process.execPath, [...(o.nodeArgs ?? []), MAIN], {
    env: {
      PATH: process.env['PATH'] ?? '',
      FIELDVAULT_DATA_DIR: o.dataDir,
      FIELDVAULT_PORT: '0',
      FIELDVAULT_HTTP_PORT: 'off',
      FIELDVAULT_SERVER_ID: o.serverId,
      COUCHDB_URL: o.couchUrl,
      FIELDVAULT_COUCHDB_PREFIX: o.dbPrefix,
      FIELDVAULT_LOG_LEVEL: 'info',
      // The bench's admin logs in from a device with its password alone (no TOTP enrolment).
      FIELDVAULT_ADMIN_TOTP: 'optional',
      // Every bench request comes from 127.0.0.1: the per-IP limits would only add 429s.
      FIELDVAULT_RATE_LIMIT: '1000000',
      FIELDVAULT_AUTH_RATE_LIMIT: '1000000',
    },
    stdio: ['ignore', logFd, 'pipe'],
  });
  closeSync(logFd);
  let banner = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (banner.length < 100_000) banner += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  try {
    return await connect(o, child, exited, () => banner);
  } catch (err) {
    // A server that failed to start or to set up must not outlive the bench.
    await kill();
    throw err;
  }
}

async function connect(o: BenchServerOptions, child: ChildProcess, exited: Promise<void>, output: () => string): Promise<BenchServer> {
  const started = await new Promise<{ url: string; fingerprint: string; setupToken: string }>((resolve, reject) => {
    const timer = setInterval(() => {
      const banner = output();
      const url = /listening on (https:\/\/\S+)/.exec(banner)?.[1];
      const fingerprint = /SHA-256 fingerprint ([0-9A-F:]{95})/.exec(banner)?.[1];
      const setupToken = /setup token:\s+(\S+)/.exec(banner)?.[1];
      if (url !== undefined && fingerprint !== undefined && setupToken !== undefined && /Ctrl-C/.test(banner)) {
        clearInterval(timer);
        resolve({ url, fingerprint, setupToken });
      }
    }, 25);
    const timeout = setTimeout(() => reject(new Error(`server ${o.serverId} did not start within 60 s: ${output().slice(-2000)}`)), 60_000);
    timeout.unref();
    void exited.then(() => {
      clearInterval(timer);
      reject(new Error(`server ${o.serverId} exited during start: ${output().slice(-2000)}`));
    });
  });
  const certPem = readFileSync(join(o.dataDir, 'tls', 'dev-cert.pem'), 'utf8');
  const agent = new Agent({ connect: { ca: certPem }, connections: 8, pipelining: 1 });

  const call = async <T>(expect: number, method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<T> => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    const res = await request(`${started.url}${path}`, {
      method,
      headers,
      dispatcher: agent,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.body.text();
    if (res.statusCode !== expect) {
      let code = 'unknown';
      try {
        code = String((JSON.parse(text) as { code?: unknown }).code);
      } catch {
        // not a catalogued error body
      }
      throw new Error(`${method} ${path.split('?')[0] ?? ''}: ${res.statusCode} ${code}`);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  };

  const login = async (username: string, password: string, imei: string, keys: DeviceKeyPair = generateDeviceKeyPair()): Promise<string> => {
    const { challenge } = await call<{ challenge: string }>(200, 'POST', '/v1/auth/challenge', { imei });
    const signature = toBase64(signDevice(keys.privateKey, loginSignatureMessage({ challenge, username, imei, keyId: '' })));
    const res = await call<{ token: string }>(200, 'POST', '/v1/auth/login', {
      username,
      password,
      imei,
      devicePublicKey: toBase64(keys.publicKey),
      challenge,
      signature,
    });
    return res.token;
  };

  await call(201, 'POST', '/v1/setup/admin', { setupToken: started.setupToken, username: 'admin', password: o.adminPassword });
  const adminToken = await login('admin', o.adminPassword, '100000000000001');

  return {
    serverId: o.serverId,
    url: started.url,
    pid: child.pid ?? 0,
    certPem,
    agent,
    transport: () => createHttpTransport({ baseUrl: started.url, serverId: o.serverId, tls: { pinSha256: started.fingerprint }, timeoutMs: REQUEST_TIMEOUT_MS }),
    async createUser(username, password) {
      const made = await call<{ invitation: { token: string } }>(201, 'POST', '/v1/users', { username, role: 'field_worker' }, adminToken);
      await call(200, 'POST', '/v1/auth/password', { resetToken: made.invitation.token, password });
    },
    login,
    call,
    async stop() {
      await agent.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
