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
  // Strings are skipped with indexOf (native) rather than a character loop; the next backslash
  // is remembered, so the whole scan stays linear.
  let backslash = text.indexOf('\\');
  while (i < n) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      i += 1;
      for (;;) {
        const quote = text.indexOf('"', i);
        if (quote === -1) {
          i = n;
          break;
        }
        if (backslash !== -1 && backslash < i) backslash = text.indexOf('\\', i);
        if (backslash !== -1 && backslash < quote) {
          // An escape: the character after the backslash (maybe a quote) belongs to the string.
          escaped = true;
          i = backslash + 2;
          backslash = text.indexOf('\\', i);
          continue;
        }
        i = quote;
        break;
      }
      if (i >= n) throw malformed('unterminated string');
      i += 1;
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined && top.expectKey) {
        let key: unknown;
        // Without an escape the key is its characters as written (anything else a JSON string may
        // not hold fails the JSON.parse of the whole text below); decoding every key was the
        // largest item of the push route's own CPU (docs/performance.md, "Sync and photos").
        if (!escaped) key = text.slice(start + 1, i - 1);
        else {
          try {
            key = JSON.parse(text.slice(start, i));
          } catch {
            throw malformed('invalid string');
          }
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
