// A real fieldvault server for the bench: `apps/server/dist/main.js` as a child process (HTTPS
// with its self-signed development certificate, production defaults) on a given store through
// COUCHDB_URL, so that several servers and the baselines can share one embedded store. Launched
// by the shared fixture of packages/test-support; this adds the keep-alive connections the raw
// protocol runs measure over.
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { HttpTransport } from '@fieldvault/client';
import type { DeviceKeyPair } from '@fieldvault/crypto';
import { startServerProcess } from '@fieldvault/test-support';
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
  /** Extra environment of the server process (A/B runs of a setting, e.g. FIELDVAULT_AUTH_CACHE_MS). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts the server and creates its first admin with the printed one-time setup token. */
export async function startBenchServer(o: BenchServerOptions): Promise<BenchServer> {
  const server = await startServerProcess(o.dataDir, o.serverId, {
    env: {
      COUCHDB_URL: o.couchUrl,
      FIELDVAULT_COUCHDB_PREFIX: o.dbPrefix,
      FIELDVAULT_LOG_LEVEL: 'info',
      // Every bench request comes from 127.0.0.1: the per-IP limits would only add 429s.
      FIELDVAULT_RATE_LIMIT: '1000000',
      FIELDVAULT_AUTH_RATE_LIMIT: '1000000',
      ...o.env,
    },
    // Request logs (info, the production level) go to a file: their cost stays in the server, and
    // nobody has to drain a pipe.
    logFile: join(o.dataDir, 'server.log'),
    ...(o.nodeArgs === undefined ? {} : { nodeArgs: o.nodeArgs }),
    adminPassword: o.adminPassword,
    // A fresh data directory each time: a failed start is a real failure, not a store still closing.
    startAttempts: 1,
    startTimeoutMs: 60_000,
  });
  const agent = new Agent({ connect: { ca: server.certPem }, connections: 8, pipelining: 1 });

  const call = async <T>(expect: number, method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<T> => {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    const res = await request(`${server.url}${path}`, {
      method,
      headers,
      dispatcher: agent,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.body.text();
    if (res.statusCode !== expect) throw new Error(`${method} ${path.split('?')[0] ?? ''}: ${res.statusCode} ${codeOf(text)}`);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  };

  return {
    serverId: o.serverId,
    url: server.url,
    pid: server.pid,
    certPem: server.certPem,
    agent,
    transport: () => server.transport({ timeoutMs: REQUEST_TIMEOUT_MS }),
    createUser: (username, password) => server.createUser(username, password),
    async login(username, password, imei, keys) {
      const res = await server.deviceLogin(username, password, imei, keys);
      if (res.status !== 200) throw new Error(`POST /v1/auth/login: ${res.status} ${String(res.body['code'])}`);
      return res.body['token'] as string;
    },
    call,
    async stop() {
      await agent.close();
      await server.stop();
    },
  };
}

/** The catalogued code of an error body (only the code: a bench error names no data). */
function codeOf(text: string): string {
  try {
    return String((JSON.parse(text) as { code?: unknown }).code);
  } catch {
    return 'unknown';
  }
}
