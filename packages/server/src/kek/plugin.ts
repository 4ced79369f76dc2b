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
 * @throws CONFIG_KEK_MISMATCH with `details: { storeKekId, kekId }` (ids only).
 */
export const kekGuardPlugin = fp(
  async (app) => {
    const config = app.fieldvaultConfig;
    const loaded = kekId(config.kek);
    const marker = new CouchKekMarker({ url: config.couch.url, dbPrefix: config.couch.dbPrefix });
    let expected = await marker.read();
    if (expected === null) {
      const sealedUnder = await marker.findSealedKekId();
      expected = sealedUnder === null || sealedUnder === loaded ? await marker.record(loaded) : sealedUnder;
    }
    if (expected !== loaded) {
      throw new FieldvaultError('CONFIG_KEK_MISMATCH', {
        detail: `the store's keys are sealed under KEK ${expected}, the KEK loaded is ${loaded}`,
        details: { storeKekId: expected, kekId: loaded },
      });
    }
    app.decorate('kekId', loaded);
  },
  { name: 'fieldvault-kek-guard', fastify: '5.x', dependencies: ['fieldvault-couch'] },
);
