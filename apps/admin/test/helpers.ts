// Test helpers: the BUILT admin CLI run as a child process against a real fieldvault server
// process (apps/server/dist/main.js on a temporary data directory: embedded store, self-signed
// TLS, admin TOTP required as in production). Copied and cut down from the server fixture that is
// moving to packages/test-support; that fixture logs its admin in without TOTP, which these tests
// must not do. Both are spawned by path: the root `npm test` builds every package first.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Secret, TOTP } from 'otpauth';
import { loginSignatureMessage } from '@fieldvault/protocol';

export const CLI = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SERVER_MAIN = fileURLToPath(new URL('../../server/dist/main.js', import.meta.url));

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
  call(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** A phone's login (challenge + Ed25519 signature) of a field user; returns the session token. */
  deviceLogin(username: string, password: string, imei: string): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

export async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  if (!existsSync(SERVER_MAIN)) throw new Error(`${SERVER_MAIN} is missing: build apps/server first (npm test does)`);
  const child: ChildProcess = spawn(process.execPath, [SERVER_MAIN], {
    env: {
      PATH: process.env['PATH'] ?? '',
      FIELDVAULT_DATA_DIR: dataDir,
      FIELDVAULT_PORT: '0',
      FIELDVAULT_HTTP_PORT: 'off',
      FIELDVAULT_SERVER_ID: 'srv-admin-cli',
      FIELDVAULT_LOG_LEVEL: 'warn',
      ...env,
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
  const ca = readFileSync(certFile, 'utf8');
  const call: ServerProcess['call'] = (method, path, body, token) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = httpsRequest(
        `${started.url}${path}`,
        {
          method,
          ca,
          agent: false,
          headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const devices = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>();
  return {
    url: started.url,
    fingerprint: started.fingerprint,
    certFile,
    setupToken: started.token,
    call,
    async deviceLogin(username, password, imei) {
      // One key pair per IMEI, like a phone: the first login binds it.
      let pair = devices.get(imei);
      if (pair === undefined) {
        pair = generateKeyPairSync('ed25519');
        devices.set(imei, pair);
      }
      const { privateKey, publicKey } = pair;
      const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
      const ch = await call('POST', '/v1/auth/challenge', { imei });
      const challenge = ch.body['challenge'] as string;
      const signature = sign(null, loginSignatureMessage({ challenge, username, imei, keyId: '' }), privateKey);
      return call('POST', '/v1/auth/login', {
        username,
        password,
        imei,
        devicePublicKey: raw.toString('base64'),
        challenge,
        signature: signature.toString('base64'),
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}
