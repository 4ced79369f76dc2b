import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { FieldvaultError, RecordSearchQuerySchema, RecordSearchResponseSchema, type ChildRecord, type RecordSearchResponse } from '@fieldvault/protocol';
import type { IndexRow } from '../couch/records.js';
import { sendJsonText } from '../http/json-reply.js';
import { responses } from '../http/schemas.js';
import type { AuthContext } from '../sessions/plugin.js';
import { createOpaqueTokenCodec } from '../sync/opaque-token.js';
import { canRead } from './access.js';
import { isCanonicalRow, matches, planSearch, queryFingerprint, type SearchCriteria } from './search.js';

const CURSOR_VERSION = 1;

/** `GET /v1/records/search`: server-side search for verified (= authenticated) users, paged. */
export const recordsPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = app.fieldvaultConfig;
  const cursors = createOpaqueTokenCodec(config.kek, 'search-cursor', `${config.serverId}\u0000${config.couch.dbPrefix}`);

  /** @throws SYNC_CHECKPOINT_INVALID when the cursor is not from this server or another query. */
  function decodeCursor(token: string, fingerprint: string): unknown[] {
    const payload = cursors.decode(token) as { v?: unknown; q?: unknown; k?: unknown } | null;
    if (typeof payload !== 'object' || payload === null || payload.v !== CURSOR_VERSION || payload.q !== fingerprint || !Array.isArray(payload.k)) {
      throw new FieldvaultError('SYNC_CHECKPOINT_INVALID', { detail: 'query.cursor: not from this search', details: { field: 'query.cursor' } });
    }
    return payload.k as unknown[];
  }

  r.get(
    '/v1/records/search',
    {
      onRequest: app.requireAuth(),
      // Search terms are personal data (children's names, places): the request log keeps the path only.
      logSerializers: {
        req: (req: FastifyRequest) => ({ method: req.method, url: `${req.url.split('?')[0] ?? ''}?[redacted]`, remoteAddress: req.ip }),
      },
      schema: { querystring: RecordSearchQuerySchema, response: responses({ 200: RecordSearchResponseSchema }) },
    },
    async (request, reply) => {
      const auth = request.auth as AuthContext;
      const { limit, cursor, ...criteria } = request.query;
      const q: SearchCriteria = criteria;
      const plan = planSearch(q);
      const fingerprint = queryFingerprint(q);
      let after: unknown[] | undefined = cursor === undefined ? undefined : decodeCursor(cursor, fingerprint);
      const batch = Math.min(Math.max(limit * 2, 50), 500);
      const next = (key: readonly unknown[]): string => cursors.encode({ v: CURSOR_VERSION, q: fingerprint, k: key });
      // JSON.stringify rather than the schema serializer: see http/json-reply.ts.
      const answer = (page: RecordSearchResponse): FastifyReply => sendJsonText(reply, JSON.stringify(page));

      const records: ChildRecord[] = [];
      let scanned = 0;
      for (;;) {
        const rows: IndexRow[] =
          plan.index === 'all'
            ? await app.repo.scanAllRecords(typeof after?.[0] === 'string' ? after[0] : undefined, batch)
            : await app.repo.scanRecordIndex(plan.startkey, plan.endkey, after, batch);
        for (const row of rows) {
          scanned += 1;
          after = [...row.key];
          const record = row.envelope?.record;
          if (record !== undefined && isCanonicalRow(plan, row.key, row.value) && canRead(auth, record) && matches(record, q)) {
            records.push(record);
            if (records.length === limit) return answer({ records, nextCursor: next(after) });
          }
        }
        if (rows.length < batch || after === undefined) return answer({ records, nextCursor: null });
        if (scanned >= config.search.maxScan) return answer({ records, nextCursor: next(after) });
      }
    },
  );
};
