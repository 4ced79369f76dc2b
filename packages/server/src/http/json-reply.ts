import type { FastifyReply } from 'fastify';

/*
 * Large record answers (sync pull, record search) are written with `JSON.stringify` instead of the
 * route's schema serializer (fast-json-stringify, which checks the record schema's unions with Ajv
 * while writing): the pull handler can then serialise each record once and use that text both for
 * its page budget and for the answer, instead of serialising every record twice
 * (docs/performance.md, "Sync and photos"). Safe because every stored record went through
 * `parseRecord` (`additionalProperties: false`) when it was pushed, so nothing extra can leak; the
 * routes keep their response schemas (docs, tests, and error bodies, which are still serialised
 * through the error schema because only this success payload bypasses the serializer).
 */

/**
 * `{"<key>":[<items>],…rest}` from items already serialised one by one (the caller used their
 * lengths, e.g. for a page budget) and the other members of the answer.
 */
export function jsonWithArray(key: string, items: readonly string[], rest: Readonly<Record<string, unknown>>): string {
  const tail = JSON.stringify(rest);
  const head = `{${JSON.stringify(key)}:[${items.join(',')}]`;
  return tail === '{}' ? `${head}}` : `${head},${tail.slice(1)}`;
}

/** Sends JSON text as it is (a string payload with a JSON content type skips the serializer). */
export function sendJsonText(reply: FastifyReply, text: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(text);
}
