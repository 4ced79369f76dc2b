import { FieldvaultError } from '@fieldvault/protocol';

/** Keys that could reach an object's prototype chain in some consumer; refused anywhere in a body. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Deepest nesting accepted; real bodies need a handful of levels. */
export const MAX_JSON_DEPTH = 32;

function malformed(detail: string): FieldvaultError {
  // No `cause`: a SyntaxError message quotes the body, which may hold a password or a key.
  return new FieldvaultError('INPUT_MALFORMED_JSON', { detail });
}

interface Frame {
  readonly keys: Set<string> | undefined; // undefined for arrays
  expectKey: boolean;
}

/**
 * Parses a request body as JSON, refusing what `JSON.parse` silently accepts: a key repeated in
 * one object (the last one would win, so two layers could read different values) and the keys
 * `__proto__`, `constructor` and `prototype` at any depth.
 *
 * A linear scan finds every object key (decoded, so `"\u005f_proto__"` is caught too); the value
 * itself is then built by `JSON.parse`, which also rejects anything syntactically wrong.
 *
 * @throws INPUT_MALFORMED_JSON when the text is not one JSON value, repeats a key, uses a
 *   forbidden key or nests deeper than {@link MAX_JSON_DEPTH}.
 */
export function parseStrictJson(text: string): unknown {
  const stack: Frame[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      const start = i;
      i += 1;
      while (i < n) {
        const c = text.charCodeAt(i);
        if (c === 0x5c /* \ */) i += 2;
        else if (c === 0x22) break;
        else i += 1;
      }
      if (i >= n) throw malformed('unterminated string');
      i += 1;
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined && top.expectKey) {
        let key: unknown;
        try {
          key = JSON.parse(text.slice(start, i));
        } catch {
          throw malformed('invalid string');
        }
        if (typeof key !== 'string') throw malformed('invalid key');
        if (FORBIDDEN_KEYS.has(key)) throw malformed('forbidden key');
        if (top.keys.has(key)) throw malformed('duplicate key');
        top.keys.add(key);
        top.expectKey = false;
      }
      continue;
    }
    if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      if (stack.length >= MAX_JSON_DEPTH) throw malformed('nested too deeply');
      stack.push({ keys: ch === 0x7b ? new Set() : undefined, expectKey: ch === 0x7b });
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      if (stack.pop() === undefined) throw malformed('unbalanced brackets');
    } else if (ch === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined) top.expectKey = true;
    }
    i += 1;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw malformed('not valid JSON');
  }
}
