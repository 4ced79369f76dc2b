import { isFieldvaultError } from '@fieldvault/protocol';
import fp from 'fastify-plugin';
import { createCouchRepository, type CouchRepository } from './couch-repository.js';
import { StoreEndpoint, storeAddress } from './endpoint.js';
import { followStoreUrl, type FollowStoreOptions } from './store-move.js';
import { StoreOutageLog } from './store-outage.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The CouchDB repository: the only way the server reaches its store. */
    repo: CouchRepository;
    /** `host:port` of the store in use (never its credentials): named in the log when it fails. */
    readonly storeAddress: string;
    /** Where the store is; switched when it moved (apps/server follows a CouchDB URL file). */
    storeEndpoint: StoreEndpoint;
    /** The outage log: requests refused while the store does not answer (store-outage.ts). */
    storeOutage: StoreOutageLog;
    /** Follows the store to the URL its file names when it moved (store-move.ts); stops when the app closes. */
    followStoreUrl: (options: FollowStoreOptions) => void;
  }
}

export interface CouchPluginOptions {
  readonly url: string;
  readonly dbPrefix: string;
  /**
   * How long to keep trying a store that does not answer yet (0: try once). The runnable server
   * (apps/server) waits for an external store itself first and passes only what is left of that
   * one wait, so a start never waits twice.
   */
  readonly startupWaitMs: number;
}

export { storeAddress };

/** Pause between attempts while waiting for the store at start: short first, then every 2 s. */
const RETRY_DELAYS_MS = [250, 500, 1_000, 2_000] as const;

/**
 * Creates the databases on first start (reusing them later) and decorates `app.repo`.
 *
 * A store that is not answering yet is waited for, up to `startupWaitMs`: a real CouchDB may come
 * up after the server (service ordering, a container restart), and a busy machine can make the
 * embedded one slow to answer its first requests. Only STORE_UNAVAILABLE is retried; a store that
 * answers but refuses (setup missing, not CouchDB 3.x) stops the start at once.
 */
export const couchPlugin = fp<CouchPluginOptions>(
  async (app, options) => {
    // Every store client of this app takes its databases from this one endpoint (`app.storeEndpoint`:
    // the KEK guard, sign-up and backup plugins pass it on), so a switch reaches them all.
    const endpoint = new StoreEndpoint(options.url);
    const repo = createCouchRepository({ url: options.url, dbPrefix: options.dbPrefix, endpoint });
    const deadline = Date.now() + options.startupWaitMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await repo.init();
        // Read (or made) now, so that a store that moved is checked against it from the start,
        // not only once this process served a pull (store-move.ts).
        await repo.storeGeneration();
        break;
      } catch (err) {
        const delay = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)] ?? 2_000;
        if (!isFieldvaultError(err) || err.code !== 'STORE_UNAVAILABLE' || Date.now() + delay > deadline) throw err;
        // The URL may carry the app user's password: only the operation and status are logged.
        app.log.warn({ code: err.code, details: err.details, store: storeAddress(options.url), attempt: attempt + 1 }, 'the store is not answering yet; waiting for it');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
    app.decorate('repo', repo);
    app.decorate('storeEndpoint', endpoint);
    app.decorate('storeAddress', { getter: () => endpoint.address });
    const outage = new StoreOutageLog(app.log, () => app.now(), () => endpoint.address);
    app.decorate('storeOutage', outage);
    const unwatch = endpoint.watch((signal) => {
      if (signal.kind === 'answered') outage.answered();
    });
    const stops: Array<() => void> = [unwatch];
    app.decorate('followStoreUrl', (follow: FollowStoreOptions) => {
      stops.push(followStoreUrl(app, follow));
    });
    app.addHook('onClose', async () => {
      for (const stop of stops) stop();
    });
  },
  { name: 'fieldvault-couch', fastify: '5.x' },
);
