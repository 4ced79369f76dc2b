import { isFieldvaultError } from '@fieldvault/protocol';
import { DATABASES } from './couch-repository.js';
import { StoreEndpoint } from './endpoint.js';
import { CouchKekMarker } from './kek-marker.js';
import { statusOf, storeError } from './store-errors.js';

/** Same key as couch-repository.ts `GENERATION_ID`. */
const GENERATION_ID = '_local/fieldvault-store-generation';

/** What the store at a new URL must still be for a running server to move to it. */
export interface StoreIdentity {
  readonly dbPrefix: string;
  /** The KEK id the server runs with: the store's KEK marker must name it (kek/plugin.ts). */
  readonly kekId: string;
  /** The store generation the server has seen, if any: pull checkpoints handed out name it. */
  readonly generation: string | undefined;
}

/** Why the store at the new URL is not (or not yet) usable; `lasting` false: it may be on its way up. */
export interface StoreMismatch {
  readonly reason: string;
  readonly lasting: boolean;
}

/** Why the store did not answer, in the log's words (no URL, no credential). */
function failure(err: unknown, op: string): StoreMismatch {
  const status = statusOf(err);
  if (status === 401 || status === 403) return { reason: `it refuses the credential in the file (HTTP ${status})`, lasting: true };
  const fv = isFieldvaultError(err) ? err : storeError(err, op);
  const cause = fv.details?.['cause'] ?? (typeof fv.details?.['status'] === 'number' ? `HTTP ${String(fv.details['status'])}` : fv.code);
  return { reason: `it does not answer (${String(cause)})`, lasting: false };
}

const lasting = (reason: string): StoreMismatch => ({ reason, lasting: true });

/**
 * Whether the store at `url` is the one a running server used: it answers with the credential
 * given, holds this prefix's databases, its KEK marker names the server's KEK (the check made at
 * start) and, once the server has handed out pull checkpoints, its records database is the same
 * copy (store generation). Returns null when it is, else why not (in words for the log). Reads
 * only: a store that is not the same one is left as it is.
 */
export async function differsFrom(url: string, expected: StoreIdentity): Promise<StoreMismatch | null> {
  const endpoint = new StoreEndpoint(url);
  for (const name of DATABASES) {
    try {
      await endpoint.server.db.get(`${expected.dbPrefix}${name}`);
    } catch (err) {
      if (statusOf(err) === 404) return lasting(`it has no database ${expected.dbPrefix}${name}: another store, or another prefix`);
      return failure(err, 'db.get');
    }
  }
  let recorded: { kekId: string } | null;
  try {
    recorded = await new CouchKekMarker({ url, dbPrefix: expected.dbPrefix, endpoint }).readRecord();
  } catch (err) {
    return failure(err, 'kek_marker.get');
  }
  if (recorded === null) return lasting('it records no KEK id: not the store this server started on');
  if (recorded.kekId !== expected.kekId) return lasting(`its keys are sealed under KEK id ${recorded.kekId}, this server runs with KEK id ${expected.kekId}`);
  if (expected.generation !== undefined) {
    let generation: unknown;
    try {
      generation = (await endpoint.db(`${expected.dbPrefix}records`).get(GENERATION_ID))['generation'];
    } catch (err) {
      if (statusOf(err) !== 404) return failure(err, 'generation.get');
    }
    if (generation !== expected.generation) return lasting('its records database is another copy (another store generation): the sync checkpoints phones hold point into another change sequence');
  }
  return null;
}
