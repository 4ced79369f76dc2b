import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { FieldvaultError } from '@fieldvault/protocol';

/** Length in bytes of every symmetric key in fieldvault: DB keys, KEKs, derived sub-keys. */
export const KEY_LENGTH = 32;

/** `n` bytes from the operating system CSPRNG, as a plain Uint8Array. */
export function randomBytes(n: number): Uint8Array {
  return copyBytes(nodeRandomBytes(n));
}

/** A plain Uint8Array view over a Buffer's bytes (no copy), so callers never get Buffer-only methods. */
export function viewBytes(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * A fresh Uint8Array holding a copy of `bytes`. Used for key material: small Buffers come from
 * Node's shared pool, and a key must not share its backing memory with unrelated data.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** One new Uint8Array holding `parts` back to back (a plain Uint8Array, never a pooled Buffer). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A Buffer view over `bytes` (no copy), for node:crypto and stream APIs. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array;
}

/**
 * Checks that `key` is exactly 32 bytes.
 * @throws CRYPTO_KEY_INVALID when it is not a Uint8Array of 32 bytes.
 */
export function assertKey(key: unknown, what = 'key'): asserts key is Uint8Array {
  if (!isBytes(key) || key.byteLength !== KEY_LENGTH) {
    // The detail names the role and length only, never the bytes.
    const got = isBytes(key) ? `${key.byteLength} bytes` : typeof key;
    throw new FieldvaultError('CRYPTO_KEY_INVALID', { detail: `${what} must be ${KEY_LENGTH} bytes, got ${got}` });
  }
}

/**
 * Best-effort wipe of a temporary secret. JavaScript cannot promise the bytes were never copied,
 * but clearing derived keys as soon as they are used shortens the time they sit in memory.
 */
export function wipe(...secrets: Uint8Array[]): void {
  for (const s of secrets) s.fill(0);
}
