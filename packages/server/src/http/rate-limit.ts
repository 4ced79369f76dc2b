import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { FieldvaultError } from '@fieldvault/protocol';
import { clientKey } from './client-key.js';

/** A route's own limit, as routes declare it: `config: { rateLimit: { max, timeWindow } }`. */
interface RouteLimit {
  readonly max: number;
  readonly timeWindow: number;
  /**
   * false: the route counts against its own limit only, not against the address's shared one.
   * For the health probe: monitoring behind the same address as phones (a NAT, an office) must not
   * use up the phones' budget, while a flood of probes is still refused by the route's own limit.
   */
  readonly shared: boolean;
}

type Limiter = ReturnType<FastifyInstance['createRateLimit']>;

/**
 * Per-IP rate limits, counted in the first `onRequest` hook of every request: before a route's
 * own hooks (session lookup, upload spool) and for unknown routes too, so that a flood of
 * requests with a bad session token, or of 404s, is refused before it costs a store lookup
 * (operations audit, item 1).
 *
 * Why not `@fastify/rate-limit`'s `global: true`: it appends its hook after the route's own
 * `onRequest` hooks, so `requireAuth` answered 401 (after a store read) before the request was
 * counted, and the not-found handler was not limited at all. The plugin still keeps the
 * counters; only where they are checked moves here.
 *
 * Every request counts against `max`; a route that declares its own (stricter) limit — the
 * login-like routes — is also counted against that one, per route as before. A route that
 * declares `shared: false` (the health probe) counts against its own limit only.
 */
export async function installRateLimits(app: FastifyInstance, options: { max: number; timeWindowMs: number }): Promise<void> {
  // Routes' `config.rateLimit` is read below; the plugin must not add its own (late) hooks for it.
  const routeLimits = new Map<string, RouteLimit>();
  app.addHook('onRoute', (route) => {
    const limit = route.config?.rateLimit;
    if (typeof limit !== 'object' || limit === null) return;
    const { max, timeWindow, shared = true } = limit as { max?: unknown; timeWindow?: unknown; shared?: unknown };
    if (typeof max !== 'number' || typeof timeWindow !== 'number' || typeof shared !== 'boolean') {
      throw new Error(`route ${route.url}: config.rateLimit needs numeric max and timeWindow (and boolean shared)`);
    }
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) routeLimits.set(`${method} ${route.url}`, { max, timeWindow, shared });
    route.config = { ...route.config, rateLimit: false };
  });

  // An IPv6 /64 is one client (client-key.ts): otherwise one subscriber could rotate addresses.
  const keyGenerator = (request: FastifyRequest): string => clientKey(request.ip);
  await app.register(rateLimit, { global: false, max: options.max, timeWindow: options.timeWindowMs, keyGenerator });

  const perIp = app.createRateLimit({ max: options.max, timeWindow: options.timeWindowMs, keyGenerator });
  // One counter store per limited route, created on first use (routes are all known by then).
  const perRoute = new Map<string, Limiter>();
  const routeLimiter = (request: FastifyRequest): { limiter: Limiter; shared: boolean } | undefined => {
    const key = `${request.method} ${request.routeOptions.url ?? ''}`;
    const limit = routeLimits.get(key);
    if (limit === undefined) return undefined;
    let limiter = perRoute.get(key);
    if (limiter === undefined) {
      limiter = app.createRateLimit({ max: limit.max, timeWindow: limit.timeWindow, keyGenerator });
      perRoute.set(key, limiter);
    }
    return { limiter, shared: limit.shared };
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const own = routeLimiter(request);
    if (own?.shared !== false) await check(perIp, request, reply);
    if (own !== undefined) await check(own.limiter, request, reply);
  });
}

/** @throws RATE_LIMITED (429, Retry-After) when `limiter` says this address is over its limit. */
async function check(limiter: Limiter, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const result = await limiter(request);
  if (result.isAllowed || !result.isExceeded) return;
  const retryAfterSeconds = Math.max(1, result.ttlInSeconds);
  void reply.header('x-ratelimit-limit', String(result.max));
  void reply.header('x-ratelimit-remaining', '0');
  void reply.header('x-ratelimit-reset', String(retryAfterSeconds));
  throw new FieldvaultError('RATE_LIMITED', { details: { retryAfterSeconds } });
}
