import { isFieldvaultError } from '@fieldvault/protocol';
import fp from 'fastify-plugin';
import { createCouchRepository, type CouchRepository } from './couch-repository.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The CouchDB repository: the only way the server reaches its store. */
    repo: CouchRepository;
    /** `host:port` of the store (never its credentials): named in the log when it fails. */
    storeAddress: string;
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

/** `host:port` of a store URL: what an operator needs to find it, without the user and password it may carry. */
export function storeAddress(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port === '' ? (u.protocol === 'https:' ? '443' : '80') : u.port}`;
}

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
    const repo = createCouchRepository({ url: options.url, dbPrefix: options.dbPrefix });
    const deadline = Date.now() + options.startupWaitMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await repo.init();
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
    app.decorate('storeAddress', storeAddress(options.url));
  },
  { name: 'fieldvault-couch', fastify: '5.x' },
);
