import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FieldvaultError, isFieldvaultError, toErrorBody, type ErrorCode } from '@fieldvault/protocol';
import { refusedByParser } from './client-errors.js';

/** Fastify's own errors that are the caller's fault, mapped onto the catalogue. */
const fastifyCodes: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'INPUT_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'INPUT_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INPUT_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INPUT_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INPUT_INVALID',
  FST_ERR_CTP_INVALID_TYPE: 'INPUT_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_BAD_URL: 'INPUT_INVALID',
  FST_ERR_ASYNC_CONSTRAINT: 'INPUT_INVALID',
};

interface ValidationIssue {
  readonly instancePath?: string;
  readonly message?: string;
  readonly params?: { readonly allowedValues?: unknown; readonly additionalProperty?: unknown };
}

/**
 * An unknown property or query parameter is named when its name looks like one (as the request
 * log shows names): a token pasted as a name (`?<token>`) is not echoed or logged.
 */
const SHOWN_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

/** The rule that failed; for an `enum`, with its allowed values (schema constants, never the input). */
function ruleOf(issue: ValidationIssue | undefined): string {
  const message = issue?.message ?? 'invalid';
  const allowed = issue?.params?.allowedValues;
  return Array.isArray(allowed) ? `${message}: ${allowed.map(String).join(', ')}` : message;
}

/**
 * Every error, whatever threw it, as a catalogued FieldvaultError. Validation failures keep the
 * field name and the rule, never the value; anything unknown becomes INTERNAL_ERROR.
 */
export function toFieldvaultError(err: unknown): FieldvaultError {
  if (isFieldvaultError(err)) return err;
  const e = err as Partial<FastifyError> & { validation?: readonly ValidationIssue[]; validationContext?: string };
  if (Array.isArray(e.validation)) {
    const first = e.validation[0];
    const extra = first?.params?.additionalProperty;
    const named = typeof extra === 'string' && SHOWN_NAME.test(extra);
    // Request parts are named as everywhere else in our messages: `query.limit`, `body.records…`, `params.id`.
    const part = e.validationContext === 'querystring' ? 'query' : (e.validationContext ?? 'request');
    const where = `${part}${first?.instancePath ?? ''}${named ? `/${extra}` : ''}`.replaceAll('/', '.');
    const detail = named ? `${where}: unknown ${e.validationContext === 'querystring' ? 'parameter' : 'property'}, not allowed here` : `${where}: ${ruleOf(first)}`;
    const code: ErrorCode = e.validationContext === 'params' ? 'INPUT_ID_INVALID' : 'INPUT_INVALID';
    return new FieldvaultError(code, { detail, details: { field: where } });
  }
  const mapped = typeof e.code === 'string' ? fastifyCodes[e.code] : undefined;
  if (mapped !== undefined) return new FieldvaultError(mapped);
  return new FieldvaultError('INTERNAL_ERROR');
}

/**
 * True when reading the request failed because the client went away: the connection closed or
 * reset before the body was whole ("aborted", ECONNRESET). Not a fault of the server.
 */
export function isClientAbort(err: unknown, request: FastifyRequest): boolean {
  if (isFieldvaultError(err)) return false;
  const code = (err as { code?: unknown }).code;
  return (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE') && !request.raw.complete;
}

/** Installs the error and not-found handlers: only catalogued bodies ever leave the server. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    if (isClientAbort(err, request)) {
      // A flaky phone link or a client giving up (bad-input audit F3): nobody to alert, nothing to
      // trace; the answer goes to a closed connection, or to a client that only half-closed it.
      const fv = new FieldvaultError('INPUT_MALFORMED_REQUEST', { detail: 'the request body was cut short' });
      // A body the HTTP parser refused was logged once already, as "request refused" with its reason.
      if (!refusedByParser(request.raw.socket)) request.log.info({ code: fv.code, errCode: String((err as { code?: unknown }).code) }, 'client closed the request');
      return reply.code(fv.statusCode).header('connection', 'close').type('application/json; charset=utf-8').send(toErrorBody(fv));
    }
    const fv = toFieldvaultError(err);
    if (fv.statusCode >= 500) {
      if (isFieldvaultError(err)) {
        // A store outage is logged once with where and why, not once per request (couch/store-outage.ts).
        if (fv.code === 'STORE_UNAVAILABLE' && app.hasDecorator('storeOutage')) app.storeOutage.refused(fv, request.log);
        else request.log.error({ code: fv.code, details: fv.details }, 'request failed');
      } else {
        // An unexpected error: log its type and stack for the operator (the body stays generic).
        const e = err as { name?: unknown; code?: unknown; stack?: unknown };
        request.log.error({ code: fv.code, errName: String(e.name), errCode: e.code === undefined ? undefined : String(e.code), stack: String(e.stack) }, 'unexpected error');
      }
    } else {
      request.log.info({ code: fv.code, details: fv.details }, 'request refused');
    }
    if (fv.code === 'SESSION_INVALID') void reply.header('www-authenticate', 'Bearer');
    const retryAfter = fv.details?.['retryAfterSeconds'];
    if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
    return reply.code(fv.statusCode).type('application/json; charset=utf-8').send(toErrorBody(fv));
  });

  app.setNotFoundHandler((_request, reply) => {
    const fv = new FieldvaultError('INPUT_ROUTE_NOT_FOUND');
    return reply.code(fv.statusCode).send(toErrorBody(fv));
  });
}
