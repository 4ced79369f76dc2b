import t from 'tap';
import { concatBytes } from '../src/index.js';

t.test('concatBytes joins the parts in order into one new plain Uint8Array', async (t) => {
  const pooled = Buffer.from([9, 8, 7, 6]).subarray(1, 3); // a view at an offset into a larger buffer
  const out = concatBytes([Uint8Array.from([1, 2]), new Uint8Array(0), pooled, Uint8Array.from([3])]);
  t.equal(Object.getPrototypeOf(out), Uint8Array.prototype, 'a plain Uint8Array, not a Buffer');
  t.equal(out.byteOffset, 0);
  t.same(Array.from(out), [1, 2, 8, 7, 3]);
});

t.test('concatBytes of no parts is empty', async (t) => {
  t.equal(concatBytes([]).byteLength, 0);
});
