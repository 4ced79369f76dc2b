import { FieldvaultError } from '@fieldvault/protocol';
import { asBuffer, copyBytes } from './bytes.js';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function malformed(kind: string): FieldvaultError {
  return new FieldvaultError('INPUT_INVALID', { detail: `expected canonical ${kind}` });
}

/** Standard, padded base64 (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('base64');
}

/**
 * Decodes standard, padded base64.
 * @throws INPUT_INVALID on any character outside the alphabet, missing padding, or non-zero
 * trailing bits. Node's own decoder skips such input silently; we refuse it so that every byte
 * string has exactly one accepted spelling and a stored field cannot be edited unnoticed.
 */
export function fromBase64(text: string): Uint8Array {
  if (typeof text !== 'string' || !BASE64.test(text)) throw malformed('base64');
  const buf = Buffer.from(text, 'base64');
  if (buf.toString('base64') !== text) throw malformed('base64');
  return copyBytes(buf);
}

/** URL-safe base64 without padding (RFC 4648 §5). */
export function toBase64Url(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('base64url');
}

/**
 * Decodes URL-safe, unpadded base64.
 * @throws INPUT_INVALID on padding, characters outside the alphabet or non-canonical trailing bits.
 */
export function fromBase64Url(text: string): Uint8Array {
  if (typeof text !== 'string' || !BASE64URL.test(text) || text.length % 4 === 1) throw malformed('base64url');
  const buf = Buffer.from(text, 'base64url');
  if (buf.toString('base64url') !== text) throw malformed('base64url');
  return copyBytes(buf);
}

/** Lowercase hex. */
export function toHex(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('hex');
}

/**
 * Decodes hex (either case).
 * @throws INPUT_INVALID on an odd length or a non-hex character (Node would stop silently at the first one).
 */
export function fromHex(text: string): Uint8Array {
  if (typeof text !== 'string' || !HEX.test(text)) throw malformed('hex');
  return copyBytes(Buffer.from(text, 'hex'));
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
