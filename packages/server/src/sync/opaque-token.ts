import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { FieldvaultError } from '@fieldvault/protocol';

/** Bytes of HMAC-SHA-256 kept in a token: enough to make forgery hopeless, short in a URL. */
const MAC_BYTES = 16;
/** Longest token accepted (the wire schema says the same). */
const MAX_TOKEN_LENGTH = 4096;

/**
 * Opaque position tokens (pull checkpoints, search cursors): `base64url(JSON payload)` + "." +
 * a truncated HMAC under a key derived from the server KEK with a per-purpose label, bound to a
 * scope (server id and database prefix). The payload is readable but cannot be altered, so CouchDB
 * only ever sees sequence values and keys this server produced (a tampered `since` never reaches
 * it), and a token from another server or another purpose is refused.
 */
export interface OpaqueTokenCodec {
  encode(payload: unknown): string;
  /** @throws SYNC_CHECKPOINT_INVALID when the token is malformed, altered or from elsewhere. */
  decode(token: string): unknown;
}

export function createOpaqueTokenCodec(kek: Uint8Array, purpose: string, scope: string): OpaqueTokenCodec {
  const key = Buffer.from(hkdfSync('sha256', kek, new Uint8Array(0), `fieldvault/${purpose}/v1`, 32));
  const mac = (body: string): Buffer => createHmac('sha256', key).update(scope).update('\u0000').update(body).digest().subarray(0, MAC_BYTES);
  const invalid = (): FieldvaultError => new FieldvaultError('SYNC_CHECKPOINT_INVALID', { details: { field: purpose } });
  return {
    encode(payload: unknown): string {
      const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
      return `${body}.${mac(body).toString('base64url')}`;
    },
    decode(token: string): unknown {
      if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw invalid();
      const dot = token.indexOf('.');
      if (dot <= 0 || dot !== token.lastIndexOf('.')) throw invalid();
      const body = token.slice(0, dot);
      const given = Buffer.from(token.slice(dot + 1), 'base64url');
      const expected = mac(body);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
      try {
        return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as unknown;
      } catch {
        throw invalid();
      }
    },
  };
}
