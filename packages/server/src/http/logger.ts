import { hostname } from 'node:os';
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { LogStream } from '../config.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A probe route (the health check): its requests are logged once, at debug, instead of
     * Fastify's two info records ("incoming request", "request completed").
     */
    probe?: boolean;
  }
}

/** Field names whose values are secret wherever they appear in a log object. */
const SECRET_FIELDS = [
  'password',
  'newPassword',
  'currentPassword',
  'passwordHash',
  'key',
  'dbKey',
  'kek',
  'sealed',
  'wrapped',
  'token',
  'resetToken',
  'setupToken',
  'signature',
  'challenge',
  'authorization',
  'cookie',
];

/** pino redaction paths: request headers, plus the secret fields at the top level and two levels down. */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
];

/**
 * Query parameters whose values may be logged: numbers, enums, dates, flags and record ids. Every
 * other value is replaced by `[redacted]`: a token pasted into a URL (`?access_token=…`), an
 * opaque cursor, or a child's name from a search must not reach the request log (operations
 * audit, item 9). Names stay, so the log still shows what was asked.
 */
export const LOGGED_QUERY_PARAMS: ReadonlySet<string> = new Set([
  'limit',
  'offset',
  'status',
  'event',
  'from',
  'to',
  'record',
  'includeDeleted',
  'needsReview',
  'flagged',
  'reunited',
  'investigated',
  'duplicate',
  'verified',
]);

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

/**
 * Path segments that may be logged: our routes' words and the ids they take (UUIDs, IMEIs,
 * usernames: all lowercase, at most 64 characters). Anything else — a token pasted into a path by
 * a client's mistake or sprayed by an attacker (base64url, mixed case), a percent-encoded name —
 * is replaced by `[redacted]` (secrets audit s15, F1: the request log is written before routing,
 * for any path).
 */
const LOGGED_SEGMENT = /^[a-z0-9._:-]{0,64}$/;

/** `url`'s path with every segment that is not {@link LOGGED_SEGMENT} redacted; the query as is. */
export function redactPath(url: string): string {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const logged = path
    .split('/')
    .map((segment) => (LOGGED_SEGMENT.test(segment) ? segment : '[redacted]'))
    .join('/');
  return q < 0 ? logged : `${logged}${url.slice(q)}`;
}

/** `url` with the value of every query parameter not in {@link LOGGED_QUERY_PARAMS} redacted. */
export function redactQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    let name: string;
    try {
      name = decodeURIComponent(rawName.replaceAll('+', ' '));
    } catch {
      return '[redacted]';
    }
    if (LOGGED_QUERY_PARAMS.has(name)) return pair;
    // A name that does not look like one (a bare token: `?<token>`) is not shown either.
    if (!PARAM_NAME.test(name)) return '[redacted]';
    return eq < 0 ? name : `${name}=[redacted]`;
  });
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

/**
 * Every record carries the server id besides pino's pid and hostname: with several servers (or
 * several on one machine) the merged logs must say which one did what (multi-server audit #8).
 */
export function loggerOptions(level: string, stream: LogStream | undefined, serverId: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    base: { pid: process.pid, hostname: hostname(), serverId },
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    serializers: {
      // Fastify's own request serializer, with the path and the query string redacted.
      req: (req: FastifyRequest) => ({
        method: req.method,
        url: redactQuery(redactPath(req.url)),
        host: req.host,
        remoteAddress: req.ip,
        ...(req.socket.remotePort === undefined ? {} : { remotePort: req.socket.remotePort }),
      }),
    },
    ...(stream === undefined ? {} : { stream }),
  };
}

function isProbe(request: FastifyRequest): boolean {
  return request.routeOptions.config.probe === true;
}

/**
 * Fastify's request log, except for probe routes: a load balancer or watchdog asking every few
 * seconds would otherwise write two info records per probe, day and night, and bury the requests
 * of people. A probe gets one record at debug, when it is answered. Its refusals and failures are
 * still logged by the error handler (a 503 through the store outage log: one error record per
 * outage, not per probe).
 */
export class RequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (isProbe(request)) return;
    super.incomingRequest(request, reply, metadata);
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (isProbe(request) && error == null && !this.isLogDisabled(request)) {
      reply.log.debug({ req: request, res: reply, responseTime: reply.elapsedTime }, 'probe answered');
      return;
    }
    super.requestCompleted(error, request, reply, metadata);
  }
}
