import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { EmptyObjectSchema } from './schemas.js';

const common: Options = {
  // additionalProperties: false must REJECT unknown fields (Fastify's default strips them silently).
  removeAdditional: false,
  useDefaults: true,
  allErrors: false,
  strict: false,
};

/**
 * The text forms of numbers in a query string: plain decimal, as the SDK and the admin CLI write
 * them. Ajv's coercion uses `Number()`, which also reads `0x10`, `1e1`, `+16` and ` 16` as numbers
 * (bad-input audit F6); a sign is allowed so that `-1` still meets the schema's `minimum`.
 */
const DECIMAL = { integer: /^-?[0-9]+$/, number: /^-?[0-9]+(\.[0-9]+)?$/ } as const;

type NumericKind = keyof typeof DECIMAL;

interface SchemaNode {
  readonly type?: unknown;
  readonly anyOf?: readonly SchemaNode[];
  readonly oneOf?: readonly SchemaNode[];
  readonly allOf?: readonly SchemaNode[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
}

/** `integer`, `number` or undefined for a property schema (unions included: `number` wins over `integer`). */
function numericKind(node: SchemaNode): NumericKind | undefined {
  const types = Array.isArray(node.type) ? (node.type as unknown[]) : [node.type];
  const inner = [...(node.anyOf ?? []), ...(node.oneOf ?? []), ...(node.allOf ?? [])].map(numericKind);
  if (types.includes('number') || inner.includes('number')) return 'number';
  if (types.includes('integer') || inner.includes('integer')) return 'integer';
  return undefined;
}

/** The numeric properties of an object schema (a query string's, a route's params). */
export function numericProperties(schema: unknown): ReadonlyMap<string, NumericKind> {
  const out = new Map<string, NumericKind>();
  for (const [name, node] of Object.entries((schema as SchemaNode | undefined)?.properties ?? {})) {
    const kind = numericKind(node);
    if (kind !== undefined) out.set(name, kind);
  }
  return out;
}

/** `validate`, preceded by the decimal check of the numeric properties' text (before Ajv coerces it). */
function decimalFirst(validate: ValidateFunction, numeric: ReadonlyMap<string, NumericKind>): ValidateFunction {
  const wrapped = ((data: unknown) => {
    if (typeof data === 'object' && data !== null) {
      for (const [name, kind] of numeric) {
        const value = (data as Record<string, unknown>)[name];
        // Repeated keys (arrays) and missing ones are left to the schema.
        if (typeof value === 'string' && !DECIMAL[kind].test(value)) {
          const issue: ErrorObject = { keyword: 'pattern', instancePath: `/${name}`, schemaPath: '#/decimal', params: {}, message: kind === 'integer' ? 'must be written in plain decimal digits' : 'must be a plain decimal number' };
          wrapped.errors = [issue];
          return false;
        }
      }
    }
    const ok = validate(data);
    wrapped.errors = validate.errors ?? null;
    return ok;
  }) as ValidateFunction;
  return wrapped;
}

/**
 * Two validators: bodies are JSON and must already have the right types (no coercion, so
 * `"1"` is not a number and `"true"` not a boolean); params and querystrings arrive as text and
 * are coerced to the declared scalar types — numbers only from plain decimal text — then checked
 * against the same strict schema.
 *
 * A route that declares no query string takes none: unknown parameters are refused on every
 * route alike (bad-input audit F9), not ignored where a route happens to read no query.
 * Call before any route is registered.
 */
export function installValidators(app: FastifyInstance): void {
  const bodyAjv = new Ajv({ ...common, coerceTypes: false });
  const textAjv = new Ajv({ ...common, coerceTypes: true });
  app.setValidatorCompiler<FastifySchema>(({ schema, httpPart }) => {
    if (httpPart === 'body') return bodyAjv.compile(schema as object);
    const validate = textAjv.compile(schema as object);
    const numeric = numericProperties(schema);
    return numeric.size === 0 ? validate : decimalFirst(validate, numeric);
  });
  app.addHook('onRoute', (route) => {
    if (route.schema?.querystring === undefined) route.schema = { ...route.schema, querystring: EmptyObjectSchema };
  });
}
