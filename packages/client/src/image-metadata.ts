import { concatBytes } from '@fieldvault/crypto';
import { FieldvaultError, type PhotoType } from '@fieldvault/protocol';

/*
 * Photo type detection (magic bytes) and removal of metadata that can locate a child, before a
 * photo is encrypted (DESIGN.md §2). A small, self-contained parser rather than a dependency:
 * the npm options either rewrite whole files through binary strings (piexifjs, unmaintained
 * since 2019) or scan the byte stream for signatures without parsing segments (exif-be-gone),
 * which can cut image data that happens to contain one. This walks the container structure and
 * drops whole metadata segments; pixel data is copied byte for byte.
 *
 * Removed:
 * - JPEG: APP1 Exif (all EXIF, including the GPS IFD and the thumbnail), APP1 XMP and extended
 *   XMP (can carry exif:GPS* too), APP2 MPF (multi-picture index), APP13 Photoshop/IPTC
 *   (location fields), and anything after EOI (secondary images of MPF files carry their own EXIF).
 *   The EXIF orientation tag goes with the rest: apps should save photos upright.
 * - PNG: eXIf, tEXt, zTXt, iTXt (XMP lives there) and tIME chunks; anything after IEND.
 * - WebP: EXIF and XMP chunks, and their flags in VP8X; the RIFF size is rewritten.
 */

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.byteLength < at + prefix.length) return false;
  return prefix.every((b, i) => bytes[at + i] === b);
}

function ascii(text: string): number[] {
  return Array.from(text, (c) => c.charCodeAt(0));
}

/** The image type by magic bytes: JPEG (FF D8 FF), PNG (its 8-byte signature), WebP (RIFF….WEBP). */
export function detectPhotoType(bytes: Uint8Array): PhotoType | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'image/png';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'image/webp';
  return undefined;
}

function malformed(type: string, why: string): FieldvaultError {
  return new FieldvaultError('PHOTO_TYPE_UNSUPPORTED', { detail: `malformed ${type}: ${why}` });
}

const JPEG_METADATA: ReadonlyArray<readonly [number, readonly number[]]> = [
  [0xe1, ascii('Exif\0')],
  [0xe1, ascii('http://ns.adobe.com/xap/1.0/\0')],
  [0xe1, ascii('http://ns.adobe.com/xmp/extension/\0')],
  [0xe2, ascii('MPF\0')],
  [0xed, ascii('Photoshop 3.0\0')],
];

function isJpegMetadata(marker: number, payload: Uint8Array): boolean {
  return JPEG_METADATA.some(([m, prefix]) => m === marker && startsWith(payload, prefix));
}

/** Index just past the entropy-coded data that starts at `from` (the next real marker, or the end). */
function endOfScan(b: Uint8Array, from: number): number {
  let k = from;
  while (k < b.byteLength) {
    if (b[k] === 0xff) {
      const next = b[k + 1];
      if (next === undefined) return b.byteLength;
      // 0xFF00 is a stuffed data byte, 0xFFD0–D7 are restart markers inside the scan.
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) {
        k += 2;
        continue;
      }
      return k;
    }
    k += 1;
  }
  return k;
}

function stripJpeg(b: Uint8Array): Uint8Array {
  const out: Uint8Array[] = [b.subarray(0, 2)];
  let i = 2;
  for (;;) {
    if (i >= b.byteLength) return concatBytes(out); // ends without EOI (common for cut camera files); keep what is there
    if (b[i] !== 0xff) throw malformed('JPEG', 'expected a marker');
    let j = i + 1;
    while (j < b.byteLength && b[j] === 0xff) j += 1; // fill bytes
    const marker = b[j];
    if (marker === undefined) throw malformed('JPEG', 'ends inside a marker');
    if (marker === 0xd9) {
      out.push(b.subarray(i, j + 1));
      return concatBytes(out); // EOI: anything after it is dropped
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      out.push(b.subarray(i, j + 1));
      i = j + 1;
      continue;
    }
    if (marker === 0x00 || marker === 0xd8) throw malformed('JPEG', 'unexpected marker');
    const hi = b[j + 1];
    const lo = b[j + 2];
    if (hi === undefined || lo === undefined) throw malformed('JPEG', 'ends inside a segment length');
    const length = (hi << 8) | lo;
    const end = j + 1 + length;
    if (length < 2 || end > b.byteLength) throw malformed('JPEG', 'segment runs past the end');
    if (!isJpegMetadata(marker, b.subarray(j + 3, end))) out.push(b.subarray(i, end));
    i = end;
    if (marker === 0xda) {
      const scanEnd = endOfScan(b, i);
      out.push(b.subarray(i, scanEnd));
      i = scanEnd;
    }
  }
}

const PNG_DROP = new Set(['eXIf', 'tEXt', 'zTXt', 'iTXt', 'tIME']);

function stripPng(b: Uint8Array): Uint8Array {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Uint8Array[] = [b.subarray(0, 8)];
  let i = 8;
  while (i < b.byteLength) {
    if (i + 12 > b.byteLength) throw malformed('PNG', 'ends inside a chunk header');
    const length = view.getUint32(i);
    const type = String.fromCharCode(...b.subarray(i + 4, i + 8));
    const end = i + 12 + length;
    if (end > b.byteLength) throw malformed('PNG', 'chunk runs past the end');
    if (!PNG_DROP.has(type)) out.push(b.subarray(i, end));
    i = end;
    if (type === 'IEND') break; // anything after IEND is dropped
  }
  return concatBytes(out);
}

const WEBP_DROP = new Set(['EXIF', 'XMP ']);
const VP8X_EXIF_FLAG = 0x08;
const VP8X_XMP_FLAG = 0x04;

function stripWebp(b: Uint8Array): Uint8Array {
  if (b.byteLength < 12) throw malformed('WebP', 'too short');
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const riffEnd = 8 + view.getUint32(4, true);
  if (riffEnd > b.byteLength) throw malformed('WebP', 'RIFF size runs past the end');
  const out: Uint8Array[] = [];
  let i = 12;
  while (i < riffEnd) {
    if (i + 8 > riffEnd) throw malformed('WebP', 'ends inside a chunk header');
    const fourcc = String.fromCharCode(...b.subarray(i, i + 4));
    const size = view.getUint32(i + 4, true);
    const end = i + 8 + size + (size % 2);
    if (i + 8 + size > riffEnd) throw malformed('WebP', 'chunk runs past the end');
    const chunk = b.subarray(i, Math.min(end, riffEnd));
    if (fourcc === 'VP8X' && size >= 1) {
      const copy = new Uint8Array(chunk);
      copy[8] = (copy[8] ?? 0) & ~(VP8X_EXIF_FLAG | VP8X_XMP_FLAG);
      out.push(copy);
    } else if (!WEBP_DROP.has(fourcc)) {
      out.push(chunk);
    }
    i = end;
  }
  const body = concatBytes(out);
  const result = new Uint8Array(12 + body.byteLength);
  result.set(b.subarray(0, 12), 0);
  new DataView(result.buffer).setUint32(4, 4 + body.byteLength, true);
  result.set(body, 12);
  return result;
}

/**
 * The image with location-bearing metadata removed (see the module comment for exactly what).
 * @throws PHOTO_TYPE_UNSUPPORTED when the container structure is malformed.
 */
export function stripImageMetadata(bytes: Uint8Array, type: PhotoType): Uint8Array {
  switch (type) {
    case 'image/jpeg':
      return stripJpeg(bytes);
    case 'image/png':
      return stripPng(bytes);
    case 'image/webp':
      return stripWebp(bytes);
  }
}
