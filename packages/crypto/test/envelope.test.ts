import t from 'tap';
import { ENVELOPE_PREFIX, generateDbKey, kekId, keyId, openDbKey, openWithKek, sealDbKey, sealWithKek, utf8 } from '../src/index.js';

const kek = generateDbKey();
const secret = utf8('a server-held secret');
const aad = 'device:490154203237518';

function flipChar(text: string, index: number): string {
  const c = text[index] === 'A' ? 'B' : 'A';
  return text.slice(0, index) + c + text.slice(index + 1);
}

t.test('a sealed value opens with the same KEK and AAD', async (t) => {
  t.same(openWithKek(kek, sealWithKek(kek, secret, aad), aad), secret);
  t.same(openWithKek(kek, sealWithKek(kek, secret, utf8(aad)), utf8(aad)), secret);
});

t.test('a sealed value has the compact form fv1.<kekId>.<nonce>.<ciphertext>', async (t) => {
  const sealed = sealWithKek(kek, secret, aad);
  const parts = sealed.split('.');
  t.equal(parts.length, 4);
  t.equal(parts[0], ENVELOPE_PREFIX);
  t.equal(parts[1], kekId(kek));
  t.match(parts[2], /^[A-Za-z0-9_-]{16}$/);
  t.match(parts[3], /^[A-Za-z0-9_-]+$/);
});

t.test('the KEK id is 32 hex characters and differs from a DB key id of the same bytes', async (t) => {
  t.match(kekId(kek), /^[0-9a-f]{32}$/);
  t.not(kekId(kek), keyId(kek));
});

t.test('two seals of the same value differ', async (t) => {
  t.not(sealWithKek(kek, secret, aad), sealWithKek(kek, secret, aad));
});

t.test('opening with another KEK fails with CRYPTO_ENVELOPE_INVALID naming both KEK ids', async (t) => {
  const other = generateDbKey();
  t.throws(() => openWithKek(other, sealWithKek(kek, secret, aad), aad), {
    code: 'CRYPTO_ENVELOPE_INVALID',
    message: new RegExp(`${kekId(kek)}.*${kekId(other)}`),
  });
});

t.test('opening with a different AAD fails with CRYPTO_ENVELOPE_INVALID', async (t) => {
  t.throws(() => openWithKek(kek, sealWithKek(kek, secret, aad), 'device:490154203237519'), { code: 'CRYPTO_ENVELOPE_INVALID' });
});

t.test('a changed character anywhere in the nonce or ciphertext fails with CRYPTO_ENVELOPE_INVALID', async (t) => {
  const sealed = sealWithKek(kek, secret, aad);
  const start = sealed.indexOf('.', sealed.indexOf('.') + 1) + 1;
  for (let i = start; i < sealed.length; i++) {
    if (sealed[i] === '.') continue;
    t.throws(() => openWithKek(kek, flipChar(sealed, i), aad), { code: 'CRYPTO_ENVELOPE_INVALID' }, `char ${i}`);
  }
});

t.test('a truncated or malformed envelope fails with CRYPTO_ENVELOPE_INVALID', async (t) => {
  const sealed = sealWithKek(kek, secret, aad);
  const [p, id, n, c] = sealed.split('.') as [string, string, string, string];
  const cases = [
    sealed.slice(0, -4),
    `${p}.${id}.${n}`,
    `${p}.${id}.${n}.${c}.extra`,
    `${p}.${id}.${n}.${c.slice(0, 10)}`,
    `${p}.${id}.${n}=.${c}`,
    `${p}.${id.toUpperCase()}.${n}.${c}`,
    '',
    'hello',
  ];
  for (const bad of cases) t.throws(() => openWithKek(kek, bad, aad), { code: 'CRYPTO_ENVELOPE_INVALID' }, bad);
});

t.test('an envelope of an unknown version fails with CRYPTO_FORMAT_UNSUPPORTED', async (t) => {
  const sealed = sealWithKek(kek, secret, aad);
  t.throws(() => openWithKek(kek, sealed.replace(/^fv1\./, 'fv2.'), aad), { code: 'CRYPTO_FORMAT_UNSUPPORTED' });
});

t.test('a KEK of the wrong length is rejected with CRYPTO_KEY_INVALID', async (t) => {
  t.throws(() => sealWithKek(new Uint8Array(16), secret, aad), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => openWithKek(new Uint8Array(16), sealWithKek(kek, secret, aad), aad), { code: 'CRYPTO_KEY_INVALID' });
});

t.test('a sealed DB key opens for its own device record', async (t) => {
  const dbKey = generateDbKey();
  const sealed = sealDbKey(kek, dbKey, { imei: '490154203237518' });
  t.same(openDbKey(kek, sealed, { imei: '490154203237518', keyId: keyId(dbKey) }), dbKey);
});

t.test('a sealed DB key moved to another device record fails with CRYPTO_ENVELOPE_INVALID', async (t) => {
  const dbKey = generateDbKey();
  const sealed = sealDbKey(kek, dbKey, { imei: '490154203237518' });
  t.throws(() => openDbKey(kek, sealed, { imei: '490154203237519', keyId: keyId(dbKey) }), { code: 'CRYPTO_ENVELOPE_INVALID' });
});

t.test('a sealed DB key under another key id fails with CRYPTO_ENVELOPE_INVALID', async (t) => {
  const dbKey = generateDbKey();
  const sealed = sealDbKey(kek, dbKey, { imei: '490154203237518' });
  t.throws(() => openDbKey(kek, sealed, { imei: '490154203237518', keyId: keyId(generateDbKey()) }), {
    code: 'CRYPTO_ENVELOPE_INVALID',
  });
});
