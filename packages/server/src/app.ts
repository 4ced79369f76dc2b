import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { createClock } from '@fieldvault/protocol';
import { adminAuthPlugin } from './admin-auth/plugin.js';
import { auditPlugin } from './audit/plugin.js';
import { backupPlugin } from './backup/plugin.js';
import { authPlugin } from './auth/plugin.js';
import { resolveConfig, type BuildAppInput } from './config.js';
import { couchPlugin } from './couch/plugin.js';
import { devicesPlugin } from './devices/plugin.js';
import { formsPlugin } from './forms/plugin.js';
import { healthPlugin } from './health/plugin.js';
import { kekGuardPlugin } from './kek/plugin.js';
import './http/context.js';
import { createClientErrorHandler } from './http/client-errors.js';
import { installErrorHandling } from './http/error-handler.js';
import { checkJsonCharset } from './http/json-charset.js';
import { loggerOptions, RequestLogController } from './http/logger.js';
import { limitConnections } from './http/connection-limits.js';
import { installRateLimits } from './http/rate-limit.js';
import { parseStrictJson } from './http/strict-json.js';
import { installValidators } from './http/validation.js';
import { photosPlugin } from './photos/plugin.js';
import { recordsPlugin } from './records/plugin.js';
import { recordsDigestPlugin } from './records-digest/plugin.js';
import { sessionsPlugin } from './sessions/plugin.js';
import { signupsPlugin } from './signups/plugin.js';
import { syncPlugin } from './sync/plugin.js';
import { credentialsPlugin } from './users/credentials.js';
import { usersPlugin } from './users/plugin.js';
import { SetupGate } from './users/setup-gate.js';

/**
 * How long an idle keep-alive connection stays open. The SDK reuses a verified connection for the
 * requests of a sync and closes it after 4 s idle (client `IDLE_SOCKET_MS`): the server's limit is
 * longer, so it is the phone that closes an idle connection and never writes a request into one the
 * server is closing. Shorter than Fastify's default (72 s), so idle phones do not hold sockets long.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 10_000;

/** HSTS for one year once the server is served over TLS (DESIGN.md §5). */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * Builds the fieldvault server: one Fastify instance with every feature plugin registered.
 * It does not listen; call `app.listen()` (apps/server) or `app.inject()` (tests). The databases
 * are created (or reused) when the app becomes ready.
 *
 * @throws CONFIG_INVALID listing every invalid setting.
 */
export async function buildApp(input: BuildAppInput): Promise<FastifyInstance> {
  const config = resolveConfig(input);
  const now = input.now ?? Date.now;

  // Responses carry tokens and keys: never cache them anywhere; never sniff their type.
  const tls = input.https !== undefined;
  const securityHeaders: Readonly<Record<string, string>> = {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...(tls ? { 'strict-transport-security': HSTS } : {}),
  };

  const options: FastifyServerOptions = {
    logger: loggerOptions(config.logLevel, input.logStream, config.serverId),
    logController: new RequestLogController(),
    // Malformed HTTP, oversized headers and timeouts get a catalogued body too (bad-input audit F2).
    clientErrorHandler: createClientErrorHandler({ headers: securityHeaders }),
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    // Our own ids: a client-chosen request id would let a caller forge log correlation.
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // Fastify's own 503 while closing is not a catalogued body; requests in flight finish instead.
    return503OnClosing: false,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Slow clients (security audit M1): a request must arrive whole within `requestTimeoutMs`,
    // and a silent socket is closed after `connectionTimeoutMs` (see config.ts for the values).
    requestTimeout: config.http.requestTimeoutMs,
    connectionTimeout: config.http.connectionTimeoutMs,
    // The store plugin may wait `startupWaitMs` for a store that is still starting; avvio's
    // default 10 s plugin timeout would cut that wait short with an uncatalogued error.
    pluginTimeout: config.couch.startupWaitMs + 30_000,
  };
  // With `https` Node creates a TLS server; the instance's API is the same, so it is typed as
  // the default one (Fastify's overloads would otherwise make every plugin generic over it).
  // Node checks request deadlines every `connectionsCheckingInterval` (default 30 s); a shorter
  // interval keeps a short configured timeout meaningful. Headers must come within the request time.
  const nodeHttp = {
    connectionsCheckingInterval: Math.min(5_000, Math.max(250, Math.floor(config.http.requestTimeoutMs / 4))),
    headersTimeout: Math.min(60_000, config.http.requestTimeoutMs),
  };
  const app: FastifyInstance = Fastify(
    input.https === undefined ? { ...options, http: nodeHttp } : ({ ...options, https: { ...nodeHttp, ...input.https } } as FastifyServerOptions),
  );
  limitConnections(app.server, {
    max: config.http.maxConnections,
    // Behind a proxy every socket is the proxy's: a per-address socket cap would cap everyone.
    maxPerClient: config.trustProxy ? 0 : config.http.maxConnectionsPerClient,
  });

  installValidators(app);
  installErrorHandling(app);

  // Only JSON is accepted, and only strict JSON: no repeated keys, no prototype keys.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    try {
      checkJsonCharset(request.headers['content-type']);
      done(null, parseStrictJson(typeof body === 'string' ? body : body.toString('utf8')));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  // A POST without a body is validated as `{}`: action routes need no body, and routes with
  // required fields still refuse it. A body of `null` or `[]` is validated as sent.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.method === 'POST') request.body = {};
  });

  app.addHook('onSend', async (_request, reply) => {
    // A refused or oversized request may still be sending its body: end the connection rather
    // than read on or keep it alive (security audit M1: 429'd sockets stayed open).
    if (reply.statusCode === 429 || reply.statusCode === 413) void reply.header('connection', 'close');
    void reply.headers(securityHeaders);
  });

  app.decorate('fieldvaultConfig', config);
  app.decorate('now', now);
  app.decorate('clock', createClock({ node: config.serverId, now, maxSkewMs: config.maxSkewMs }));
  app.decorate('setupGate', new SetupGate());

  // First onRequest hook of every route (and of unknown ones): counted before any store lookup.
  await installRateLimits(app, { max: config.rateLimit.max, timeWindowMs: config.rateLimit.timeWindowMs });

  await app.register(couchPlugin, { url: config.couch.url, dbPrefix: config.couch.dbPrefix, startupWaitMs: config.couch.startupWaitMs });
  // Before any route can seal or open a key: the KEK must be the one the store's keys are under.
  await app.register(kekGuardPlugin);
  await app.register(sessionsPlugin);
  await app.register(auditPlugin);
  await app.register(credentialsPlugin);
  await app.register(usersPlugin);
  await app.register(adminAuthPlugin);
  await app.register(authPlugin);
  await app.register(devicesPlugin);
  await app.register(formsPlugin);
  await app.register(syncPlugin);
  await app.register(photosPlugin);
  await app.register(recordsPlugin);
  await app.register(backupPlugin);
  await app.register(recordsDigestPlugin);
  await app.register(signupsPlugin);
  await app.register(healthPlugin);

  if (config.sweepIntervalSeconds > 0) {
    let timer: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      timer = setInterval(() => {
        app.repo.sweepExpired(now()).then(
          (removed) => {
            if (removed > 0) app.log.info({ removed }, 'expired sessions, challenges and tokens removed');
          },
          (err: unknown) => app.log.warn({ code: (err as { code?: unknown }).code }, 'sweep of expired sessions failed'),
        );
      }, config.sweepIntervalSeconds * 1000);
      timer.unref();
    });
    app.addHook('onClose', async () => {
      if (timer !== undefined) clearInterval(timer);
    });
  }

  return app;
}
