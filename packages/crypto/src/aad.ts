import { FieldvaultError } from '@fieldvault/protocol';
import { utf8 } from './encoding.js';

export type AadValue = string | number | Uint8Array;

function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

/**
 * Canonical, unambiguous encoding of associated data: a domain label, then each field name and
 * value, every item as a 4-byte big-endian length followed by its bytes. Strings are UTF-8 and
 * integers are decimal. Length prefixes (not separators) mean no choice of usernames, kinds or
 * server names can make two different field lists encode to the same bytes.
 */
export function encodeAad(label: string, fields: ReadonlyArray<readonly [name: string, value: AadValue]>): Uint8Array {
  const parts: Uint8Array[] = [utf8(label)];
  for (const [name, value] of fields) {
    parts.push(utf8(name));
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new FieldvaultError('INPUT_INVALID', { detail: `${name} must be an integer` });
      parts.push(utf8(String(value)));
    } else {
      parts.push(typeof value === 'string' ? utf8(value) : value);
    }
  }
  const total = parts.reduce((n, p) => n + 4 + p.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(u32be(p.byteLength), at);
    out.set(p, at + 4);
    at += 4 + p.byteLength;
  }
  return out;
}
