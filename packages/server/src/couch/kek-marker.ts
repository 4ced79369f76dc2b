import type nano from 'nano';
import { FieldvaultError } from '@fieldvault/protocol';
import { StoreEndpoint } from './endpoint.js';
import { statusOf, storeError } from './store-errors.js';

type Doc = Record<string, unknown> & { _id: string; _rev?: string };

/**
 * A `_local` document: never in `_all_docs`, `_changes`, replication or backups, so a restore into
 * an empty server (which wrote its own marker at first start, under the same KEK) is not disturbed.
 */
const MARKER_ID = '_local/fieldvault-kek';
/** `fv1.<kekId>.<nonce>.<sealed>` (crypto/src/envelope.ts): the id is public, the rest opaque. */
const ENVELOPE_KEK_ID = /^fv1\.([0-9a-f]{32})\./;
const PAGE = 200;

/**
 * Which server KEK a store's sealed material (device DB keys, admin TOTP secrets) is under: the
 * KEK id recorded at first start, or for stores made before the marker, the id found in the
 * material itself. Only ids are read or written, never key bytes.
 */
export class CouchKekMarker {
  private readonly endpoint: StoreEndpoint;
  private readonly prefix: string;

  /** On `endpoint` (the app's, or a store being checked: endpoint.ts); without one, a connection of its own to `url`, which does not follow a store move. */
  constructor(options: { readonly url: string; readonly dbPrefix: string; readonly endpoint?: StoreEndpoint }) {
    this.endpoint = options.endpoint ?? new StoreEndpoint(options.url);
    this.prefix = options.dbPrefix;
  }

  private get devices(): nano.DocumentScope<Doc> {
    return this.endpoint.db(`${this.prefix}devices`);
  }

  private get users(): nano.DocumentScope<Doc> {
    return this.endpoint.db(`${this.prefix}users`);
  }

  /** The recorded KEK id, or null when none was recorded yet. @throws STORE_UNAVAILABLE */
  async read(): Promise<string | null> {
    return (await this.readRecord())?.kekId ?? null;
  }

  /**
   * The recorded KEK id and the id of the server that recorded it (null for markers written before
   * servers recorded their id). @throws STORE_UNAVAILABLE
   */
  async readRecord(): Promise<{ kekId: string; serverId: string | null } | null> {
    const doc = await this.readDoc();
    if (typeof doc?.['kekId'] !== 'string') return null;
    return { kekId: doc['kekId'], serverId: typeof doc['serverId'] === 'string' ? doc['serverId'] : null };
  }

  /**
   * Records `kekId` unless one is recorded already; returns the id that is recorded afterwards
   * (another server sharing the store may have written first). @throws STORE_UNAVAILABLE
   */
  async record(kekId: string, serverId: string): Promise<string> {
    try {
      await this.devices.insert({ _id: MARKER_ID, kekId, serverId, recordedAt: new Date().toISOString() });
      return kekId;
    } catch (err) {
      if (statusOf(err) !== 409) throw storeError(err, 'kek_marker.put');
    }
    const recorded = await this.read();
    if (recorded === null) throw new FieldvaultError('STORE_CONFLICT', { details: { op: 'kek_marker.put' } });
    return recorded;
  }

  /**
   * Moves the marker from `from` to `to`, only while it still says `from` (compare and swap on the
   * document's revision), for a store that holds nothing sealed (kek/plugin.ts). Returns the id
   * recorded afterwards: `to`, or whatever another server sharing the store recorded meanwhile,
   * for the caller to compare again. @throws STORE_UNAVAILABLE
   */
  async rebind(from: string, to: string, serverId: string): Promise<string | null> {
    const current = await this.readDoc();
    if (current === null || current['kekId'] !== from) return typeof current?.['kekId'] === 'string' ? current['kekId'] : null;
    try {
      await this.devices.insert({ ...current, kekId: to, serverId, recordedAt: new Date().toISOString() });
      return to;
    } catch (err) {
      if (statusOf(err) !== 409) throw storeError(err, 'kek_marker.put');
    }
    return this.read();
  }

  private async readDoc(): Promise<Doc | null> {
    try {
      return await this.devices.get(MARKER_ID);
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw storeError(err, 'kek_marker.get');
    }
  }

  /**
   * The KEK id of the first sealed envelope found (device keys first, then TOTP secrets), or null
   * when the store holds none. Reads page by page and stops at the first one.
   * @throws STORE_UNAVAILABLE
   */
  async findSealedKekId(): Promise<string | null> {
    const fromDevices = await this.scan(this.devices, 'device:', (doc) => (doc['key'] as { sealed?: unknown } | null | undefined)?.sealed);
    if (fromDevices !== null) return fromDevices;
    return this.scan(this.users, 'user:', (doc) => (doc['totp'] as { sealed?: unknown } | null | undefined)?.sealed);
  }

  private async scan(db: nano.DocumentScope<Doc>, prefix: string, sealedOf: (doc: Doc) => unknown): Promise<string | null> {
    let startkey = prefix;
    for (;;) {
      let rows: Array<{ id: string; doc?: Doc | null }>;
      try {
        rows = (await db.list({ startkey, endkey: `${prefix}\ufff0`, include_docs: true, limit: PAGE + 1 })).rows as Array<{ id: string; doc?: Doc | null }>;
      } catch (err) {
        throw storeError(err, 'kek_marker.scan');
      }
      for (const row of rows.slice(0, PAGE)) {
        const sealed = row.doc === undefined || row.doc === null ? undefined : sealedOf(row.doc);
        const match = typeof sealed === 'string' ? ENVELOPE_KEK_ID.exec(sealed) : null;
        if (match?.[1] !== undefined) return match[1];
      }
      const next = rows[PAGE];
      if (next === undefined) return null;
      startkey = next.id;
    }
  }
}
