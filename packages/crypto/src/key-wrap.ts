import { FieldvaultError } from '@fieldvault/protocol';
import { encodeAad } from './aad.js';
import { GCM_NONCE_LENGTH, GCM_TAG_LENGTH, aesGcmOpen, aesGcmSeal } from './aes-gcm.js';
import { KEY_LENGTH, assertKey, isBytes, randomBytes, wipe } from './bytes.js';
import type { DbKind } from './db-kind.js';
import { isDbKind } from './db-kind.js';
import { keyId as keyIdOf } from './db-key.js';
import type { KdfParams } from './kdf.js';
import { labels } from './labels.js';

/** Version of the key-wrap format; bound into the AAD so an entry cannot be replayed as another version. */
export const KEY_WRAP_VERSION = 1;

/** Length of `wrapped`: a 32-byte key plus the 16-byte GCM tag. */
export const WRAPPED_KEY_LENGTH = KEY_LENGTH + GCM_TAG_LENGTH;

/** Who and what a wrapped key belongs to. All of it is authenticated as AAD. */
export interface KeyWrapContext {
  readonly username: string;
  /** The device's IMEI: public, but binding it stops an entry being copied to another phone's keyring. */
  readonly imei: string;
  readonly kind: DbKind;
  /** The KDF parameters that produced the KEK, exactly as stored. */
  readonly kdf: KdfParams;
  /** HLC timestamp of the key record, when the keyring stores one, so it cannot be edited to win the key order. */
  readonly keyTimestamp?: string;
}

/** A DB key wrapped under a KEK. */
export interface WrappedKey {
  readonly keyId: string;
  readonly nonce: Uint8Array;
  /** Ciphertext || tag, 48 bytes. */
  readonly wrapped: Uint8Array;
}

function aadFor(context: KeyWrapContext, keyId: string): Uint8Array {
  return encodeAad(labels.keyWrapAad, [
    ['v', KEY_WRAP_VERSION],
    ['username', context.username],
    ['imei', context.imei],
    ['kind', context.kind],
    ['keyId', keyId],
    // Absent and empty are different encodings: an absent field is left out by name.
    ...(context.keyTimestamp === undefined ? [] : [['keyTimestamp', context.keyTimestamp] as const]),
    ['kdf.alg', context.kdf.alg],
    ['kdf.m', context.kdf.m],
    ['kdf.t', context.kdf.t],
    ['kdf.p', context.kdf.p],
    ['kdf.salt', context.kdf.salt],
  ]);
}

/** @throws INPUT_INVALID when username, imei, kind or keyTimestamp are malformed. */
export function checkContext(context: KeyWrapContext): void {
  const bad = (detail: string): FieldvaultError => new FieldvaultError('INPUT_INVALID', { detail });
  if (typeof context.username !== 'string' || context.username === '') throw bad('username must be a non-empty string');
  if (typeof context.imei !== 'string' || context.imei === '') throw bad('imei must be a non-empty string');
  if (!isDbKind(context.kind)) throw bad('kind must be "verified", "unverified" or "temporary:<server>"');
  if (context.keyTimestamp !== undefined && typeof context.keyTimestamp !== 'string') throw bad('keyTimestamp must be a string');
}

/**
 * Wraps `key` under `kek` with AES-256-GCM, a fresh random 12-byte nonce, and AAD binding the
 * format version, username, imei, kind, key id and KDF parameters.
 * @throws CRYPTO_KEY_INVALID when `kek` or `key` is not 32 bytes.
 * @throws INPUT_INVALID when the context is malformed.
 */
export function wrapKey(kek: Uint8Array, key: Uint8Array, context: KeyWrapContext): WrappedKey {
  assertKey(kek, 'key-encryption key');
  assertKey(key, 'database key');
  checkContext(context);
  const id = keyIdOf(key);
  // A random nonce per wrap: a KEK wraps few keys (one per rewrap), far below GCM's 2^32 random-nonce limit.
  const nonce = randomBytes(GCM_NONCE_LENGTH);
  return { keyId: id, nonce, wrapped: aesGcmSeal(kek, nonce, key, aadFor(context, id)) };
}

/**
 * Unwraps a key wrapped by `wrapKey` and checks it against its key id.
 * @throws VAULT_WRONG_PASSWORD for a wrong KEK and for any altered field, context or tag: one
 * code and one message, so the error says nothing about which it was.
 * @throws CRYPTO_KEY_INVALID when `kek` is not 32 bytes.
 */
export function unwrapKey(kek: Uint8Array, wrapped: WrappedKey, context: KeyWrapContext): Uint8Array {
  assertKey(kek, 'key-encryption key');
  if (
    !isBytes(wrapped.nonce) ||
    wrapped.nonce.byteLength !== GCM_NONCE_LENGTH ||
    !isBytes(wrapped.wrapped) ||
    wrapped.wrapped.byteLength !== WRAPPED_KEY_LENGTH ||
    typeof wrapped.keyId !== 'string'
  ) {
    throw wrongPassword();
  }
  let aad: Uint8Array;
  try {
    checkContext(context);
    aad = aadFor(context, wrapped.keyId);
  } catch {
    throw wrongPassword();
  }
  const key = aesGcmOpen(kek, wrapped.nonce, wrapped.wrapped, aad);
  if (key === undefined) throw wrongPassword();
  // The AAD already binds keyId; re-deriving it also catches an entry written by a buggy or
  // hostile wrapper that authenticated a key id not matching the key.
  if (keyIdOf(key) !== wrapped.keyId) {
    wipe(key);
    throw wrongPassword();
  }
  return key;
}

/** The one error for every unwrap failure. No detail and no cause, so all failures read alike. */
export function wrongPassword(): FieldvaultError {
  return new FieldvaultError('VAULT_WRONG_PASSWORD');
}
