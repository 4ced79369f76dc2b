import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { FieldvaultError, type ErrorCode } from './errors.js';

/** Turns a JSON pointer such as `/fields/name/value` into `fields.name.value` (`(root)` for the root). */
function pointerToName(path: string): string {
  if (path === '') return '(root)';
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .join('.');
}

const sizeErrors: ReadonlySet<ValueErrorType> = new Set([
  ValueErrorType.StringMaxLength,
  ValueErrorType.ArrayMaxItems,
  ValueErrorType.ObjectMaxProperties,
]);

/**
 * Compiled checks, one per schema. Records are checked on every push (server) and every pulled
 * page (SDK): the interpreted `Value.Check` took ≈ 0.2 ms per child record, the compiled check
 * ≈ 0.02 ms (docs/performance.md, "Sync and photos"); same rules, same result. Where code
 * generation is not allowed (a browser CSP without 'unsafe-eval') or a schema cannot be
 * compiled, the interpreted check is used.
 */
const compiled = new WeakMap<TSchema, (value: unknown) => boolean>();

function checkerFor(schema: TSchema): (value: unknown) => boolean {
  let check = compiled.get(schema);
  if (check === undefined) {
    try {
      const c = TypeCompiler.Compile(schema);
      check = (value) => c.Check(value);
    } catch {
      check = (value) => Value.Check(schema, value);
    }
    compiled.set(schema, check);
  }
  return check;
}

export interface CheckSchemaOptions {
  /**
   * Code to throw instead of `code` when the first problem is a size limit (maxLength, maxItems,
   * maxProperties), or a union mismatch whose value `isOversized` says is only too big.
   */
  readonly tooLarge?: { readonly code: ErrorCode; readonly isOversized?: (value: unknown) => boolean };
}

/**
 * Checks `value` against a TypeBox `schema` and returns it typed, or throws `code` naming the
 * first offending field in `detail` (and in `details.field`). The offending value itself is never
 * echoed: it may be a key or personal data.
 *
 * @throws the given `code` (or `options.tooLarge.code` for size problems) when `value` does not match `schema`.
 */
export function checkSchema<T extends TSchema>(
  schema: T,
  value: unknown,
  code: ErrorCode,
  options: CheckSchemaOptions = {},
): Static<T> {
  if (checkerFor(schema)(value)) return value as Static<T>;
  const first = Value.Errors(schema, value).First();
  const field = first === undefined ? '(root)' : pointerToName(first.path);
  const why = first === undefined ? 'does not match the schema' : first.message;
  let thrown = code;
  const tooLarge = options.tooLarge;
  if (first !== undefined && tooLarge !== undefined) {
    const oversizedUnion = first.type === ValueErrorType.Union && tooLarge.isOversized?.(first.value) === true;
    if (sizeErrors.has(first.type) || oversizedUnion) thrown = tooLarge.code;
  }
  throw new FieldvaultError(thrown, { detail: `${field}: ${why}`, details: { field } });
}
