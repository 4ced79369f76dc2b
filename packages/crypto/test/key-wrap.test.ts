import t from 'tap';
import type { KeyWrapContext } from '../src/index.js';
import { WRAPPED_KEY_LENGTH, defaultKdfParams, generateDbKey, keyId, toHex, unwrapKey, wrapKey } from '../src/index.js';

// Low-level wrapping under an already-derived KEK: no Argon2 here, so tamper checks can be exhaustive.
const kek = generateDbKey();
const key = generateDbKey();
const context: KeyWrapContext = { username: 'amina', imei: '490154203237518', kind: 'verified', kdf: defaultKdfParams() };

t.test('a wrapped key unwraps with the same KEK and context', async (t) => {
  const w = wrapKey(kek, key, context);
  t.equal(w.keyId, keyId(key));
  t.equal(w.nonce.byteLength, 12);
  t.equal(w.wrapped.byteLength, WRAPPED_KEY_LENGTH);
  t.same(unwrapKey(kek, w, context), key);
});

t.test('two wraps of the same key use different nonces and ciphertexts', async (t) => {
  const a = wrapKey(kek, key, context);
  const b = wrapKey(kek, key, context);
  t.not(toHex(a.nonce), toHex(b.nonce));
  t.not(toHex(a.wrapped), toHex(b.wrapped));
});

t.test('flipping any bit of the nonce or the wrapped key fails with VAULT_WRONG_PASSWORD', async (t) => {
  const w = wrapKey(kek, key, context);
  let failures = 0;
  for (const field of ['nonce', 'wrapped'] as const) {
    for (let bit = 0; bit < w[field].byteLength * 8; bit++) {
      const copy = w[field].slice();
      copy[bit >> 3] = (copy[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      try {
        unwrapKey(kek, { ...w, [field]: copy }, context);
      } catch (err) {
        if ((err as { code?: string }).code === 'VAULT_WRONG_PASSWORD') failures++;
      }
    }
  }
  t.equal(failures, (12 + WRAPPED_KEY_LENGTH) * 8);
});

t.test('a change to any bound context field fails with VAULT_WRONG_PASSWORD', async (t) => {
  const w = wrapKey(kek, key, context);
  const salt = context.kdf.salt.slice();
  salt[0] = (salt[0] ?? 0) ^ 1;
  const changed: KeyWrapContext[] = [
    { ...context, username: 'amina2' },
    { ...context, imei: '490154203237519' },
    { ...context, kind: 'unverified' },
    { ...context, kind: 'temporary:server-a' },
    { ...context, kdf: { ...context.kdf, m: context.kdf.m + 1 } },
    { ...context, kdf: { ...context.kdf, t: context.kdf.t + 1 } },
    { ...context, kdf: { ...context.kdf, p: context.kdf.p + 1 } },
    { ...context, kdf: { ...context.kdf, salt } },
    { ...context, keyTimestamp: '' },
  ];
  for (const c of changed) t.throws(() => unwrapKey(kek, w, c), { code: 'VAULT_WRONG_PASSWORD' });
});

t.test('an edited key id fails with VAULT_WRONG_PASSWORD', async (t) => {
  const w = wrapKey(kek, key, context);
  t.throws(() => unwrapKey(kek, { ...w, keyId: keyId(generateDbKey()) }, context), { code: 'VAULT_WRONG_PASSWORD' });
});

t.test('a wrong KEK fails with VAULT_WRONG_PASSWORD', async (t) => {
  const w = wrapKey(kek, key, context);
  t.throws(() => unwrapKey(generateDbKey(), w, context), { code: 'VAULT_WRONG_PASSWORD' });
});

t.test('a truncated tag fails with VAULT_WRONG_PASSWORD', async (t) => {
  const w = wrapKey(kek, key, context);
  for (const cut of [1, 4, 16]) {
    t.throws(() => unwrapKey(kek, { ...w, wrapped: w.wrapped.subarray(0, w.wrapped.byteLength - cut) }, context), {
      code: 'VAULT_WRONG_PASSWORD',
    });
  }
});

t.test('the key timestamp is authenticated when present', async (t) => {
  const stamped = { ...context, keyTimestamp: '0001700000000000-0000-server-a' };
  const w = wrapKey(kek, key, stamped);
  t.same(unwrapKey(kek, w, stamped), key);
  t.throws(() => unwrapKey(kek, w, { ...stamped, keyTimestamp: '0001800000000000-0000-server-a' }), {
    code: 'VAULT_WRONG_PASSWORD',
  });
  t.throws(() => unwrapKey(kek, w, context), { code: 'VAULT_WRONG_PASSWORD' });
});

t.test('wrapping with a malformed context is rejected with INPUT_INVALID', async (t) => {
  t.throws(() => wrapKey(kek, key, { ...context, username: '' }), { code: 'INPUT_INVALID' });
  t.throws(() => wrapKey(kek, key, { ...context, imei: '' }), { code: 'INPUT_INVALID' });
  t.throws(() => wrapKey(kek, key, { ...context, kind: 'temporary:' }), { code: 'INPUT_INVALID' });
  t.throws(() => wrapKey(kek, key, { ...context, kind: 'shared' as KeyWrapContext['kind'] }), { code: 'INPUT_INVALID' });
});

t.test('wrapping with a KEK or key of the wrong length is rejected with CRYPTO_KEY_INVALID', async (t) => {
  t.throws(() => wrapKey(new Uint8Array(16), key, context), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => wrapKey(kek, new Uint8Array(31), context), { code: 'CRYPTO_KEY_INVALID' });
});
