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
import { FieldvaultError } from '@fieldvault/protocol';
import { buildApp } from '@fieldvault/server';
import type { AppConfig } from './config.js';
import { assertPrivateFile, loadOrCreateKek, loadOrCreateServerId, writePrivateFile } from './secrets.js';
import { loadTls } from './tls.js';

export interface RunningServer {
  readonly url: string;
  readonly httpUrl: string | null;
  readonly serverId: string;
  readonly tlsFingerprint: string;
  readonly selfSignedTls: boolean;
  readonly tlsCertFile: string;
  /** Set while no admin exists: the one-time token for `POST /v1/setup/admin`. */
  readonly setupToken: string | null;
  readonly store: 'embedded' | 'couchdb';
  /** Resolves after the listeners, the app and the embedded store have all stopped. */
  stop(): Promise<void>;
  /** Resolves (with the reason) if the embedded store dies under the running server. */
  readonly storeCrashed: Promise<string>;
}

export interface StartOptions {
  /** Where server log lines go (default stdout). */
  readonly logStream?: NodeJS.WritableStream;
}

/**
 * @throws CONFIG_* for bad secrets or TLS material, STORE_START_FAILED when the store can't start.
 */
export async function startServer(config: AppConfig, options: StartOptions = {}): Promise<RunningServer> {
  // Secrets first: refuse to start (before touching the store) if any is exposed.
  const { kek } = loadOrCreateKek(config.kekFile);
  const serverId = config.serverId ?? loadOrCreateServerId(join(config.dataDir, 'server-id'));
  const tls = await loadTls(config);
  const setupTokenFile = join(config.dataDir, 'secrets', 'setup-token');
  if (existsSync(setupTokenFile)) assertPrivateFile(setupTokenFile);

  let couch: EmbeddedCouch | null = null;
  let couchUrl = config.couchdbUrl;
  let storeCrashed: Promise<string> = new Promise<string>(() => {});
  if (couchUrl === null) {
    couch = await startEmbeddedCouch({ dataDir: join(config.dataDir, 'couch') });
    couchUrl = couch.url;
    const c = couch;
    storeCrashed = new Promise<string>((resolve) => {
      c.once('crash', (info: { code: number | null; signal: string | null }) =>
        resolve(`embedded store exited (code ${String(info.code)}, signal ${String(info.signal)})`),
      );
    });
  }

  // The token exists only until the first admin is created; it is kept in a 0600 file so that a
  // restart before setup prints the same token instead of invalidating the one already shown.
  let setupToken: string | null = existsSync(setupTokenFile) ? readFileSync(setupTokenFile, 'utf8').trim() : null;
  if (setupToken === null) setupToken = randomBytes(32).toString('base64url');

  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp({
      couch: { url: couchUrl, dbPrefix: config.couchDbPrefix },
      kek,
      serverId,
      maxSkewMs: config.maxSkewMs,
      password: { minLength: config.passwordMinLength },
      session: { ttlSeconds: config.sessionTtlSeconds },
      setupToken,
      logLevel: config.logLevel,
      rateLimit: { max: config.rateLimitPerMinute, authMax: config.authRateLimitPerMinute, timeWindowMs: 60_000 },
      trustProxy: config.trustProxy,
      https: { key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' },
      ...(options.logStream === undefined ? {} : { logStream: options.logStream }),
    });
    await app.ready();
  } catch (err) {
    await couch?.stop();
    throw err;
  }

  if (await app.repo.isSetupComplete()) {
    setupToken = null;
    rmSync(setupTokenFile, { force: true });
  } else if (!existsSync(setupTokenFile)) {
    writePrivateFile(setupTokenFile, `${setupToken}\n`);
  }

  let redirect: Server | null = null;
  try {
    await app.listen({ host: config.host, port: config.port });
    const httpsPort = (app.server.address() as AddressInfo).port;
    if (config.httpPort !== null) redirect = await listenRedirect(config.host, config.httpPort, httpsPort);
  } catch (err) {
    await app.close();
    await couch?.stop();
    throw new FieldvaultError('CONFIG_INVALID', { detail: `cannot listen on ${config.host}:${config.port} or the HTTP port`, cause: err });
  }

  const httpsPort = (app.server.address() as AddressInfo).port;
  const shownHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  let stopping: Promise<void> | null = null;
  return {
    url: `https://${shownHost}:${httpsPort}`,
    httpUrl: redirect === null ? null : `http://${shownHost}:${(redirect.address() as AddressInfo).port}`,
    serverId,
    tlsFingerprint: tls.fingerprint,
    selfSignedTls: tls.selfSigned,
    tlsCertFile: tls.certFile,
    setupToken,
    store: couch === null ? 'couchdb' : 'embedded',
    storeCrashed,
    stop: () => {
      stopping ??= (async () => {
        if (redirect !== null) await new Promise<void>((r) => redirect?.close(() => r()));
        await app.close();
        await couch?.stop();
      })();
      return stopping;
    },
  };
}

/** Plain HTTP only ever answers with a redirect to the HTTPS origin (no content over cleartext). */
async function listenRedirect(host: string, port: number, httpsPort: number): Promise<Server> {
  const server = createServer((req, res) => {
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '');
    // Only a plain host name or address is echoed back; anything odd falls back to localhost.
    const target = /^[a-zA-Z0-9.-]{1,253}$|^\[[0-9a-fA-F:]+\]$/.test(hostHeader) ? hostHeader : 'localhost';
    const path = typeof req.url === 'string' && req.url.startsWith('/') ? req.url : '/';
    res.writeHead(308, { location: `https://${target}:${httpsPort}${path}`, 'content-length': '0' });
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
