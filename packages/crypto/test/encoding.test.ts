import t from 'tap';
import { encodeAad } from '../src/aad.js';
import {
  constantTimeEqual,
  fromBase64,
  fromBase64Url,
  fromHex,
  labels,
  toBase64,
  toBase64Url,
  toHex,
  utf8,
} from '../src/index.js';

const sample = Uint8Array.from([0, 1, 2, 250, 251, 252, 253, 254, 255]);

t.test('base64, base64url and hex round-trip arbitrary bytes', async (t) => {
  for (let n = 0; n < 40; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
    t.same(fromBase64(toBase64(bytes)), bytes);
    t.same(fromBase64Url(toBase64Url(bytes)), bytes);
    t.same(fromHex(toHex(bytes)), bytes);
  }
});

t.test('encoders return plain Uint8Array, not Buffer', async (t) => {
  const decoded = fromBase64(toBase64(sample));
  t.equal(Object.getPrototypeOf(decoded), Uint8Array.prototype);
});

t.test('hex output is lowercase and decoding accepts either case', async (t) => {
  t.equal(toHex(sample), '000102fafbfcfdfeff');
  t.same(fromHex('000102FAFBFCFDFEFF'), sample);
});

t.test('malformed base64 is rejected with INPUT_INVALID', async (t) => {
  // Bad character, missing padding, misplaced padding, whitespace, non-zero trailing bits, url alphabet.
  for (const bad of ['AA$A', 'AAA', 'A===', 'AA=A', 'AA AA', 'AB==', 'AAB=', '-_8=', 'QQ']) {
    t.throws(() => fromBase64(bad), { code: 'INPUT_INVALID' }, bad);
  }
});

t.test('malformed base64url is rejected with INPUT_INVALID', async (t) => {
  for (const bad of ['AA==', 'A', 'AB', 'AAB', '+/8', 'AA.A']) {
    t.throws(() => fromBase64Url(bad), { code: 'INPUT_INVALID' }, bad);
  }
});

t.test('malformed hex is rejected with INPUT_INVALID', async (t) => {
  for (const bad of ['a', 'abc', 'zz', '0x00', '00 11']) {
    t.throws(() => fromHex(bad), { code: 'INPUT_INVALID' }, bad);
  }
});

t.test('constantTimeEqual compares contents and treats different lengths as unequal', async (t) => {
  t.ok(constantTimeEqual(Uint8Array.from([1, 2, 3]), Uint8Array.from([1, 2, 3])));
  t.notOk(constantTimeEqual(Uint8Array.from([1, 2, 3]), Uint8Array.from([1, 2, 4])));
  t.notOk(constantTimeEqual(Uint8Array.from([1, 2, 3]), Uint8Array.from([1, 2])));
  t.ok(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)));
});

t.test('AAD encoding is unambiguous where a separator-joined string would not be', async (t) => {
  const a = encodeAad('l', [['username', 'a:b'], ['kind', 'verified']]);
  const b = encodeAad('l', [['username', 'a'], ['kind', 'b:verified']]);
  t.not(toHex(a), toHex(b));
  const c = encodeAad('l', [['x', '12'], ['y', '3']]);
  const d = encodeAad('l', [['x', '1'], ['y', '23']]);
  t.not(toHex(c), toHex(d));
});

t.test('AAD encoding length-prefixes every item big-endian', async (t) => {
  t.equal(toHex(encodeAad('L', [['n', 7]])), '000000014c' + '000000016e' + '0000000137');
  t.same(encodeAad('L', [['b', Uint8Array.from([9])]]), Uint8Array.from([0, 0, 0, 1, 0x4c, 0, 0, 0, 1, 0x62, 0, 0, 0, 1, 9]));
});

t.test('every domain-separation label is distinct and versioned', async (t) => {
  const values = Object.values(labels);
  t.equal(new Set(values).size, values.length);
  for (const v of values) t.match(v, /^fieldvault\/[a-z-]+\/v\d+$/);
});

t.test('utf8 encodes non-ASCII text', async (t) => {
  t.equal(toHex(utf8('é')), 'c3a9');
});
