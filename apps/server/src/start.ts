/**
 * Starts a complete fieldvault server from an `AppConfig`: secrets, TLS, the store (embedded or
 * `COUCHDB_URL`), the Fastify app over HTTPS and the HTTP → HTTPS redirect. Used by `main.ts` and
 * by tests that need the real process lifecycle.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startEmbeddedCouch, type EmbeddedCouch } from '@fieldvault/couch-embedded';
import { FieldvaultError, isFieldvaultError, toErrorBody } from '@fieldvault/protocol';
import { kekId } from '@fieldvault/crypto';
import { buildApp } from '@fieldvault/server';
import { accessProblem, assertWritableDataDir } from './access.js';
import { certificateNotice, type CertificateNotice } from './cert-expiry.js';
import type { AppConfig } from './config.js';
import { assertPrivateFile, ensurePrivateDataDir, loadOrCreateKek, loadOrCreateServerId, setupTokenFile, writePrivateFile } from './secrets.js';
import { redirectHost, redirectTargets } from './redirect-target.js';
import { storeFailedAfterProbe, waitForStore } from './store-probe.js';
import { loadTls } from './tls.js';
import { SERVER_VERSION } from './version.js';

export interface RunningServer {
  readonly url: string;
  readonly httpUrl: string | null;
  readonly serverId: string;
  readonly tlsFingerprint: string;
  /** The certificate's public-key pin (tls.ts `keyPin`). */
  readonly tlsKeyPin: string;
  readonly selfSignedTls: boolean;
  readonly tlsCertFile: string;
  /** Set when the certificate expires within 30 days or has expired (at start). */
  readonly tlsNotice: CertificateNotice | null;
  /** This build's version (apps/server/package.json). */
  readonly version: string;
  /** Set while no admin exists: the one-time token for `POST /v1/setup/admin`. */
  readonly setupToken: string | null;
  readonly store: 'embedded' | 'couchdb';
  /** Where the CouchDB URL came from (null for the embedded store): shown in the banner. */
  readonly storeSource: string | null;
  /** Public id of the KEK in use (never the key). */
  readonly kekId: string;
  /** Minimum password length in force (FIELDVAULT_PASSWORD_MIN_LENGTH). */
  readonly passwordMinLength: number;
  /** Resolves after the listeners, the app and the embedded store have all stopped. */
  stop(): Promise<void>;
  /**
   * Resolves (with the reason) if the embedded store dies under the running server and cannot be
   * brought back (it is restarted on the same port after a crash; see `superviseStore`).
   */
  readonly storeCrashed: Promise<string>;
  /** Times the embedded store was restarted after a crash. */
  readonly storeRestarts: () => number;
}

export interface StartOptions {
  /** Where server log lines go (default stdout). */
  readonly logStream?: NodeJS.WritableStream;
  /** Where start-up warnings go (default stderr). */
  readonly warn?: (line: string) => void;
}

/**
 * @throws CONFIG_* for bad secrets or TLS material (CONFIG_DATA_DIR_UNWRITABLE when a file or
 * directory may not be written or read), STORE_START_FAILED when the store can't start.
 */
export async function startServer(config: AppConfig, options: StartOptions = {}): Promise<RunningServer> {
  try {
    return await start(config, options);
  } catch (err) {
    throw accessProblem(err, config) ?? err;
  }
}

async function start(config: AppConfig, options: StartOptions): Promise<RunningServer> {
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (process.getuid?.() === 0) {
    // Not refused: containers and test machines run as root. Said at every start (audit 9).
    warn('warning: the server runs as root: run it as its own unprivileged account that owns the data directory (docs/operations.md, "Hardening the machine")');
  }
  const dataDirWarning = ensurePrivateDataDir(config.dataDir);
  if (dataDirWarning !== null) warn(dataDirWarning);
  assertWritableDataDir(config);
  // Before the KEK: a refused start must not leave a KEK generated for nothing.
  const serverId = loadOrCreateServerId(join(config.dataDir, 'server-id'), config.serverId);
  // Secrets first: refuse to start (before touching the store) if any is exposed.
  const { kek, created: kekCreated } = loadOrCreateKek(config.kekFile);
  const tls = await loadTls(config);
  const tokenFile = setupTokenFile(config.dataDir);
  if (existsSync(tokenFile)) assertPrivateFile(tokenFile);

  let couch: EmbeddedCouch | null = null;
  let couchUrl = config.couchdbUrl ?? (config.couchdbUrlFile === null ? null : readCouchUrlFile(config.couchdbUrlFile));
  const storeSource = config.couchdbUrl !== null ? 'COUCHDB_URL' : config.couchdbUrlFile;
  // One wait for the whole start: the probe waits for an external store (with its reporting),
  // and the app's own store check only gets what is left of it, so it never starts a second one.
  const waitStarted = Date.now();
  const probed = couchUrl !== null;
  if (couchUrl !== null) {
    try {
      await waitForStore(couchUrl, config.storeWaitMs, warn);
    } catch (err) {
      if (kekCreated) rmSync(config.kekFile, { force: true }); // nothing was checked against it yet
      throw err;
    }
  }
  let storeCrashed: Promise<string> = new Promise<string>(() => {});
  let storeLog: StoreLog = (level, msg) => warn(level === 'info' ? msg : `warning: ${msg}`);
  let supervisor: StoreSupervisor | null = null;
  if (couchUrl === null) {
    couch = await startEmbeddedCouch({ dataDir: join(config.dataDir, 'couch') });
    // The URL carries the store's per-start credential (audit H1): it lives only in this process
    // and the store's; like COUCHDB_URL it is never logged (the couch plugin logs op and status).
    couchUrl = couch.url;
    // Plain lines until the app's logger exists, log records after (operator audit #7: alerting on
    // log levels must see a store crash).
    supervisor = superviseStore(couch, (level, msg, fields) => storeLog(level, msg, fields));
    storeCrashed = supervisor.gaveUp;
  }

  // The token exists only until the first admin is created; it is kept in a 0600 file so that a
  // restart before setup prints the same token instead of invalidating the one already shown.
  let setupToken: string | null = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : null;
  if (setupToken === null) setupToken = randomBytes(32).toString('base64url');

  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp({
      couch: { url: couchUrl, dbPrefix: config.couchDbPrefix, startupWaitMs: probed ? Math.max(0, waitStarted + config.storeWaitMs - Date.now()) : config.storeWaitMs },
      kek,
      serverId,
      maxSkewMs: config.maxSkewMs,
      password: { minLength: config.passwordMinLength },
      argon2: { maxQueued: config.loginQueue, maxQueuedPerClient: config.loginQueuePerClient },
      sync: { pullReadAhead: config.pullReadAhead },
      // Bodies of photo uploads in progress: beside the store, not in a shared temp directory.
      photos: { spoolDir: join(config.dataDir, 'spool') },
      session: { ttlSeconds: config.sessionTtlSeconds, adminTtlSeconds: config.adminSessionTtlSeconds, authCacheMs: config.authCacheMs },
      adminTotp: { required: config.adminTotpRequired },
      setupToken,
      logLevel: config.logLevel,
      rateLimit: { max: config.rateLimitPerMinute, authMax: config.authRateLimitPerMinute, timeWindowMs: 60_000 },
      trustProxy: config.trustProxy,
      http: {
        requestTimeoutMs: config.requestTimeoutMs,
        connectionTimeoutMs: config.idleTimeoutMs,
        maxConnections: config.maxConnections,
        maxConnectionsPerClient: config.maxConnectionsPerClient,
      },
      signups: config.signups,
      https: { key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' },
      ...(options.logStream === undefined ? {} : { logStream: options.logStream }),
    });
    // As early as the app's logger exists (only warnings from opening the store come before it),
    // so that after an upgrade the log says which build wrote what follows (admin audit s16, F9).
    app.log.info({ version: SERVER_VERSION }, `fieldvault server ${SERVER_VERSION} starting`);
    await app.ready();
    const built = app;
    storeLog = (level, msg, fields) => built.log[level]({ store: built.storeAddress, ...fields }, msg);
    // `npm run couch` started again writes another port and credential to the same file: when the
    // store fails, the server reads it again and follows the store there (multi-server audit L10).
    const urlFile = config.couchdbUrl === null ? config.couchdbUrlFile : null;
    if (urlFile !== null) {
      built.followStoreUrl({
        read: () => {
          try {
            return readCouchUrlFile(urlFile);
          } catch (err) {
            // Gone between two checks (`npm run couch` restarting): not a problem to report yet.
            if (!existsSync(urlFile)) return null;
            throw err;
          }
        },
      });
    }
  } catch (err) {
    await couch?.stop();
    if (isFieldvaultError(err) && err.code === 'CONFIG_KEK_MISMATCH') throw kekMismatch(err, config.kekFile, kekCreated);
    // A KEK created for this start is kept here: the store may hold its marker already.
    if (probed && isFieldvaultError(err) && err.code === 'STORE_UNAVAILABLE') throw storeFailedAfterProbe(couchUrl, err, waitStarted, config.storeWaitMs);
    throw err;
  }

  try {
    // Complete only once the first admin exists: a setup killed between its claim and the admin
    // keeps (or gets back) its token, and the next setup with it takes the stale claim over.
    if (await app.repo.isSetupComplete()) {
      setupToken = null;
      rmSync(tokenFile, { force: true });
    } else if (!existsSync(tokenFile)) {
      writePrivateFile(tokenFile, `${setupToken}\n`);
    }
  } catch (err) {
    await app.close();
    await couch?.stop();
    throw err;
  }

  // The redirect port first: Fastify logs "Server listening" as soon as HTTPS listens, which
  // read as "started" in a log viewer when the HTTP port then failed (audit 10).
  let redirect: Server | null = null;
  let httpsPort: number | null = null;
  let listening = 'FIELDVAULT_HTTP_PORT';
  try {
    if (config.httpPort !== null) redirect = await listenRedirect(config, () => httpsPort);
    listening = 'FIELDVAULT_PORT';
    await app.listen({ host: config.host, port: config.port });
    httpsPort = (app.server.address() as AddressInfo).port;
  } catch (err) {
    if (redirect !== null) await new Promise<void>((r) => redirect?.close(() => r()));
    await app.close();
    await couch?.stop();
    const port = listening === 'FIELDVAULT_PORT' ? config.port : (config.httpPort ?? 0);
    throw new FieldvaultError('CONFIG_INVALID', { detail: listenFailure(err, config.host, port, listening), cause: err });
  }

  // Every start, and once a day while it runs: a server under a service manager may run for months.
  const checkCertificate = (): CertificateNotice | null => {
    const notice = certificateNotice(tls, Date.now());
    if (notice !== null) app.log[notice.level]({ cert: tls.certFile, notAfter: notice.notAfter, daysLeft: notice.daysLeft }, notice.text);
    return notice;
  };
  const tlsNotice = checkCertificate();
  const certificateTimer = setInterval(checkCertificate, CERTIFICATE_CHECK_MS);
  certificateTimer.unref();

  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  let stopping: Promise<void> | null = null;
  return {
    url: `https://${shownHost}:${httpsPort}`,
    httpUrl: redirect === null ? null : `http://${shownHost}:${(redirect.address() as AddressInfo).port}`,
    serverId,
    tlsFingerprint: tls.fingerprint,
    tlsKeyPin: tls.keyPin,
    selfSignedTls: tls.selfSigned,
    tlsCertFile: tls.certFile,
    tlsNotice,
    version: SERVER_VERSION,
    setupToken,
    store: couch === null ? 'couchdb' : 'embedded',
    storeSource: couch === null ? storeSource : null,
    kekId: kekId(kek),
    passwordMinLength: config.passwordMinLength,
    storeCrashed,
    storeRestarts: () => supervisor?.restarts() ?? 0,
    stop: () => {
      stopping ??= (async () => {
        clearInterval(certificateTimer);
        if (redirect !== null) await new Promise<void>((r) => redirect?.close(() => r()));
        await app.close();
        await (supervisor?.stop() ?? couch?.stop());
      })();
      return stopping;
    },
  };
}

/** How often a running server checks its certificate's end date again. */
const CERTIFICATE_CHECK_MS = 86_400_000;

/**
 * The CouchDB URL (with the app user's password) from its secret file.
 * @throws CONFIG_SECRET_FILE_INSECURE, CONFIG_SECRET_FILE_INVALID (never quoting the content)
 */
function readCouchUrlFile(file: string): string {
  const what = `the CouchDB URL file ${file} (FIELDVAULT_COUCHDB_URL_FILE or <data>/secrets/couchdb-url: the store's URL with the app user's credentials, as written by fieldvault-admin setup)`;
  if (!existsSync(file)) {
    throw new FieldvaultError('CONFIG_SECRET_FILE_INVALID', { detail: `${what} does not exist: run fieldvault-admin setup again or fix the path` });
  }
  assertPrivateFile(file);
  const text = readFileSync(file, 'utf8').trim();
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
  } catch {
    // Never quote the content: it holds a password.
    throw new FieldvaultError('CONFIG_SECRET_FILE_INVALID', { detail: `${what} must hold one http(s) URL` });
  }
  return text;
}

/** CONFIG_KEK_MISMATCH from the store check, said in terms of the KEK file (ids only). */
function kekMismatch(err: FieldvaultError, file: string, created: boolean): FieldvaultError {
  const expected = String(err.details?.['storeKekId']);
  if (typeof err.details?.['recordedBy'] === 'string') {
    // Another server's databases (same prefix), not a lost KEK: the message says so already. A KEK
    // generated for this start sealed nothing and is not kept.
    if (created) rmSync(file, { force: true });
    return err;
  }
  if (created) {
    // The KEK generated a moment ago is not kept: nothing was sealed under it.
    rmSync(file, { force: true });
    return new FieldvaultError('CONFIG_KEK_MISMATCH', {
      detail: `the KEK file ${file} (FIELDVAULT_KEK_FILE) does not exist, but the store holds keys sealed under KEK id ${expected}; no new KEK was kept: restore the KEK file with id ${expected} from your backup to ${file}, or point FIELDVAULT_KEK_FILE at it`,
      details: err.details ?? {},
    });
  }
  return new FieldvaultError('CONFIG_KEK_MISMATCH', {
    detail: `the KEK in ${file} (FIELDVAULT_KEK_FILE) has id ${String(err.details?.['kekId'])}, but the store's keys are sealed under KEK id ${expected}: restore the KEK file with id ${expected} from your backup, or point FIELDVAULT_KEK_FILE at it`,
    details: err.details ?? {},
  });
}

/** Why a listener could not start, naming the address, the variable and the cause (audit item 5). */
function listenFailure(err: unknown, host: string, port: number, variable: string): string {
  const code = (err as { code?: unknown }).code;
  const where = `${host}:${port} (FIELDVAULT_HOST, ${variable})`;
  switch (code) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the port is in use by another program (EADDRINUSE); stop it or choose another ${variable}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${where}: host name "${host}" not found (${code}); set FIELDVAULT_HOST to an address or name of this machine`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: ${host} is not an address of this machine (EADDRNOTAVAIL); set FIELDVAULT_HOST to one of its addresses, or 0.0.0.0 for all`;
    case 'EACCES':
      return `cannot listen on ${where}: ports below 1024 need privileges (EACCES); choose a port from 1024 up and forward to it`;
    default:
      return `cannot listen on ${where}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
}

/** Where the supervisor reports the embedded store's crashes and restarts. */
type StoreLog = (level: 'error' | 'warn' | 'info', msg: string, fields: Record<string, unknown>) => void;

interface StoreSupervisor {
  /** Resolves when the store crashed too often or could not be restarted. */
  readonly gaveUp: Promise<string>;
  restarts(): number;
  /** Stops the current store and any restart in progress. */
  stop(): Promise<void>;
}

/** More crashes than this within `CRASH_WINDOW_MS` is a crash loop: give up (the process exits). */
const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 60_000;

/**
 * Keeps the embedded store running. After a crash it is started again on the same data directory
 * and port, so the app's store URL stays valid; meanwhile requests fail with STORE_UNAVAILABLE
 * (503) and phones retry. LevelDB has written every acknowledged write to its log before the store
 * answers, so a crash of the store process loses nothing acknowledged (a power cut can: the
 * embedded store does not fsync — production uses CouchDB, see docs/operations.md).
 */
function superviseStore(first: EmbeddedCouch, log: StoreLog): StoreSupervisor {
  let current = first;
  let restarts = 0;
  let stopped = false;
  let restarting: Promise<void> | null = null;
  const crashes: number[] = [];
  let giveUp: (reason: string) => void = () => {};
  const gaveUp = new Promise<string>((resolve) => (giveUp = resolve));

  const watch = (store: EmbeddedCouch): void => {
    store.once('crash', (info: { code: number | null; signal: string | null }) => {
      if (stopped) return;
      const reason = `embedded store exited (code ${String(info.code)}, signal ${String(info.signal)})`;
      const now = Date.now();
      crashes.push(now);
      while (crashes.length > 0 && (crashes[0] as number) < now - CRASH_WINDOW_MS) crashes.shift();
      if (crashes.length > MAX_CRASHES) {
        giveUp(`${reason}; ${crashes.length} crashes within ${CRASH_WINDOW_MS / 1000} s`);
        return;
      }
      log('error', `${reason}; restarting it on port ${store.port} (requests answer 503 meanwhile)`, { code: info.code, signal: info.signal });
      restarting = restart(store, reason);
    });
  };

  const restart = async (dead: EmbeddedCouch, reason: string): Promise<void> => {
    // The old process may hold its LevelDB lock for a moment after SIGKILL: retry briefly.
    for (let attempt = 1; !stopped; attempt++) {
      try {
        // Same port and credential: the app's store URL stays valid across the restart.
        const store = await startEmbeddedCouch({ dataDir: dead.dataDir, port: dead.port, credential: dead.credential });
        if (stopped) {
          await store.stop();
          return;
        }
        current = store;
        restarts++;
        watch(store);
        // At warn, not info: the default level (and the tests' `warn`) must show that it came back.
        log('warn', `embedded store restarted (pid ${store.pid}) after: ${reason}`, { pid: store.pid });
        return;
      } catch (err) {
        if (attempt >= 20) {
          giveUp(`${reason}; restart failed: ${err instanceof Error ? err.message : String(err)}`);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 2_000)));
      }
    }
  };

  watch(first);
  return {
    gaveUp,
    restarts: () => restarts,
    stop: async () => {
      stopped = true;
      await restarting;
      await current.stop();
    },
  };
}

/**
 * Plain HTTP only ever answers with a redirect to the HTTPS origin (no content over cleartext;
 * 503 until `httpsPort` knows it), and only to a host this server is known by
 * (`redirect-target.ts`, security audit L1); one answer per connection, and the same request
 * deadline as HTTPS (audit M1).
 */
async function listenRedirect(config: AppConfig, httpsPort: () => number | null): Promise<Server> {
  const { host } = config;
  const port = config.httpPort ?? 0;
  const targets = redirectTargets(host, config.publicHosts);
  const server = createServer({ requestTimeout: config.requestTimeoutMs, headersTimeout: Math.min(60_000, config.requestTimeoutMs) }, (req, res) => {
    const to = httpsPort();
    if (to === null) {
      // The moment between this listener and the HTTPS one: nowhere to redirect to yet.
      res.writeHead(503, { 'retry-after': '1', 'content-length': '0', connection: 'close' });
      res.end();
      return;
    }
    const target = redirectHost(targets, req.headers.host);
    if (target === null) {
      const body = JSON.stringify(toErrorBody(new FieldvaultError('INPUT_HOST_UNKNOWN')));
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
      return;
    }
    const path = typeof req.url === 'string' && req.url.startsWith('/') ? req.url : '/';
    res.writeHead(308, { location: `https://${target}:${to}${path}`, 'content-length': '0', connection: 'close' });
    res.end();
  });
  server.setTimeout(config.idleTimeoutMs);
  if (config.maxConnections > 0) server.maxConnections = config.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
