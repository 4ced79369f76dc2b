// Security audit H1: the embedded store of a running server (a loopback port every local account
// can reach) refuses every request without the server's per-start credential, so nobody else on
// the host can read password hashes or forge a session by writing it into the store.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { startServerChild, type ServerChild } from './server-child.js';

const NOBODY = 65_534;

function startProcess(dataDir: string): Promise<ServerChild> {
  return startServerChild(dataDir, { FIELDVAULT_HTTP_PORT: 'off', FIELDVAULT_LOG_LEVEL: 'info' });
}

interface Answer {
  readonly status: number;
  readonly text: string;
}

function call(url: string, options: { method?: string; ca?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const send = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
        agent: false,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        headers: { ...options.headers, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The embedded store process under the server `pid` (found by its script in /proc). */
function storePid(pid: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('couch-embedded')) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The TCP port `pid` listens on, from its socket inodes and /proc/net/tcp (what `ss -ltnp` shows). */
function listeningPort(pid: number): number | undefined {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1] !== undefined) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // local_address is field 1 (hex ip:port), st is field 3 (0A = LISTEN), inode is field 9.
    if (f[3] === '0A' && f[9] !== undefined && inodes.has(f[9])) return parseInt(f[1]?.split(':')[1] ?? '', 16);
  }
  return undefined;
}

/** A session document as the server stores one (console session of the admin), for `tokenHash`. */
function forgedSession(tokenHash: string): Record<string, unknown> {
  const now = Date.now();
  return { type: 'session', tokenHash, username: 'admin', imei: '', kind: 'console', createdAt: now, expiresAt: now + 3_600_000, userEpoch: 0, deviceEpoch: 0, revoked: null };
}

t.test('the store of a running server refuses requests without its credential: no hashes read, no session forged', async (t) => {
  const dataDir = join(t.testdir(), 'data');
  const s = await startProcess(dataDir);
  t.teardown(() => {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  });
  const ca = readFileSync(join(dataDir, 'tls/dev-cert.pem'), 'utf8');
  const setupToken = readFileSync(join(dataDir, 'secrets/setup-token'), 'utf8').trim();
  const made = await call(`${s.url}/v1/setup/admin`, { ca, body: { setupToken, username: 'admin', password: 'correct horse battery staple 42' } });
  t.equal(made.status, 201, made.text);

  const store = storePid(s.child.pid ?? 0);
  t.ok(store !== undefined, 'the store runs as a child of the server');
  const config = JSON.parse(readFileSync(`/proc/${store ?? 0}/cmdline`, 'utf8').split('\0').filter((a) => a !== '').at(-1) ?? '{}') as Record<string, unknown>;
  t.same(Object.keys(config).sort(), ['dataDir', 'host', 'port'], 'the store process argv holds no credential');
  const port = listeningPort(store ?? 0);
  t.ok(port !== undefined && port > 0, 'the store listens on a loopback port');
  const origin = `http://127.0.0.1:${port ?? 0}`;

  const noCredential = await call(`${origin}/fieldvault_users/user:admin`);
  t.equal(noCredential.status, 401);
  t.notMatch(noCredential.text, 'argon2', 'no password hash in the answer');
  t.match(JSON.parse(noCredential.text), { error: 'unauthorized' });
  for (const guess of ['fieldvault:', 'fieldvault:fieldvault', 'admin:admin', `fieldvault:${randomBytes(32).toString('base64url')}`]) {
    const wrong = await call(`${origin}/fieldvault_users/user:admin`, { headers: { authorization: `Basic ${Buffer.from(guess).toString('base64')}` } });
    t.equal(wrong.status, 401, `a wrong credential (${guess.split(':')[0] ?? ''}:…) is refused`);
  }

  const token = randomBytes(32).toString('base64url');
  const tokenHash = createHash('sha256').update(token).digest('hex');
  const write = await call(`${origin}/fieldvault_sessions/session:${tokenHash}`, { method: 'PUT', body: forgedSession(tokenHash) });
  t.equal(write.status, 401, 'the forged session is not written');
  const users = await call(`${s.url}/v1/users`, { ca, headers: { authorization: `Bearer ${token}` } });
  t.equal(users.status, 401, 'the server does not know the forged token');

  const again = await call(`${s.url}/v1/setup/admin`, { ca, body: { setupToken, username: 'admin2', password: 'correct horse battery staple 42' } });
  t.match(JSON.parse(again.text), { code: 'AUTH_SETUP_COMPLETED' }, 'the server still reads its store (its own credential works)');
  t.notMatch(s.output(), /fieldvault:[A-Za-z0-9_-]{43}@/, 'the store URL with its credential is not in the server output');
  s.child.kill('SIGINT');
  t.equal(await s.exited, 0);
});

t.test('another OS account (nobody) gets 401 from the store port', { skip: process.getuid?.() !== 0 ? 'needs root to run a process as nobody' : false }, async (t) => {
  const dataDir = join(t.testdir(), 'data');
  const s = await startProcess(dataDir);
  t.teardown(() => {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  });
  const port = listeningPort(storePid(s.child.pid ?? 0) ?? 0);
  // The audit's attack, as the account `nobody`: read the admin's user document, then try to write.
  const script = `
    const base = 'http://127.0.0.1:${String(port)}';
    const read = await fetch(base + '/fieldvault_users/user:admin');
    const write = await fetch(base + '/fieldvault_sessions/session:x', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"kind":"console","username":"admin"}' });
    console.log(JSON.stringify({ uid: process.getuid(), read: read.status, write: write.status }));`;
  // `env -i`: a bare environment (the test runner adds its own hooks, which nobody may not run).
  const child = spawn('/usr/bin/env', ['-i', process.execPath, '--input-type=module', '-e', script], { uid: NOBODY, gid: NOBODY, cwd: '/', stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  t.same(JSON.parse(out), { uid: NOBODY, read: 401, write: 401 });
  s.child.kill('SIGINT');
  t.equal(await s.exited, 0);
});
