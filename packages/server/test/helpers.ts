import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import nano from 'nano';
import type { Test } from 'tap';
import { startEmbeddedCouch, type EmbeddedCouch } from '@fieldvault/couch-embedded';
import { generateDeviceKeyPair, signDevice, toBase64, type DeviceKeyPair } from '@fieldvault/crypto';
import type { KeyRecord } from '@fieldvault/protocol';
import { loginSignatureMessage } from '@fieldvault/protocol';
import { buildApp, type BuildAppInput } from '../src/index.js';

/**
 * Fast but valid Argon2id parameters for tests (the defaults stay 64 MiB, t=3). In-process: one
 * hasher process per app made the suite ~30% slower; password-hasher.test.ts covers `process`.
 */
export const TEST_ARGON2 = { memoryKiB: 1024, timeCost: 1, parallelism: 1, isolation: 'threadpool' } as const;

export const SETUP_TOKEN = 'setup-token-for-tests-0123456789abcdef';
export const ADMIN_PASSWORD = 'correct horse battery staple rooftop';

/** One embedded store per test file, stopped in teardown. */
export async function startStore(t: Test): Promise<EmbeddedCouch> {
  const couch = await startEmbeddedCouch({ dataDir: t.testdir() });
  t.teardown(() => couch.stop());
  return couch;
}

/** What a {@link storeRecorder} saw: every request the server sent to the store, in order. */
export interface StoreRecorder {
  /** The recorder's URL, given to the server as the store's. */
  readonly url: string;
  readonly crashed: boolean;
  /** `METHOD path?query` of each request, decoded (`device:…` rather than `device%3A…`). */
  readonly requests: string[];
}

/** What a {@link storeRecorder} can do besides recording. */
export interface StoreRecorderOptions {
  /**
   * Requests (`METHOD path?query`, decoded) the relay answers with a 500 of its own instead of
   * forwarding them: a store that answers some calls and fails others (a full disk, one broken view).
   */
  readonly refuse?: (request: string) => boolean;
  /**
   * A promise to wait for before forwarding a request (undefined: forward at once): a store call
   * held in flight, to see what the server does meanwhile.
   */
  readonly hold?: (request: string) => Promise<void> | undefined;
}

/**
 * A recording HTTP relay in front of the real store: each request is forwarded as it is and the
 * answer streamed back, so the server talks to the real store; the test reads which requests it
 * made (e.g. how often one document was read).
 */
export async function storeRecorder(t: Test, couch: EmbeddedCouch, options: StoreRecorderOptions = {}): Promise<StoreRecorder> {
  const target = new URL(couch.url);
  const agent = new http.Agent({ keepAlive: true });
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const request = `${req.method ?? ''} ${decodeURIComponent(req.url ?? '')}`;
    requests.push(request);
    if (options.refuse?.(request) === true) {
      req.resume();
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'unknown_error', reason: 'refused by the test relay' }));
      return;
    }
    void forward(req, res, options.hold?.(request));
  });
  const forward = async (req: http.IncomingMessage, res: http.ServerResponse, held: Promise<void> | undefined): Promise<void> => {
    // The request body waits in the paused stream meanwhile.
    if (held !== undefined) await held;
    const upstream = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host }, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // The store's credentials (if any) are in couch.url; the relay's URL carries the same.
  const url = new URL(couch.url);
  url.host = `127.0.0.1:${port}`;
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    agent.destroy();
  });
  return {
    url: url.toString().replace(/\/$/, ''),
    get crashed() {
      return couch.crashed;
    },
    requests,
  };
}

/** A fake wall clock (the only fake the tests use). */
export interface FakeClock {
  now: () => number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function fakeClock(start = Date.UTC(2025, 0, 15, 12, 0, 0)): FakeClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

/** Captures every log line an app writes. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(chunk.toString('utf8'));
    done();
  }
  text(): string {
    return this.lines.join('');
  }
}

export function freshPrefix(): string {
  return `t${randomBytes(5).toString('hex')}_`;
}

export interface TestApp {
  readonly app: FastifyInstance;
  readonly clock: FakeClock;
  readonly logs: LogCapture;
  readonly config: BuildAppInput;
}

export type Overrides = Partial<Omit<BuildAppInput, 'couch' | 'setupToken'>> & { couch?: { dbPrefix?: string; startupWaitMs?: number }; setupToken?: string | null };

/**
 * A server on a fresh database prefix in `couch`; closed and its databases dropped in teardown.
 */
export async function makeApp(t: Test, couch: Pick<EmbeddedCouch, 'url' | 'crashed'>, overrides: Overrides = {}): Promise<TestApp> {
  const clock = fakeClock();
  const logs = new LogCapture();
  const { setupToken = SETUP_TOKEN, couch: couchOverride, ...rest } = overrides;
  const config: BuildAppInput = {
    kek: new Uint8Array(randomBytes(32)),
    serverId: 'server-a',
    argon2: TEST_ARGON2,
    sweepIntervalSeconds: 0,
    rateLimit: { max: 100_000, authMax: 100_000 },
    // Most suites log the admin in from a device without TOTP; admin-totp.test.ts turns it on.
    adminTotp: { required: false },
    logLevel: 'info',
    logStream: logs,
    now: clock.now,
    ...rest,
    ...(setupToken === null ? {} : { setupToken }),
    couch: {
      url: couch.url,
      dbPrefix: couchOverride?.dbPrefix ?? freshPrefix(),
      ...(couchOverride?.startupWaitMs === undefined ? {} : { startupWaitMs: couchOverride.startupWaitMs }),
    },
  };
  const app = await buildApp(config);
  await app.ready();
  t.teardown(async () => {
    await app.close();
    // A test may have stopped its store on purpose; then there is nothing left to drop.
    if (couchOverride?.dbPrefix === undefined && !couch.crashed) await app.repo.dropDatabases().catch(() => undefined);
  });
  return { app, clock, logs, config };
}

export function json(res: LightMyRequestResponse): Record<string, unknown> {
  return res.json() as Record<string, unknown>;
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export async function call(app: FastifyInstance, opts: InjectOptions): Promise<LightMyRequestResponse> {
  return app.inject(opts);
}

/** A simulated phone: an IMEI and its Ed25519 device key pair. */
export interface Device {
  readonly imei: string;
  readonly keys: DeviceKeyPair;
  readonly publicKey: string;
}

let imeiCounter = 0;
export function newImei(): string {
  imeiCounter += 1;
  return `35${String(Date.now() % 1e9).padStart(9, '0')}${String(imeiCounter).padStart(4, '0')}`.slice(0, 15);
}

export function newDevice(imei = newImei()): Device {
  const keys = generateDeviceKeyPair();
  return { imei, keys, publicKey: toBase64(keys.publicKey) };
}

export interface LoginOptions {
  readonly username: string;
  readonly password: string;
  readonly dbKey?: string;
  readonly keyRecord?: KeyRecord;
  /** Sign with these keys instead of the device's own (spoofing tests). */
  readonly signWith?: DeviceKeyPair;
  /** Reuse this challenge instead of asking for a fresh one (replay tests). */
  readonly challenge?: string;
  readonly remoteAddress?: string;
  /** Admins: a TOTP or recovery code. */
  readonly totp?: string;
}

export async function getChallenge(app: FastifyInstance, imei: string, remoteAddress?: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/auth/challenge', payload: { imei }, ...(remoteAddress ? { remoteAddress } : {}) });
  if (res.statusCode !== 200) throw new Error(`challenge failed: ${res.statusCode} ${res.body}`);
  return (res.json() as { challenge: string }).challenge;
}

export function loginPayload(device: Device, opts: LoginOptions, challenge: string): Record<string, unknown> {
  const keys = opts.signWith ?? device.keys;
  const signature = signDevice(
    keys.privateKey,
    loginSignatureMessage({ challenge, username: opts.username, imei: device.imei, keyId: opts.keyRecord?.keyId ?? '' }),
  );
  return {
    username: opts.username,
    password: opts.password,
    imei: device.imei,
    devicePublicKey: toBase64(keys.publicKey),
    challenge,
    signature: toBase64(signature),
    ...(opts.dbKey === undefined ? {} : { dbKey: opts.dbKey }),
    ...(opts.keyRecord === undefined ? {} : { keyRecord: opts.keyRecord }),
    ...(opts.totp === undefined ? {} : { totp: opts.totp }),
  };
}

export interface LoginResult {
  token: string;
  expiresAt: string;
  user: { username: string; role: string };
  key: { record: KeyRecord; dbKey: string };
}

/** Challenge + signed login; returns the raw response. */
export async function loginRaw(app: FastifyInstance, device: Device, opts: LoginOptions): Promise<LightMyRequestResponse> {
  const challenge = opts.challenge ?? (await getChallenge(app, device.imei, opts.remoteAddress));
  return app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: loginPayload(device, opts, challenge),
    ...(opts.remoteAddress ? { remoteAddress: opts.remoteAddress } : {}),
  });
}

export async function login(app: FastifyInstance, device: Device, opts: LoginOptions): Promise<LoginResult> {
  const res = await loginRaw(app, device, opts);
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  return res.json() as LoginResult;
}

/** Creates the first admin with the setup token and logs them in from their own device. */
export async function setupAdmin(app: FastifyInstance, username = 'admin'): Promise<{ token: string; device: Device }> {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/setup/admin',
    payload: { setupToken: SETUP_TOKEN, username, password: ADMIN_PASSWORD },
  });
  if (res.statusCode !== 201) throw new Error(`setup failed: ${res.statusCode} ${res.body}`);
  const device = newDevice();
  const { token } = await login(app, device, { username, password: ADMIN_PASSWORD });
  return { token, device };
}

/** Admin creates a user; the user sets their password from the invitation. Returns the password. */
export async function createUser(app: FastifyInstance, adminToken: string, username: string, role = 'field_worker'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/users', headers: bearer(adminToken), payload: { username, role } });
  if (res.statusCode !== 201) throw new Error(`create user failed: ${res.statusCode} ${res.body}`);
  const invitation = (res.json() as { invitation: { token: string } }).invitation;
  const password = `quiet river bank at dawn ${randomBytes(4).toString('hex')}`;
  const set = await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken: invitation.token, password } });
  if (set.statusCode !== 200) throw new Error(`set password failed: ${set.statusCode} ${set.body}`);
  return password;
}

/** doc_count and update_seq of every database of an app, to prove a request changed nothing. */
export async function storeSnapshot(couchUrl: string, prefix: string): Promise<Record<string, string>> {
  const server = nano(couchUrl);
  const out: Record<string, string> = {};
  for (const name of ['users', 'devices', 'sessions', 'audit']) {
    const info = await server.db.get(`${prefix}${name}`);
    out[name] = `${info.doc_count}/${JSON.stringify(info.update_seq)}`;
  }
  return out;
}

/** A one-day self-signed P-256 certificate for `localhost`, made by openssl in `dir`. */
export function selfSigned(dir: string): { key: string; cert: string } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}
