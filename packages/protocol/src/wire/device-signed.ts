/**
 * What the device-signed calls (the login and both sign-up calls) share on the wire: the proof
 * fields of their bodies and the canonical encoding of the bytes a device signs. Each call keeps
 * its own domain label and field list (auth.ts, signups.ts), so one signature can't stand for another.
 */
import { ImeiSchema } from '../ids.js';
import { Base64Key32Schema, Base64Sig64Schema, TokenSchema } from './common.js';

/**
 * The device proof of a signed body, spread into that body's `Type.Object` after `username` (so
 * the body keeps its own `additionalProperties: false` and property order).
 */
export const deviceSignedFields = {
  imei: ImeiSchema,
  /** The device's Ed25519 public key, raw 32 bytes, base64. */
  devicePublicKey: Base64Key32Schema,
  /** From `POST /v1/auth/challenge` for this IMEI; single use. */
  challenge: TokenSchema,
  /** Ed25519 signature (64 bytes, base64) over the call's signature message (`loginSignatureMessage`, `signupSignatureMessage`). */
  signature: Base64Sig64Schema,
};

/** The fields every signed message names: which challenge, which user, which phone. */
export interface DeviceSignedInput {
  /** The nonce from `POST /v1/auth/challenge`, as returned (base64url). */
  readonly challenge: string;
  readonly username: string;
  readonly imei: string;
}

/**
 * The canonical bytes of a signed message: each item (the label, then field names and values) as a
 * 4-byte big-endian length and its UTF-8 bytes. Both sides must build them identically, and no
 * separator a username could forge can shift one field into the next.
 */
export function signedMessageBytes(items: readonly string[]): Uint8Array {
  const enc = new TextEncoder();
  const encoded = items.map((s) => enc.encode(s));
  const out = new Uint8Array(encoded.reduce((n, b) => n + 4 + b.byteLength, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const b of encoded) {
    view.setUint32(at, b.byteLength);
    out.set(b, at + 4);
    at += 4 + b.byteLength;
  }
  return out;
}
