import { createHmac } from 'node:crypto';
import t from 'tap';
import { KEY_ID_PATTERN, dbFileName, generateDbKey, keyId, toHex } from '../src/index.js';

const fixedKey = Uint8Array.from({ length: 32 }, (_, i) => i);

t.test('generateDbKey returns 32 fresh random bytes each call', async (t) => {
  const a = generateDbKey();
  const b = generateDbKey();
  t.equal(a.byteLength, 32);
  t.not(toHex(a), toHex(b));
});

t.test('keyId is the first 16 bytes of HMAC-SHA-256(key, "fieldvault/key-id/v1") in lowercase hex', async (t) => {
  const expected = createHmac('sha256', fixedKey).update('fieldvault/key-id/v1').digest().subarray(0, 16).toString('hex');
  t.equal(keyId(fixedKey), expected);
  t.match(keyId(fixedKey), KEY_ID_PATTERN);
});

t.test('dbFileName is the full HMAC-SHA-256 with its own label, 64 hex characters', async (t) => {
  const expected = createHmac('sha256', fixedKey).update('fieldvault/db-name/v1').digest('hex');
  t.equal(dbFileName(fixedKey), expected);
  t.match(dbFileName(fixedKey), /^[0-9a-f]{64}$/);
  t.notOk(dbFileName(fixedKey).startsWith(keyId(fixedKey)), 'name and key id are unrelated');
});

t.test('different keys get different ids and file names', async (t) => {
  const other = generateDbKey();
  t.not(keyId(other), keyId(fixedKey));
  t.not(dbFileName(other), dbFileName(fixedKey));
});

t.test('keys of the wrong length are rejected with CRYPTO_KEY_INVALID', async (t) => {
  for (const bad of [new Uint8Array(0), new Uint8Array(16), new Uint8Array(31), new Uint8Array(33), new Uint8Array(64)]) {
    t.throws(() => keyId(bad), { code: 'CRYPTO_KEY_INVALID' });
    t.throws(() => dbFileName(bad), { code: 'CRYPTO_KEY_INVALID' });
  }
  t.throws(() => keyId('a'.repeat(32) as unknown as Uint8Array), { code: 'CRYPTO_KEY_INVALID' });
});
