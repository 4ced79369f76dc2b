import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { FieldvaultError, ImeiSchema, UsernameSchema } from '@fieldvault/protocol';
import { AUDIT_EVENTS, type AuditDetails, type AuditEventType, type AuditRecord } from '../couch/records.js';
import { iso, responses } from '../http/schemas.js';

export interface AuditInput {
  readonly event: AuditEventType;
  /** The user the event concerns. */
  readonly username?: string | null;
  readonly imei?: string | null;
  /** Ids, codes and counts only; never a key, password, token or document. */
  readonly details?: AuditDetails;
  /** Overrides the actor taken from the request's session (e.g. the user logging in). */
  readonly actor?: string | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Appends one entry to the audit log (append-only; awaited so no event is lost silently). */
    audit(request: FastifyRequest | null, input: AuditInput): Promise<void>;
  }
}

const ISO_UTC = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,3})?Z$';

export const AuditQuerySchema = Type.Object(
  {
    username: Type.Optional(UsernameSchema),
    imei: Type.Optional(ImeiSchema),
    event: Type.Optional(Type.Union(AUDIT_EVENTS.map((e) => Type.Literal(e)))),
    from: Type.Optional(Type.String({ pattern: ISO_UTC, description: 'inclusive, ISO 8601 UTC' })),
    to: Type.Optional(Type.String({ pattern: ISO_UTC, description: 'inclusive, ISO 8601 UTC' })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,1024}$' })),
  },
  { additionalProperties: false },
);

export const AuditEventSchema = Type.Object(
  {
    id: Type.String(),
    at: Type.String({ description: 'ISO 8601 UTC' }),
    event: Type.Union(AUDIT_EVENTS.map((e) => Type.Literal(e))),
    actor: Type.Union([Type.String(), Type.Null()]),
    username: Type.Union([Type.String(), Type.Null()]),
    imei: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    requestId: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])),
  },
  { additionalProperties: false },
);
export type AuditEventView = Static<typeof AuditEventSchema>;

export const AuditPageSchema = Type.Object(
  { events: Type.Array(AuditEventSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false },
);

function view(r: AuditRecord): AuditEventView {
  return {
    id: r.id,
    at: iso(r.at),
    event: r.event,
    actor: r.actor,
    username: r.username,
    imei: r.imei,
    ip: r.ip,
    requestId: r.requestId,
    details: { ...r.details },
  };
}

function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new FieldvaultError('INPUT_INVALID', { detail: `${field}: not a valid time`, details: { field } });
  return ms;
}

/** The audit log: `app.audit(...)` for every plugin, and `GET /v1/audit` for admins. */
export const auditPlugin = fp(
  async (app) => {
    app.decorate('audit', async (request: FastifyRequest | null, input: AuditInput): Promise<void> => {
      await app.repo.appendAudit(
        {
          event: input.event,
          actor: input.actor !== undefined ? input.actor : (request?.auth?.username ?? null),
          username: input.username ?? null,
          imei: input.imei ?? null,
          ip: request?.ip ?? null,
          requestId: request === null ? null : String(request.id),
          details: input.details ?? {},
        },
        app.now(),
      );
    });

    app.withTypeProvider<TypeBoxTypeProvider>().get(
      '/v1/audit',
      {
        onRequest: app.requireAuth(['admin']),
        schema: { querystring: AuditQuerySchema, response: responses({ 200: AuditPageSchema }) },
      },
      async (request) => {
        const q = request.query;
        const from = parseTime(q.from, 'from');
        const to = parseTime(q.to, 'to');
        // The store refuses a reversed key range: that is the caller's mistake, not an internal error (bad-input audit F1).
        if (from !== undefined && to !== undefined && from > to) {
          throw new FieldvaultError('INPUT_INVALID', { detail: 'query.from: is after query.to', details: { field: 'query.from' } });
        }
        const page = await app.repo.queryAudit({
          limit: q.limit,
          ...(q.username === undefined ? {} : { username: q.username }),
          ...(q.imei === undefined ? {} : { imei: q.imei }),
          ...(q.event === undefined ? {} : { event: q.event }),
          ...(from === undefined ? {} : { from }),
          ...(to === undefined ? {} : { to }),
          ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
        });
        return { events: page.items.map(view), nextCursor: page.nextCursor };
      },
    );
  },
  { name: 'fieldvault-audit', fastify: '5.x', dependencies: ['fieldvault-couch', 'fieldvault-sessions'] },
);
