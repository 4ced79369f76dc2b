import t from 'tap';
import { argon2idRaw } from '../src/argon2id.js';
import type { KdfParams } from '../src/index.js';
import {
  clampKdfParams,
  defaultKdfParams,
  deriveKek,
  kdfBounds,
  kdfParamsFromJson,
  kdfParamsToJson,
  toHex,
} from '../src/index.js';

// The cheapest parameters deriveKek accepts unchanged, so tests stay fast (~30 ms per derivation).
const fast = (): KdfParams => ({ ...defaultKdfParams(), m: kdfBounds.m.min, t: kdfBounds.t.min });

t.test('Argon2id matches the RFC 9106 §5.3 test vector', async (t) => {
  const tag = await argon2idRaw({
    password: new Uint8Array(32).fill(0x01),
    salt: new Uint8Array(16).fill(0x02),
    secret: new Uint8Array(8).fill(0x03),
    associatedData: new Uint8Array(12).fill(0x04),
    m: 32,
    t: 3,
    p: 4,
    length: 32,
  });
  t.equal(toHex(tag), '0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659');
});

t.test('defaultKdfParams are argon2id, 64 MiB, t=3, p=1 with a fresh 16-byte salt', async (t) => {
  const a = defaultKdfParams();
  const b = defaultKdfParams();
  t.match(a, { alg: 'argon2id', m: 65536, t: 3, p: 1 });
  t.equal(a.salt.byteLength, 16);
  t.not(toHex(a.salt), toHex(b.salt));
});

t.test('the defaults lie inside the clamping bounds', async (t) => {
  const d = defaultKdfParams();
  t.same(clampKdfParams(d), d);
});

t.test('clampKdfParams raises costs below the floor and lowers costs above the ceiling', async (t) => {
  const salt = new Uint8Array(16);
  t.match(clampKdfParams({ alg: 'argon2id', m: 8, t: 1, p: 0, salt }), { m: 19456, t: 2, p: 1 });
  t.match(clampKdfParams({ alg: 'argon2id', m: 2 ** 40, t: 1000, p: 64, salt }), { m: 262144, t: 10, p: 4 });
  t.match(clampKdfParams({ alg: 'argon2id', m: -5, t: -5, p: -5, salt }), { m: 19456, t: 2, p: 1 });
});

t.test('malformed KDF parameters are rejected with CRYPTO_KDF_PARAMS_INVALID', async (t) => {
  const base = defaultKdfParams();
  const cases: unknown[] = [
    { ...base, salt: new Uint8Array(15) },
    { ...base, salt: new Uint8Array(17) },
    { ...base, salt: 'AAAAAAAAAAAAAAAAAAAAAA==' },
    { ...base, alg: 'argon2i' },
    { ...base, m: 65536.5 },
    { ...base, t: Number.NaN },
    { ...base, p: Number.POSITIVE_INFINITY },
    { ...base, m: '65536' },
    null,
  ];
  for (const c of cases) t.throws(() => clampKdfParams(c as KdfParams), { code: 'CRYPTO_KDF_PARAMS_INVALID' });
});

t.test('deriveKek rejects a salt that is not 16 bytes with CRYPTO_KDF_PARAMS_INVALID', async (t) => {
  await t.rejects(deriveKek('password', { ...fast(), salt: new Uint8Array(8) }), { code: 'CRYPTO_KDF_PARAMS_INVALID' });
});

t.test('deriveKek is deterministic for the same password and parameters and returns 32 bytes', async (t) => {
  const params = fast();
  const a = await deriveKek('correct horse battery staple', params);
  const b = await deriveKek('correct horse battery staple', params);
  t.equal(a.byteLength, 32);
  t.equal(toHex(a), toHex(b));
});

t.test('deriveKek depends on the password and on the salt', async (t) => {
  const params = fast();
  const a = await deriveKek('password one', params);
  t.not(toHex(await deriveKek('password two', params)), toHex(a));
  t.not(toHex(await deriveKek('password one', fast())), toHex(a));
});

t.test('deriveKek uses the clamped parameters, so out-of-range values equal the bounds', async (t) => {
  const params = fast();
  const atFloor = await deriveKek('pw', params);
  const belowFloor = await deriveKek('pw', { ...params, m: 1024, t: 1 });
  t.equal(toHex(belowFloor), toHex(atFloor));
});

t.test('deriveKek normalises the password with NFKC first', async (t) => {
  const params = fast();
  // Composed vs decomposed "é", and full-width vs ASCII letters, as two keyboards may type them.
  const typedOnce = await deriveKek('caf\u00e9 Pass', params);
  const typedElsewhere = await deriveKek('cafe\u0301 \uff30\uff41\uff53\uff53', params);
  t.equal(toHex(typedElsewhere), toHex(typedOnce));
});

t.test('KDF parameters round-trip through their stored JSON form', async (t) => {
  const params = defaultKdfParams();
  const json = kdfParamsToJson(params);
  t.match(json, { alg: 'argon2id', m: 65536, t: 3, p: 1, salt: /^[A-Za-z0-9+/]{22}==$/ });
  t.same(kdfParamsFromJson(JSON.parse(JSON.stringify(json))), params);
});

t.test('kdfParamsFromJson keeps out-of-range costs as stored (clamping happens at use)', async (t) => {
  const json = { ...kdfParamsToJson(defaultKdfParams()), m: 10 ** 9 };
  t.equal(kdfParamsFromJson(json).m, 10 ** 9);
});

t.test('malformed stored KDF parameters are rejected with CRYPTO_KDF_PARAMS_INVALID', async (t) => {
  const ok = kdfParamsToJson(defaultKdfParams());
  const cases: unknown[] = [
    undefined,
    'argon2id',
    { ...ok, alg: 'scrypt' },
    { ...ok, m: '65536' },
    { ...ok, t: 3.5 },
    { ...ok, salt: 'not base64!' },
    { ...ok, salt: 'AAAAAAAAAAAAAAAAAAAA' },
    { ...ok, salt: 'AAAAAAAAAAAAAAAAAAAAAAAA' },
    { alg: 'argon2id', m: 65536, t: 3, salt: ok.salt },
  ];
  for (const c of cases) t.throws(() => kdfParamsFromJson(c), { code: 'CRYPTO_KDF_PARAMS_INVALID' });
});
