import t from 'tap';
import type { SuccessionEntry } from '../src/index.js';
import { fromBase64, generateDbKey, keyId, toBase64, unwrapSuccessor, wrapSuccessor } from '../src/index.js';

const k1 = generateDbKey();
const k2 = generateDbKey();
const entry = wrapSuccessor(k1, k2);

function flip(b64: string, byte: number): string {
  const bytes = fromBase64(b64);
  const i = byte < 0 ? bytes.byteLength + byte : byte;
  bytes[i] = (bytes[i] ?? 0) ^ 0x80;
  return toBase64(bytes);
}

t.test('a successor entry opens with the previous key and yields the next key', async (t) => {
  t.same(unwrapSuccessor(k1, entry), k2);
});

t.test('a successor entry has the documented serialisable shape', async (t) => {
  t.same(Object.keys(entry).sort(), ['fromKeyId', 'nonce', 'toKeyId', 'v', 'wrapped']);
  t.match(entry, { v: 1, fromKeyId: keyId(k1), toKeyId: keyId(k2), nonce: /^[A-Za-z0-9+/]{16}$/, wrapped: /^[A-Za-z0-9+/]{64}$/ });
  t.same(unwrapSuccessor(k1, JSON.parse(JSON.stringify(entry)) as SuccessionEntry), k2);
});

t.test('a chain of successions leads from the oldest key to the newest', async (t) => {
  const k3 = generateDbKey();
  const chain = [wrapSuccessor(k1, k2), wrapSuccessor(k2, k3)];
  let current = k1;
  for (const link of chain) current = unwrapSuccessor(current, link);
  t.same(current, k3);
});

t.test('two wraps of the same succession differ', async (t) => {
  const again = wrapSuccessor(k1, k2);
  t.not(again.nonce, entry.nonce);
  t.not(again.wrapped, entry.wrapped);
});

t.test('opening with any key but the previous one fails with CRYPTO_SUCCESSION_INVALID', async (t) => {
  t.throws(() => unwrapSuccessor(k2, entry), { code: 'CRYPTO_SUCCESSION_INVALID' });
  t.throws(() => unwrapSuccessor(generateDbKey(), entry), { code: 'CRYPTO_SUCCESSION_INVALID' });
});

const tampered: ReadonlyArray<readonly [string, SuccessionEntry]> = [
  ['an edited next key id', { ...entry, toKeyId: keyId(generateDbKey()) }],
  ['swapped key ids', { ...entry, fromKeyId: entry.toKeyId, toKeyId: entry.fromKeyId }],
  ['a flipped nonce bit', { ...entry, nonce: flip(entry.nonce, 0) }],
  ['a flipped ciphertext bit', { ...entry, wrapped: flip(entry.wrapped, 10) }],
  ['a flipped tag bit', { ...entry, wrapped: flip(entry.wrapped, -1) }],
  ['a truncated tag', { ...entry, wrapped: toBase64(fromBase64(entry.wrapped).subarray(0, 40)) }],
  ['the wrapped key of another succession', { ...entry, ...pick(wrapSuccessor(k1, generateDbKey())) }],
  ['malformed base64', { ...entry, nonce: 'not base64' }],
  ['an older version', { ...entry, v: 0 as 1 }],
  ['the same key on both sides', { ...entry, toKeyId: entry.fromKeyId }],
];

function pick(e: SuccessionEntry): Pick<SuccessionEntry, 'nonce' | 'wrapped'> {
  return { nonce: e.nonce, wrapped: e.wrapped };
}

for (const [what, bad] of tampered) {
  t.test(`a succession entry with ${what} fails with CRYPTO_SUCCESSION_INVALID`, async (t) => {
    t.throws(() => unwrapSuccessor(k1, bad), { code: 'CRYPTO_SUCCESSION_INVALID' });
  });
}

t.test('a succession entry from a newer format version fails with CRYPTO_FORMAT_UNSUPPORTED', async (t) => {
  t.throws(() => unwrapSuccessor(k1, { ...entry, v: 2 as 1 }), { code: 'CRYPTO_FORMAT_UNSUPPORTED' });
});

t.test('a key cannot succeed itself', async (t) => {
  t.throws(() => wrapSuccessor(k1, k1.slice()), { code: 'INPUT_INVALID' });
});

t.test('keys of the wrong length are rejected with CRYPTO_KEY_INVALID', async (t) => {
  t.throws(() => wrapSuccessor(new Uint8Array(16), k2), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => wrapSuccessor(k1, new Uint8Array(33)), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => unwrapSuccessor(new Uint8Array(0), entry), { code: 'CRYPTO_KEY_INVALID' });
});
