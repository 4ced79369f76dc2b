import fp from 'fastify-plugin';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { FieldvaultError, HEALTH_PATH, HealthSchema, type Health } from '@fieldvault/protocol';
import { storeError } from '../couch/store-errors.js';
import { responses } from '../http/schemas.js';

/**
 * How long a probe waits for the store. A store that accepts the connection but does not answer
 * is down for the probe's caller too; without a bound every probe would hang as long as the
 * caller's own timeout, and the load balancer would learn nothing until then.
 */
export const HEALTH_STORE_TIMEOUT_MS = 5_000;

/**
 * How long a store check, successful or not, answers later probes without asking the store again.
 * Probes are unauthenticated and on a limit of their own, so without this any address could add
 * its whole probe budget of store requests (review s17 finding 6), and against a store that is
 * down (review s17, not changed then) a flood of probes would add one request each to a store
 * that is struggling to come back. Monitoring needs a few probes a minute, and one second is far
 * below any health-check interval: a store back up is seen within a second.
 */
export const HEALTH_REUSE_MS = 1_000;

/**
 * `GET /v1/health`: unauthenticated, for load balancers, service watchdogs and monitoring.
 * 200 `{ "status": "ok" }` when one cheap store request (the info of one of our databases) is
 * answered; 503 STORE_UNAVAILABLE (through the error handler, so also the store outage log)
 * otherwise. The database info needs the app user's rights: a store that answers but refuses
 * our credential, or lost our database, is down for this server as well.
 *
 * No version, server id or store address in the answer: an anonymous caller learns up or down.
 * No audit record. Logged once per probe at debug (http/logger.ts, `probe`). Rate limited on its
 * own counter per address, not on the address's shared one (http/rate-limit.ts, `shared: false`),
 * so monitoring behind the phones' address can't use up their budget, and a flood of probes is
 * still refused. Probes arriving together share one store request, and a check's outcome is
 * reused for HEALTH_REUSE_MS.
 */
export const healthPlugin = fp(
  async (app) => {
    const limits = app.fieldvaultConfig.rateLimit;
    let inFlight: Promise<void> | undefined;
    /** The last store check: when it started (app clock) and, if it failed, its error. */
    let last: { at: number; failure: FieldvaultError | undefined } | undefined;

    const checkStore = async (): Promise<void> => {
      const name = app.repo.databaseNames[0];
      if (name === undefined) throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'health.check' } });
      const signal = AbortSignal.timeout(HEALTH_STORE_TIMEOUT_MS);
      try {
        // nano passes `signal` on to fetch; its request type does not declare it.
        await app.storeEndpoint.server.request({ db: name, method: 'get', signal } as Parameters<typeof app.storeEndpoint.server.request>[0]);
      } catch (err) {
        if (signal.aborted) throw new FieldvaultError('STORE_UNAVAILABLE', { details: { op: 'health.check', cause: 'ETIMEDOUT', retryAfterSeconds: 2 } });
        const fv = storeError(err, 'health.check');
        // Reached but not usable (our database gone): down for this server all the same.
        if (fv.code !== 'STORE_UNAVAILABLE') {
          throw new FieldvaultError('STORE_UNAVAILABLE', { details: { ...fv.details, retryAfterSeconds: 2 } });
        }
        throw fv;
      }
    };

    app.withTypeProvider<TypeBoxTypeProvider>().get(
      HEALTH_PATH,
      {
        config: { probe: true, rateLimit: { max: limits.max, timeWindow: limits.timeWindowMs, shared: false } },
        schema: { response: responses({ 200: HealthSchema }) },
      },
      async (): Promise<Health> => {
        const now = app.now();
        // `now >= last.at` too: a clock set back must not keep an old answer alive.
        if (last !== undefined && now >= last.at && now - last.at < HEALTH_REUSE_MS) {
          if (last.failure === undefined) return { status: 'ok' };
          // A new error each time: the error handler's own bookkeeping is per request.
          const { code, details } = last.failure;
          throw new FieldvaultError(code, details === undefined ? {} : { details });
        }
        inFlight ??= checkStore().then(
          () => {
            inFlight = undefined;
            last = { at: now, failure: undefined };
          },
          (err: unknown) => {
            inFlight = undefined;
            last = { at: now, failure: err instanceof FieldvaultError ? err : undefined };
            if (last.failure === undefined) last = undefined;
            throw err;
          },
        );
        await inFlight;
        return { status: 'ok' };
      },
    );
  },
  { name: 'fieldvault-health', fastify: '5.x', dependencies: ['fieldvault-couch'] },
);
