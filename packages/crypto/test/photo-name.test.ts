import { createHmac, hkdfSync } from 'node:crypto';
import t from 'tap';
import { dbFileName, generateDbKey, photoFileName } from '../src/index.js';

const dbKey = generateDbKey();
const photoId = '6f1c2b9e-3a4d-4f5e-8a7b-1c2d3e4f5a6b';

t.test('photoFileName is HMAC-SHA-256 under the "fieldvault/photo-name/v1" sub-key, 64 hex characters', async (t) => {
  const nameKey = Buffer.from(hkdfSync('sha256', dbKey, new Uint8Array(0), 'fieldvault/photo-name/v1', 32));
  t.equal(photoFileName(dbKey, photoId), createHmac('sha256', nameKey).update(photoId).digest('hex'));
  t.match(photoFileName(dbKey, photoId), /^[0-9a-f]{64}$/);
});

t.test('photo file names reveal neither the photo id nor the database name', async (t) => {
  const name = photoFileName(dbKey, photoId);
  t.notOk(name.includes(photoId.replaceAll('-', '').slice(0, 8)));
  t.not(name, dbFileName(dbKey));
});

t.test('photo file names are stable per key and id and differ across ids and keys', async (t) => {
  t.equal(photoFileName(dbKey, photoId), photoFileName(dbKey, photoId));
  t.not(photoFileName(dbKey, photoId), photoFileName(dbKey, `${photoId}x`));
  t.not(photoFileName(dbKey, photoId), photoFileName(generateDbKey(), photoId));
});

t.test('photoFileName rejects a bad key with CRYPTO_KEY_INVALID and an empty id with INPUT_INVALID', async (t) => {
  t.throws(() => photoFileName(new Uint8Array(8), photoId), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => photoFileName(dbKey, ''), { code: 'INPUT_INVALID' });
});
