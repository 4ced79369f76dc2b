import t from 'tap';
import { aesGcmOpen, aesGcmSeal } from '../src/aes-gcm.js';
import { fromHex, toHex } from '../src/index.js';

// The GCM specification (McGrew & Viega, "The Galois/Counter Mode of Operation"), appendix B.
t.test('AES-256-GCM matches GCM spec test case 14 (zero key, one zero block)', async (t) => {
  const sealed = aesGcmSeal(new Uint8Array(32), new Uint8Array(12), new Uint8Array(16), new Uint8Array(0));
  t.equal(toHex(sealed), 'cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919');
});

const tc16 = {
  key: fromHex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308'),
  iv: fromHex('cafebabefacedbaddecaf888'),
  pt: fromHex(
    'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
  ),
  aad: fromHex('feedfacedeadbeeffeedfacedeadbeefabaddad2'),
  ct: '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
  tag: '76fc6ece0f4e1768cddf8853bb2d551b',
};

t.test('AES-256-GCM matches GCM spec test case 16 (with AAD)', async (t) => {
  t.equal(toHex(aesGcmSeal(tc16.key, tc16.iv, tc16.pt, tc16.aad)), tc16.ct + tc16.tag);
  t.same(aesGcmOpen(tc16.key, tc16.iv, fromHex(tc16.ct + tc16.tag), tc16.aad), tc16.pt);
});

t.test('AES-256-GCM open refuses a flipped bit, other AAD and a truncated tag', async (t) => {
  const sealed = fromHex(tc16.ct + tc16.tag);
  const flipped = sealed.slice();
  flipped[3] = (flipped[3] ?? 0) ^ 0x01;
  t.equal(aesGcmOpen(tc16.key, tc16.iv, flipped, tc16.aad), undefined);
  t.equal(aesGcmOpen(tc16.key, tc16.iv, sealed, new Uint8Array(0)), undefined);
  t.equal(aesGcmOpen(tc16.key, tc16.iv, sealed.subarray(0, sealed.byteLength - 4), tc16.aad), undefined);
  t.equal(aesGcmOpen(tc16.key, tc16.iv, sealed.subarray(0, 8), tc16.aad), undefined);
});
