import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  AdminRecordParamsSchema,
  AdminRecordResponseSchema,
  FieldvaultError,
  HlcSchema,
  Sha256HexSchema,
  UUID_V4_PATTERN,
  UuidSchema,
} from '@fieldvault/protocol';
import type { IndexRow } from '../couch/records.js';
import { responses } from '../http/schemas.js';
import { RecordsDigest, digestEntry, type RecordDigestEntry } from './digest.js';
import { provenanceView } from './provenance.js';

/*
 * Are two servers' records the same? (multi-server audit M4; docs/operations.md, "Several servers")
 *
 * - `GET /v1/admin/records/digest` (admin): `{count, deleted, digest}` over the content of every
 *   record (digest.ts): equal on two servers exactly when the scenario harness would call them
 *   converged. `backup/inventory` cannot answer this: it digests the stored documents, with what
 *   only this server records (who pushed, when, revisions).
 * - `GET /v1/admin/records/digests?limit&cursor` (admin): the per-record digests, in id order and
 *   paged by record id, so that an admin whose totals differ can find which records differ
 *   (`fieldvault-admin records diff` walks two servers' lists side by side).
 * - `GET /v1/admin/records/:id` (admin): who pushed one record, from which phone and when, its
 *   history's size and ends, conflict and photo counts — never a field value (provenance.ts).
 *   A read like the digests: not audited (it changes nothing), logged with the request.
 *
 * The digest routes read the records database a page at a time (by id, as search does): memory holds one page,
 * never every record. On a server still receiving pushes the result is a per-record consistent
 * view, not a snapshot: compare servers when phones are quiet.
 */

/** Records read per store request. */
const PAGE = 200;

const DigestSchema = Type.Object(
  {
    count: Type.Integer({ minimum: 0, description: 'records, deleted ones included' }),
    deleted: Type.Integer({ minimum: 0, description: 'records whose _deleted field is true' }),
    digest: Sha256HexSchema,
  },
  { additionalProperties: false },
);

const EntrySchema = Type.Object(
  { id: UuidSchema, digest: Sha256HexSchema, deleted: Type.Boolean(), updatedAt: HlcSchema },
  { additionalProperties: false },
);

const ListQuerySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 }),
    cursor: Type.Optional(Type.String({ pattern: UUID_V4_PATTERN.source, description: 'the last record id of the previous page' })),
  },
  { additionalProperties: false },
);

const ListSchema = Type.Object(
  { records: Type.Array(EntrySchema), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

export const recordsDigestPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const admin = { onRequest: app.requireAuth(['admin']) };

  /**
   * Digest entries of the records after id `after`, in id order, read `page` at a time.
   * @throws STORE_UNAVAILABLE
   */
  async function* entries(after: string | undefined, page = PAGE): AsyncGenerator<RecordDigestEntry> {
    let last = after;
    for (;;) {
      const rows: IndexRow[] = await app.repo.scanAllRecords(last, page);
      for (const row of rows) {
        const id = row.key[0] as string;
        // The digest folds records in id order; a store listing in another order would make
        // equal servers differ silently (record ids are lowercase UUIDs, which every CouchDB
        // collation orders alike).
        if (last !== undefined && !(id > last)) throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'records_digest.order' } });
        last = id;
        const record = row.envelope?.record;
        if (record !== undefined) yield digestEntry(record);
      }
      if (rows.length < page) return;
    }
  }

  r.get('/v1/admin/records/digest', { ...admin, schema: { response: responses({ 200: DigestSchema }) } }, async (request) => {
    const started = performance.now();
    const total = new RecordsDigest();
    for await (const entry of entries(undefined)) total.add(entry);
    const result = total.result();
    request.log.info({ records: result.count, deleted: result.deleted, ms: Math.round(performance.now() - started) }, 'records digest');
    return result;
  });

  r.get(
    '/v1/admin/records/digests',
    { ...admin, schema: { querystring: ListQuerySchema, response: responses({ 200: ListSchema }) } },
    async (request) => {
      const { limit, cursor } = request.query;
      const records: RecordDigestEntry[] = [];
      for await (const entry of entries(cursor, Math.min(limit, PAGE))) {
        records.push(entry);
        if (records.length === limit) break;
      }
      // A full page may be followed by nothing: the next request then answers an empty last page.
      return { records, nextCursor: records.length === limit ? (records[records.length - 1]?.id ?? null) : null };
    },
  );

  // `digest` and `digests` stay their own routes: Fastify matches static paths before `:id`.
  r.get(
    '/v1/admin/records/:id',
    { ...admin, schema: { params: AdminRecordParamsSchema, response: responses({ 200: AdminRecordResponseSchema }) } },
    async (request) => {
      const envelope = await app.repo.getRecord(request.params.id);
      if (envelope === undefined) throw new FieldvaultError('RECORD_NOT_FOUND');
      return { record: provenanceView(envelope) };
    },
  );
};
