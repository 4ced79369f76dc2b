import type { FastifyInstance } from 'fastify';
import { isFieldvaultError } from '@fieldvault/protocol';
import { storeAddress } from './endpoint.js';
import { differsFrom } from './store-identity.js';

/** The URL file is read again at most this often while the store fails. */
export const STORE_URL_RECHECK_MS = 3_000;

export interface FollowStoreOptions {
  /**
   * The store URL the operator's file names now (credential included), or null while the file is
   * missing (`npm run couch` removes it when it stops and writes it again when it starts). Throws a
   * catalogued error when the file cannot be used (unsafe mode, not a URL, a directory).
   */
  readonly read: () => string | null;
  readonly minIntervalMs?: number;
}

/**
 * Follows a store that moved (multi-server audit L10): `npm run couch` started again listens on
 * another port and gives a new credential, written to the same URL file; the server used to fail
 * with STORE_UNAVAILABLE until it was restarted. When the store does not answer, or refuses the
 * credential, the file is read again (at most every `minIntervalMs`, on the app's clock). A
 * different URL is taken only once the store there answers and is the same store (its databases,
 * its KEK marker naming this server's KEK, the store generation phones' checkpoints name): then
 * every client of the app switches to it and a warn record says so. A different store is not
 * taken; an error record says why, once per URL. Records name host:port, never the credential.
 *
 * @returns a function that stops following.
 */
export function followStoreUrl(app: FastifyInstance, options: FollowStoreOptions): () => void {
  const minIntervalMs = options.minIntervalMs ?? STORE_URL_RECHECK_MS;
  let lastCheck = Number.NEGATIVE_INFINITY;
  let checking = false;
  // URLs found to be another store, and file problems: each logged once, not at every check.
  const reported = new Set<string>();

  const reportOnce = (key: string, report: () => void): void => {
    if (reported.has(key)) return;
    reported.add(key);
    report();
  };

  const readUrl = (): string | null => {
    try {
      const url = options.read();
      // Missing for a moment is what a restarting `npm run couch` does: not worth a warning.
      if (url === null) app.log.debug("the store's URL file does not exist now: checked again at the next failure");
      return url;
    } catch (err) {
      // A file that is there but unusable (edited by hand, wrong mode, a directory) is the
      // operator's to fix: said once at warn, else the server refuses requests with no reason given.
      const code = isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR';
      const message = err instanceof Error ? err.message : String(err);
      reportOnce(`read ${message}`, () => app.log.warn({ code }, `the store's URL file cannot be used: ${message}`));
      return null;
    }
  };

  const check = async (): Promise<void> => {
    const url = readUrl();
    const endpoint = app.storeEndpoint;
    if (url === null || url === endpoint.url) return;
    const from = endpoint.address;
    const to = storeAddress(url);
    const mismatch = await differsFrom(url, { dbPrefix: app.fieldvaultConfig.couch.dbPrefix, kekId: app.kekId, generation: app.repo.seenGeneration });
    if (mismatch === null) {
      if (endpoint.url === url) return;
      endpoint.switchTo(url);
      reported.clear();
      app.log.warn(
        { store: to, from },
        from === to ? `the store at ${to} has a new credential (its URL file changed): this server uses it now` : `the store moved: ${from} → ${to} (its URL file changed): this server uses it now`,
      );
      return;
    }
    if (!mismatch.lasting) {
      app.log.debug({ store: to, from }, `the store's URL file names ${to}, which ${mismatch.reason.replace(/^it /, '')}: checked again at the next failure`);
      return;
    }
    reportOnce(`url ${url}`, () =>
      app.log.error(
        { store: from, named: to, reason: mismatch.reason },
        `the store's URL file now names ${to}, but ${mismatch.reason}: this server does not switch to it and goes on refusing requests; check the file, or restart this server to start on that store`,
      ),
    );
  };

  const unwatch = app.storeEndpoint.watch((signal) => {
    // A 5xx is the store (or its proxy) unwell where it is, not a store that moved.
    if (signal.kind === 'answered' || (signal.kind === 'no-answer' && signal.status !== undefined)) return;
    const now = app.now();
    if (checking || now - lastCheck < minIntervalMs) return;
    lastCheck = now;
    checking = true;
    check()
      .catch((err: unknown) => app.log.warn({ code: isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR' }, "could not check the store's URL file"))
      .finally(() => {
        checking = false;
      });
  });
  return unwatch;
}
