/**
 * The exact bytes a device signs to log in. Both sides must build them identically, so the
 * encoding is canonical and unambiguous: a domain label, then each field name and value, each
 * item as a 4-byte big-endian length and its UTF-8 bytes (no separator a username could forge).
 *
 * Pure (TextEncoder only) so that it can move to `@fieldvault/protocol` for the SDK unchanged.
 */
export const LOGIN_SIGNATURE_LABEL = 'fieldvault/login/v1';

export interface LoginSignatureInput {
  /** The nonce from `POST /v1/auth/challenge`, as returned (base64url). */
  readonly challenge: string;
  readonly username: string;
  readonly imei: string;
  /** Key id of the DB key offered with this login, or '' when none is offered. */
  readonly keyId: string;
}

export function loginSignatureMessage(input: LoginSignatureInput): Uint8Array {
  const enc = new TextEncoder();
  const items = [
    LOGIN_SIGNATURE_LABEL,
    'challenge',
    input.challenge,
    'username',
    input.username,
    'imei',
    input.imei,
    'keyId',
    input.keyId,
  ].map((s) => enc.encode(s));
  const out = new Uint8Array(items.reduce((n, b) => n + 4 + b.byteLength, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const b of items) {
    view.setUint32(at, b.byteLength);
    out.set(b, at + 4);
    at += 4 + b.byteLength;
  }
  return out;
}
