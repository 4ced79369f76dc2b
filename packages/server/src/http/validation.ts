import { Ajv, type Options } from 'ajv';
import type { FastifyInstance, FastifySchema } from 'fastify';

const common: Options = {
  // additionalProperties: false must REJECT unknown fields (Fastify's default strips them silently).
  removeAdditional: false,
  useDefaults: true,
  allErrors: false,
  strict: false,
};

/**
 * Two validators: bodies are JSON and must already have the right types (no coercion, so
 * `"1"` is not a number and `"true"` not a boolean); params and querystrings arrive as text and
 * are coerced to the declared scalar types, then checked against the same strict schema.
 */
export function installValidators(app: FastifyInstance): void {
  const bodyAjv = new Ajv({ ...common, coerceTypes: false });
  const textAjv = new Ajv({ ...common, coerceTypes: true });
  app.setValidatorCompiler<FastifySchema>(({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? bodyAjv : textAjv;
    return ajv.compile(schema as object);
  });
}
