import t from 'tap';
import { detectPhotoType, stripImageMetadata } from '../src/index.js';

const ascii = (s: string): number[] => Array.from(Buffer.from(s, 'latin1'));
const has = (b: Uint8Array, s: string): boolean => Buffer.from(b).includes(Buffer.from(s, 'latin1'));
const seg = (marker: number, payload: number[]): number[] => [0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 0xff, ...payload];

function code(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'no error';
}

t.test('photo types are detected by their magic bytes', async (t) => {
  t.equal(detectPhotoType(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), 'image/jpeg');
  t.equal(detectPhotoType(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'image/png');
  t.equal(detectPhotoType(new Uint8Array([...ascii('RIFF'), 0, 0, 0, 0, ...ascii('WEBP')])), 'image/webp');
  t.equal(detectPhotoType(new Uint8Array(ascii('GIF89a'))), undefined);
  t.equal(detectPhotoType(new Uint8Array([])), undefined);
});

t.test('JPEG: Exif, XMP, MPF and IPTC segments and data after EOI are removed; everything else is kept', async (t) => {
  const keep = [
    ...seg(0xe0, [...ascii('JFIF'), 0, 1, 2]),
    ...seg(0xe2, [...ascii('ICC_PROFILE'), 0, 1, 1]),
    ...seg(0xdb, [0, 1, 2, 3]),
  ];
  const scan = [...seg(0xda, [1, 1, 0, 0, 63, 0]), 1, 2, 0xff, 0x00, 3, 0xff, 0xd0, 4, 5];
  const input = new Uint8Array([
    0xff, 0xd8,
    ...seg(0xe1, [...ascii('Exif'), 0, 0, ...ascii('GPS-SECRET')]),
    ...keep,
    ...seg(0xe1, [...ascii('http://ns.adobe.com/xap/1.0/'), 0, ...ascii('<exif:GPSLatitude>XMP-SECRET')]),
    ...seg(0xe2, [...ascii('MPF'), 0, 9]),
    ...seg(0xed, [...ascii('Photoshop 3.0'), 0, ...ascii('IPTC-SECRET')]),
    ...scan,
    // A second scan (progressive JPEG) with a table in between: still parsed.
    ...seg(0xc4, [0, 1]),
    ...scan,
    0xff, 0xd9,
    ...ascii('AFTER-EOI-SECRET'),
  ]);
  const out = stripImageMetadata(input, 'image/jpeg');
  for (const secret of ['GPS-SECRET', 'XMP-SECRET', 'IPTC-SECRET', 'AFTER-EOI-SECRET', 'MPF']) t.notOk(has(out, secret), secret);
  t.same([...out], [0xff, 0xd8, ...keep, ...scan, ...seg(0xc4, [0, 1]), ...scan, 0xff, 0xd9]);
});

t.test('JPEG: a segment running past the end is PHOTO_TYPE_UNSUPPORTED', async (t) => {
  t.equal(code(() => stripImageMetadata(new Uint8Array([0xff, 0xd8, 0xff, 0xe1, 0x40, 0x00, 1, 2]), 'image/jpeg')), 'PHOTO_TYPE_UNSUPPORTED');
  t.equal(code(() => stripImageMetadata(new Uint8Array([0xff, 0xd8, 0x12, 0x34]), 'image/jpeg')), 'PHOTO_TYPE_UNSUPPORTED');
});

t.test('PNG: eXIf and text chunks and data after IEND are removed', async (t) => {
  const chunk = (type: string, data: number[]): number[] => {
    const len = [(data.length >>> 24) & 255, (data.length >>> 16) & 255, (data.length >>> 8) & 255, data.length & 255];
    return [...len, ...ascii(type), ...data, 0, 0, 0, 0];
  };
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const ihdr = chunk('IHDR', Array.from({ length: 13 }, () => 1));
  const idat = chunk('IDAT', [1, 2, 3]);
  const iend = chunk('IEND', []);
  const input = new Uint8Array([
    ...sig, ...ihdr, ...chunk('eXIf', ascii('MM-GPS-SECRET')), ...chunk('iTXt', ascii('XML:com.adobe.xmp XMP-SECRET')),
    ...chunk('tEXt', ascii('Comment TEXT-SECRET')), ...idat, ...iend, ...ascii('TAIL-SECRET'),
  ]);
  const out = stripImageMetadata(input, 'image/png');
  t.same([...out], [...sig, ...ihdr, ...idat, ...iend]);
});

t.test('WebP: EXIF and XMP chunks are removed, their VP8X flags cleared and the RIFF size rewritten', async (t) => {
  const le = (n: number): number[] => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
  const chunk = (fourcc: string, data: number[]): number[] => [...ascii(fourcc), ...le(data.length), ...data, ...(data.length % 2 ? [0] : [])];
  const vp8x = (flags: number): number[] => chunk('VP8X', [flags, 0, 0, 0, 1, 0, 0, 1, 0, 0]);
  const vp8 = chunk('VP8 ', [1, 2, 3, 4, 5]);
  const body = [...ascii('WEBP'), ...vp8x(0x08 | 0x04 | 0x10), ...vp8, ...chunk('EXIF', ascii('GPS-SECRET')), ...chunk('XMP ', ascii('XMP-SECRET!'))];
  const input = new Uint8Array([...ascii('RIFF'), ...le(body.length), ...body]);
  const out = stripImageMetadata(input, 'image/webp');
  const expectedBody = [...ascii('WEBP'), ...vp8x(0x10), ...vp8];
  t.same([...out], [...ascii('RIFF'), ...le(expectedBody.length), ...expectedBody]);
});
