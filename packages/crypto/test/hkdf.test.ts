import t from 'tap';
import { deriveSubkey, fromHex, hkdf, hmacSha256, toHex } from '../src/index.js';

t.test('hkdf matches RFC 5869 test case 1', async (t) => {
  const okm = hkdf(
    new Uint8Array(22).fill(0x0b),
    fromHex('000102030405060708090a0b0c'),
    fromHex('f0f1f2f3f4f5f6f7f8f9'),
    42,
  );
  t.equal(toHex(okm), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
});

t.test('hkdf matches RFC 5869 test case 3 (empty salt and info)', async (t) => {
  const okm = hkdf(new Uint8Array(22).fill(0x0b), new Uint8Array(0), new Uint8Array(0), 42);
  t.equal(toHex(okm), '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
});

t.test('hkdf returns a plain Uint8Array of the requested length', async (t) => {
  const okm = hkdf(new Uint8Array(32), new Uint8Array(0), 'label', 17);
  t.equal(okm.byteLength, 17);
  t.equal(Object.getPrototypeOf(okm), Uint8Array.prototype);
});

t.test('hkdf rejects a length outside 1..8160 with INPUT_INVALID', async (t) => {
  for (const len of [0, -1, 8161, 1.5]) {
    t.throws(() => hkdf(new Uint8Array(32), new Uint8Array(0), 'x', len), { code: 'INPUT_INVALID' }, String(len));
  }
});

t.test('hmacSha256 matches RFC 4231 test case 2', async (t) => {
  const mac = hmacSha256(new TextEncoder().encode('Jefe'), 'what do ya want for nothing?');
  t.equal(toHex(mac), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
});

t.test('sub-keys for different labels differ from each other and from the key', async (t) => {
  const key = new Uint8Array(32).fill(1);
  const a = deriveSubkey(key, 'fieldvault/a/v1');
  const b = deriveSubkey(key, 'fieldvault/b/v1');
  t.equal(a.byteLength, 32);
  t.not(toHex(a), toHex(b));
  t.not(toHex(a), toHex(key));
});
