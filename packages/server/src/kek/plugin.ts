import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { kekId } from '@fieldvault/crypto';
import { FieldvaultError } from '@fieldvault/protocol';
import { CouchKekMarker } from '../couch/kek-marker.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Public id of the server KEK in use (never the key): for start-up messages and backups. */
    kekId: string;
  }
}

/**
 * Refuses to start with a KEK other than the one the store's sealed material is under (operations
 * audit, item 3). Without this a missing or mistyped KEK file made the server start with a new KEK:
 * every login then failed CRYPTO_ENVELOPE_INVALID and new keys were sealed under the new KEK, so
 * the store ended up split between two KEKs.
 *
 * The store records the KEK id at first start (a `_local` marker, see couch/kek-marker.ts). A store
 * made before the marker existed is recognised by the KEK id inside its sealed envelopes; a store
 * with neither holds nothing sealed yet and takes this KEK.
 *
 * A store with a marker but no users and no devices holds nothing sealed either (device keys live
 * in device documents, TOTP secrets and recovery-code digests in user documents): it takes another
 * KEK and the marker moves to it, with a warning naming both ids (operator audit s10, item 1: a
 * fresh restore target started without the production KEK must be able to start again with it,
 * as BACKUP_KEK_MISMATCH advises). Only the server that recorded the marker (same server id) moves
 * it: another server started on the same prefix by mistake, before the first had any user, would
 * otherwise take the marker from under the running one, which goes on sealing keys under its own
 * KEK (operator audit s10, item 10).
 *
 * @throws CONFIG_KEK_MISMATCH with `details: { storeKekId, kekId }` (ids only).
 */
export const kekGuardPlugin = fp(
  async (app) => {
    const config = app.fieldvaultConfig;
    const loaded = kekId(config.kek);
    const marker = new CouchKekMarker({ url: config.couch.url, dbPrefix: config.couch.dbPrefix, endpoint: app.storeEndpoint });
    const recorded = await marker.readRecord();
    let expected = recorded?.kekId ?? null;
    if (expected === null) {
      const sealedUnder = await marker.findSealedKekId();
      expected = sealedUnder === null || sealedUnder === loaded ? await marker.record(loaded, config.serverId) : sealedUnder;
    }
    const recordedBy = recorded?.serverId ?? null;
    if (expected !== loaded && recordedBy !== null && recordedBy !== config.serverId) {
      throw new FieldvaultError('CONFIG_KEK_MISMATCH', {
        detail:
          `the store expects KEK id ${expected}, recorded by server ${recordedBy}; this is server ${config.serverId} with KEK id ${loaded}. ` +
          `Two servers are configured on the same databases (prefix ${config.couch.dbPrefix}): give this one its own FIELDVAULT_COUCHDB_PREFIX, ` +
          `or, to run it as server ${recordedBy}, give it that server's KEK file`,
        details: { storeKekId: expected, kekId: loaded, recordedBy },
      });
    }
    if (expected !== loaded && (await holdsNothingSealed(app))) {
      const previous = expected;
      expected = (await marker.rebind(previous, loaded, config.serverId)) ?? previous;
      if (expected === loaded) {
        app.log.warn(
          { storeKekId: previous, kekId: loaded },
          `the store expected KEK id ${previous} but holds nothing sealed (no users, no devices): it takes KEK id ${loaded} now. ` +
            'If another server uses this prefix on this CouchDB, stop this one and set FIELDVAULT_COUCHDB_PREFIX',
        );
      }
    }
    if (expected !== loaded) {
      throw new FieldvaultError('CONFIG_KEK_MISMATCH', {
        detail: `the store expects KEK id ${expected} (it holds users or devices, whose keys are sealed under it), the KEK loaded has id ${loaded}`,
        details: { storeKekId: expected, kekId: loaded },
      });
    }
    app.decorate('kekId', loaded);
  },
  { name: 'fieldvault-kek-guard', fastify: '5.x', dependencies: ['fieldvault-couch'] },
);

/** No user and no device document: nothing in the store is sealed under (or keyed by) a KEK. */
async function holdsNothingSealed(app: FastifyInstance): Promise<boolean> {
  const [users, devices] = await Promise.all([app.repo.listUsers(1, undefined), app.repo.listDevices(undefined, 1, undefined)]);
  return users.items.length === 0 && devices.items.length === 0;
}
