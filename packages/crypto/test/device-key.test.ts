import t from 'tap';
import {
  devicePublicKey,
  fromHex,
  generateDeviceKeyPair,
  signDevice,
  toHex,
  utf8,
  verifyDevice,
} from '../src/index.js';

// RFC 8032 §7.1, TEST 1 (empty message) and TEST 2 (one byte).
const rfc1 = {
  secret: fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
  public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  message: new Uint8Array(0),
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};
const rfc2 = {
  secret: fromHex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'),
  public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
  message: fromHex('72'),
  signature:
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
};

t.test('Ed25519 matches RFC 8032 test 1', async (t) => {
  t.equal(toHex(devicePublicKey(rfc1.secret)), rfc1.public);
  t.equal(toHex(signDevice(rfc1.secret, rfc1.message)), rfc1.signature);
  t.ok(verifyDevice(fromHex(rfc1.public), rfc1.message, fromHex(rfc1.signature)));
});

t.test('Ed25519 matches RFC 8032 test 2', async (t) => {
  t.equal(toHex(signDevice(rfc2.secret, rfc2.message)), rfc2.signature);
  t.ok(verifyDevice(fromHex(rfc2.public), rfc2.message, fromHex(rfc2.signature)));
});

t.test('a generated key pair is raw 32-byte keys that sign and verify', async (t) => {
  const pair = generateDeviceKeyPair();
  t.equal(pair.publicKey.byteLength, 32);
  t.equal(pair.privateKey.byteLength, 32);
  t.same(devicePublicKey(pair.privateKey), pair.publicKey);
  const message = utf8('login:490154203237518:challenge');
  const signature = signDevice(pair.privateKey, message);
  t.equal(signature.byteLength, 64);
  t.ok(verifyDevice(pair.publicKey, message, signature));
});

t.test('two generated key pairs differ', async (t) => {
  t.not(toHex(generateDeviceKeyPair().publicKey), toHex(generateDeviceKeyPair().publicKey));
});

t.test('verifyDevice returns false for another message, another key or an altered signature', async (t) => {
  const pair = generateDeviceKeyPair();
  const message = utf8('challenge');
  const signature = signDevice(pair.privateKey, message);
  t.notOk(verifyDevice(pair.publicKey, utf8('challengf'), signature));
  t.notOk(verifyDevice(generateDeviceKeyPair().publicKey, message, signature));
  for (const i of [0, 31, 32, 63]) {
    const bad = signature.slice();
    bad[i] = (bad[i] ?? 0) ^ 0x01;
    t.notOk(verifyDevice(pair.publicKey, message, bad), `byte ${i}`);
  }
});

t.test('verifyDevice returns false, never throws, for a malformed signature', async (t) => {
  const pair = generateDeviceKeyPair();
  const message = utf8('challenge');
  t.notOk(verifyDevice(pair.publicKey, message, new Uint8Array(0)));
  t.notOk(verifyDevice(pair.publicKey, message, new Uint8Array(63)));
  t.notOk(verifyDevice(pair.publicKey, message, new Uint8Array(65)));
  t.notOk(verifyDevice(pair.publicKey, message, new Uint8Array(64).fill(0xff)));
  t.notOk(verifyDevice(pair.publicKey, message, 'signature' as unknown as Uint8Array));
});

t.test('malformed device keys are rejected with CRYPTO_KEY_INVALID', async (t) => {
  const message = utf8('challenge');
  t.throws(() => signDevice(new Uint8Array(31), message), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => signDevice(new Uint8Array(64), message), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => devicePublicKey(new Uint8Array(0)), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => verifyDevice(new Uint8Array(33), message, new Uint8Array(64)), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => verifyDevice('key' as unknown as Uint8Array, message, new Uint8Array(64)), { code: 'CRYPTO_KEY_INVALID' });
});
