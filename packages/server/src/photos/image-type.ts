import type { PhotoType } from '@fieldvault/protocol';

/** Bytes needed to recognise every accepted type. */
export const MAGIC_BYTES = 12;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const RIFF = [0x52, 0x49, 0x46, 0x46];
const WEBP = [0x57, 0x45, 0x42, 0x50];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  return bytes.byteLength >= at + prefix.length && prefix.every((b, i) => bytes[at + i] === b);
}

/**
 * The image type by magic bytes (the same rule as the SDK's): JPEG `FF D8 FF`, the 8-byte PNG
 * signature, WebP `RIFF????WEBP`. Undefined for anything else (or too few bytes).
 */
export function detectImageType(bytes: Uint8Array): PhotoType | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'image/png';
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) return 'image/webp';
  return undefined;
}
