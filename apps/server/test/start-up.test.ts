// Start-up checks of the runnable server as a real process (operations audit, items 2–8): each
// problem stops the start with a catalogued error that names the variable, the file or the address
// and says what to do, with no stack trace; the banner says what the operator needs.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { startEmbeddedCouch, type EmbeddedCouch } from '@fieldvault/couch-embedded';
import { startCredentialFront } from '@fieldvault/test-support';
import { hasStack, runServer, stopServer } from './run-server.js';

/**
 * A private CA and a server certificate it issued for 127.0.0.1/localhost (openssl), plus an
 * unrelated key: for the TLS start-up checks and for an https store.
 */
function makeCa(dir: string): { caCert: string; cert: string; key: string; otherKey: string } {
  const f = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore' });
  };
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=fieldvault test CA');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('key.pem'), '-out', f('req.csr'), '-subj', '/CN=localhost');
  writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', f('req.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-out', f('cert.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('other-key.pem'));
  for (const k of ['key.pem', 'other-key.pem', 'ca-key.pem']) chmodSync(f(k), 0o600);
  return { caCert: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem'), otherKey: f('other-key.pem') };
}

/** Paths under `dir` (itself included) that group or others may access. */
function exposed(dir: string): string[] {
  const out: string[] = [];
  if ((statSync(dir).mode & 0o077) !== 0) out.push(dir);
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    if ((statSync(p).mode & 0o077) !== 0) out.push(`${p} ${(statSync(p).mode & 0o777).toString(8)}`);
  }
  return out;
}

interface Proxy {
  /** `GET /path status` of each request answered, in order. */
  readonly answered: string[];
  stop(): Promise<void>;
}

/**
 * A reverse proxy on `port` to the store on `upstreamPort`, as nginx in front of CouchDB: 502 when
 * nothing answers upstream. With `rootOnly` it passes on `/` alone and answers 502 for the rest:
 * the store answers the start-up probe, its databases do not (as a CouchDB still starting).
 */
async function startProxy(port: number, upstreamPort: number, rootOnly = false): Promise<Proxy> {
  const answered: string[] = [];
  const server = createHttpServer((req, res) => {
    const badGateway = (): void => {
      answered.push(`${req.method} ${req.url} 502`);
      res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' }).end('bad gateway');
    };
    if (rootOnly && req.url !== '/') return badGateway();
    const up = httpRequest({ host: '127.0.0.1', port: upstreamPort, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      answered.push(`${req.method} ${req.url} ${answer.statusCode}`);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', badGateway);
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    answered,
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A free TCP port (bound and released) on 127.0.0.1: nothing listens there afterwards. */
async function closedPort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

t.test('item 2: an existing data directory open to others is made 0700 with a warning; the store files are private', async (t) => {
  const dataDir = join(t.testdir(), 'data');
  mkdirSync(dataDir, { mode: 0o755 });
  chmodSync(dataDir, 0o755);
  const s = await runServer(dataDir);
  t.teardown(() => stopServer(s));
  t.equal(s.state, 'started', s.output());
  t.equal(statSync(dataDir).mode & 0o777, 0o700);
  t.match(s.output(), `warning: data directory ${dataDir} had mode 0755 (open to other users); changed it to 0700`);
  t.same(exposed(join(dataDir, 'couch')), [], 'the embedded store directory and its LevelDB files are private');
  t.equal(await stopServer(s), 0);
});

/** Creates the first admin with the setup token from the file the banner names (the store then holds a user). */
function createFirstAdmin(dataDir: string, url: string): Promise<number> {
  const setupToken = readFileSync(join(dataDir, 'secrets', 'setup-token'), 'utf8').trim();
  const body = JSON.stringify({ setupToken, username: 'admin', password: 'granite owls measure the slow river' });
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${url}/v1/setup/admin`,
      { method: 'POST', ca: readFileSync(join(dataDir, 'tls', 'dev-cert.pem')), headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

t.test('item 3: a missing KEK file is not regenerated for a store that has one; the store names the KEK id it expects', async (t) => {
  const dataDir = join(t.testdir(), 'data');
  const first = await runServer(dataDir);
  t.equal(first.state, 'started', first.output());
  const kekId = /KEK id ([0-9a-f]{32})/.exec(first.output())?.[1] ?? 'none';
  t.match(kekId, /^[0-9a-f]{32}$/, 'the banner shows the KEK id');
  // A store with a user holds what the KEK seals (an empty store would accept another KEK: kek-guard tests).
  t.equal(await createFirstAdmin(dataDir, first.url), 201, 'the first admin is created');
  t.equal(await stopServer(first), 0);
  const kekFile = join(dataDir, 'secrets', 'kek');
  const kekText = readFileSync(kekFile, 'utf8');
  copyFileSync(kekFile, join(dataDir, 'kek.backup'));
  rmSync(kekFile);

  const deleted = await runServer(dataDir);
  t.equal(deleted.state, 'exited');
  t.equal(deleted.code, 1);
  t.match(deleted.output(), /CONFIG_KEK_MISMATCH/);
  t.match(deleted.output(), `the KEK file ${kekFile} (FIELDVAULT_KEK_FILE) does not exist, but the store holds keys sealed under KEK id ${kekId}`);
  t.notOk(existsSync(kekFile), 'no new KEK was kept');
  t.notMatch(deleted.output(), kekText.trim(), 'never the key bytes');
  t.notOk(hasStack(deleted.output()));

  const typo = join(dataDir, 'secrets', 'kek-typo');
  const mistyped = await runServer(dataDir, { FIELDVAULT_KEK_FILE: typo });
  t.equal(mistyped.code, 1);
  t.match(mistyped.output(), `the KEK file ${typo} (FIELDVAULT_KEK_FILE) does not exist`);
  t.notOk(existsSync(typo));

  // Another KEK (a file that exists but is not this store's) is refused too.
  const otherKek = join(dataDir, 'other-kek');
  writeFileSync(otherKek, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
  const wrong = await runServer(dataDir, { FIELDVAULT_KEK_FILE: otherKek });
  t.equal(wrong.code, 1);
  t.match(wrong.output(), `but the store's keys are sealed under KEK id ${kekId}`);

  copyFileSync(join(dataDir, 'kek.backup'), kekFile);
  chmodSync(kekFile, 0o600);
  const restored = await runServer(dataDir);
  t.equal(restored.state, 'started', 'the restored KEK file starts the server again');
  t.match(restored.output(), `KEK id ${kekId}`);
  t.equal(await stopServer(restored), 0);
});

t.test('item 4: TLS files that are missing, not PEM or not a pair stop the start naming the variable and the file, without a stack', async (t) => {
  const dir = t.testdir();
  const ca = makeCa(dir);
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['missing key', { FIELDVAULT_TLS_CERT: ca.cert, FIELDVAULT_TLS_KEY: join(dir, 'nokey.pem') }, /FIELDVAULT_TLS_KEY \S+nokey\.pem does not exist/],
    ['missing certificate', { FIELDVAULT_TLS_CERT: join(dir, 'nocert.pem'), FIELDVAULT_TLS_KEY: ca.key }, /FIELDVAULT_TLS_CERT \S+nocert\.pem does not exist/],
    ['key of another certificate', { FIELDVAULT_TLS_CERT: ca.cert, FIELDVAULT_TLS_KEY: ca.otherKey }, /FIELDVAULT_TLS_KEY \S+other-key\.pem is not the private key of FIELDVAULT_TLS_CERT \S+cert\.pem/],
    ['a key that is not PEM', { FIELDVAULT_TLS_CERT: ca.cert, FIELDVAULT_TLS_KEY: join(dir, 'junk.pem') }, /FIELDVAULT_TLS_KEY \S+junk\.pem is not an unencrypted PEM private key/],
    ['a certificate that is not PEM', { FIELDVAULT_TLS_CERT: join(dir, 'junk.pem'), FIELDVAULT_TLS_KEY: ca.key }, /FIELDVAULT_TLS_CERT \S+junk\.pem is not a PEM certificate/],
  ];
  writeFileSync(join(dir, 'junk.pem'), 'not a pem file\n', { mode: 0o600 });
  for (const [name, env, expected] of cases) {
    const o = await runServer(join(dir, `data-${name.replaceAll(' ', '-')}`), env);
    t.equal(o.code, 1, name);
    t.match(o.output(), /fieldvault: CONFIG_INVALID: /, name);
    t.match(o.output(), expected, name);
    t.notOk(hasStack(o.output()), `${name}: no stack`);
    t.notMatch(o.output(), /unexpected error/, name);
  }
});

t.test('item 5: a port in use and an unknown host name are reported with the address and the cause', async (t) => {
  const blocker = createNetServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as AddressInfo).port;
  const inUse = await runServer(join(t.testdir(), 'a'), { FIELDVAULT_PORT: String(port) });
  t.equal(inUse.code, 1);
  t.match(inUse.output(), `cannot listen on 127.0.0.1:${port} (FIELDVAULT_HOST, FIELDVAULT_PORT): the port is in use by another program (EADDRINUSE)`);

  // At log level info: the HTTPS listener's "Server listening" line must not come before the failure.
  const httpInUse = await runServer(join(t.testdir(), 'b'), { FIELDVAULT_HTTP_PORT: String(port), FIELDVAULT_LOG_LEVEL: 'info' });
  t.equal(httpInUse.code, 1);
  t.match(httpInUse.output(), `cannot listen on 127.0.0.1:${port} (FIELDVAULT_HOST, FIELDVAULT_HTTP_PORT): the port is in use`);
  t.notMatch(httpInUse.output(), /Server listening/, 'no "listening" log line for a start that failed');

  const badHost = await runServer(join(t.testdir(), 'c'), { FIELDVAULT_HOST: 'no-such-host.invalid' });
  t.equal(badHost.code, 1);
  t.match(badHost.output(), /cannot listen on no-such-host\.invalid:0 \(FIELDVAULT_HOST, FIELDVAULT_PORT\): host name "no-such-host\.invalid" not found \((ENOTFOUND|EAI_AGAIN)\)/);
  t.notOk(hasStack(badHost.output()));
});

t.test('item 6: an unreachable store is named by host:port (never credentials) with the cause, after the whole configured wait', async (t) => {
  const port = await closedPort();
  const o = await runServer(join(t.testdir(), 'data'), { COUCHDB_URL: `http://app:s3cretpw@127.0.0.1:${port}`, FIELDVAULT_STORE_WAIT_SECONDS: '2' });
  t.equal(o.code, 1);
  t.match(o.output(), /STORE_CONNECT_FAILED/);
  t.match(o.output(), `store at http://127.0.0.1:${port}: connection refused: nothing listens there (ECONNREFUSED)`);
  t.notMatch(o.output(), /s3cretpw/);
  // The loop only gives up once the deadline has passed, so the reported wait is never shorter.
  const waited = Number(/attempts over ([\d.]+) s/.exec(o.output())?.[1] ?? '0');
  t.ok(waited >= 2, `waited the configured 2 s (reported ${waited} s)`);
  t.notOk(existsSync(join(t.testdir(), 'data', 'secrets', 'kek')), 'a KEK created for this start is not kept');
});

t.test('item 6: an https store with an untrusted certificate fails at once; NODE_EXTRA_CA_CERTS with its CA makes it work', async (t) => {
  const dir = t.testdir();
  const ca = makeCa(dir);
  const couch = await startEmbeddedCouch({ dataDir: join(dir, 'couch') });
  t.teardown(() => couch.stop());
  // The store behind a TLS proxy with a private CA (the front holds the store's credential, as a
  // proxy in front of a CouchDB that requires one).
  const front = await startCredentialFront(couch, { tls: { cert: readFileSync(ca.cert), key: readFileSync(ca.key) } });
  t.teardown(() => front.stop());
  const url = front.origin;

  const untrusted = await runServer(join(dir, 'data1'), { COUCHDB_URL: url, FIELDVAULT_STORE_WAIT_SECONDS: '600' });
  t.equal(untrusted.code, 1);
  t.match(untrusted.output(), /STORE_TLS_UNTRUSTED/);
  t.match(untrusted.output(), `store at ${url}:`);
  t.match(untrusted.output(), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
  t.notMatch(untrusted.output(), /not answering yet/, 'not retried: waiting does not make a certificate trusted');

  const trusted = await runServer(join(dir, 'data2'), { COUCHDB_URL: url, NODE_EXTRA_CA_CERTS: ca.caCert });
  t.equal(trusted.state, 'started', trusted.output());
  t.match(trusted.output(), 'store: CouchDB at COUCHDB_URL');
  t.equal(await stopServer(trusted), 0);
});

t.test('item 6: a proxy answering 502 while its store is down is waited for with the cause; the server starts once the store is up', async (t) => {
  const dir = t.testdir();
  const storePort = await closedPort();
  const credential = { username: 'app', password: `store-pw-behind-proxy-${'x'.repeat(24)}` };
  const port = await closedPort();
  const proxy = await startProxy(port, storePort);
  t.teardown(() => proxy.stop());
  let couch: EmbeddedCouch | undefined;
  t.teardown(() => couch?.stop());
  const running = runServer(join(dir, 'data'), { COUCHDB_URL: `http://${credential.username}:${credential.password}@127.0.0.1:${port}` });
  // The probe asks the root again after a 502 (before, it took the 502 as an answer and the app's
  // own store check waited instead, without the address or the cause).
  const asked = Date.now();
  while (proxy.answered.filter((a) => a === 'GET / 502').length < 2 && Date.now() - asked < 15_000) await new Promise((r) => setTimeout(r, 100));
  couch = await startEmbeddedCouch({ dataDir: join(dir, 'couch'), port: storePort, credential });
  const o = await running;
  t.equal(o.state, 'started', o.output());
  t.ok(
    o.output().includes(`warning: store at http://127.0.0.1:${port} is not answering yet: answered with an error: a proxy whose CouchDB is down, or a CouchDB still starting (HTTP 502)`),
    'each wait names the address and the 502',
  );
  t.notMatch(o.output(), credential.password, 'never the store password');
  t.equal(await stopServer(o), 0);
});

t.test('item 6: the start waits once: a store that answers late and then fails on its databases stops it within the configured wait, naming the step', async (t) => {
  const dir = t.testdir();
  const couch = await startEmbeddedCouch({ dataDir: join(dir, 'couch') });
  t.teardown(() => couch.stop());
  const port = await closedPort();
  const late = 4;
  const wait = 6;
  let proxy: Proxy | undefined;
  const opening = setTimeout(() => void startProxy(port, couch.port, true).then((p) => (proxy = p)), late * 1000);
  t.teardown(() => {
    clearTimeout(opening);
    return proxy?.stop();
  });
  const started = Date.now();
  const o = await runServer(join(dir, 'data'), { COUCHDB_URL: `http://app:s3cretpw@127.0.0.1:${port}`, FIELDVAULT_STORE_WAIT_SECONDS: String(wait) });
  const elapsed = (Date.now() - started) / 1000;
  t.equal(o.code, 1);
  t.ok(proxy?.answered.includes('GET / 401'), 'the probe got its answer from the store once the proxy was up');
  t.match(o.output(), /STORE_CONNECT_FAILED/);
  t.ok(o.output().includes(`store at http://127.0.0.1:${port}: answered, then failed while the server opened it (db.get: HTTP 502)`), 'the address, the step and its status');
  const waited = Number(/waited ([\d.]+) s in all/.exec(o.output())?.[1] ?? 'NaN');
  t.ok(waited <= wait + 1, `the configured ${wait} s in all (reported ${waited} s)`);
  // Two waits would take about late + wait (the probe's, then the store check's own).
  t.ok(elapsed < late + wait - 1, `one wait: exited after ${elapsed.toFixed(1)} s`);
  t.notMatch(o.output(), /s3cretpw/);
});

t.test('item 7: a missing CouchDB URL file is named with what it is for', async (t) => {
  const missing = join(t.testdir(), 'nofile');
  const o = await runServer(join(t.testdir(), 'data'), { FIELDVAULT_COUCHDB_URL_FILE: missing });
  t.equal(o.code, 1);
  t.match(o.output(), /CONFIG_SECRET_FILE_INVALID/);
  t.match(o.output(), `the CouchDB URL file ${missing} (FIELDVAULT_COUCHDB_URL_FILE`);
  t.match(o.output(), /does not exist: run fieldvault-admin setup again or fix the path/);
  t.notMatch(o.output(), /KEK/);
});

t.test('item 8: the banner shows the fingerprint of an own certificate, the configured password length and where the store URL came from', async (t) => {
  const dir = t.testdir();
  const ca = makeCa(dir);
  const couch = await startEmbeddedCouch({ dataDir: join(dir, 'couch') });
  t.teardown(() => couch.stop());
  const urlFile = join(dir, 'couchdb-url');
  writeFileSync(urlFile, `${couch.url}\n`, { mode: 0o600 });
  const o = await runServer(join(dir, 'data'), {
    FIELDVAULT_TLS_CERT: ca.cert,
    FIELDVAULT_TLS_KEY: ca.key,
    FIELDVAULT_PASSWORD_MIN_LENGTH: '20',
    FIELDVAULT_COUCHDB_URL_FILE: urlFile,
  });
  t.equal(o.state, 'started', o.output());
  const fingerprint = execFileSync('openssl', ['x509', '-in', ca.cert, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).split('=')[1]?.trim() ?? 'none';
  t.match(o.output(), `TLS: certificate ${ca.cert}`);
  t.match(o.output(), `SHA-256 fingerprint ${fingerprint}`);
  // The public-key pin, computed as curl's documentation does it (admin audit s16, F7).
  const keyPin = execFileSync('sh', ['-c', `openssl x509 -in '${ca.cert}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`], { encoding: 'utf8' }).trim();
  t.match(o.output(), `public-key pin sha256//${keyPin} (stays the same when the certificate is renewed with the same key)`);
  t.match(o.output(), '--ca with the CA that issued it, or --pin with this fingerprint');
  t.match(o.output(), '<20+ characters of your own>');
  t.notMatch(o.output(), '15+ characters');
  t.match(o.output(), `store: CouchDB at the URL in ${urlFile}`);
  t.equal(await stopServer(o), 0);
});
