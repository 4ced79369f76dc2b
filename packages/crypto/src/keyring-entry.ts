import { FieldvaultError } from '@fieldvault/protocol';
import { GCM_NONCE_LENGTH } from './aes-gcm.js';
import { assertKey, wipe } from './bytes.js';
import type { DbKind } from './db-kind.js';
import { isDbKind } from './db-kind.js';
import { KEY_ID_PATTERN } from './db-key.js';
import { fromBase64, toBase64 } from './encoding.js';
import type { KdfParams, KdfParamsJson } from './kdf.js';
import { clampKdfParams, defaultKdfParams, deriveKek, kdfParamsFromJson, kdfParamsToJson } from './kdf.js';
import type { KeyWrapContext } from './key-wrap.js';
import { KEY_WRAP_VERSION, WRAPPED_KEY_LENGTH, checkContext, unwrapKey, wrapKey, wrongPassword } from './key-wrap.js';

/**
 * One keyring entry: a DB key wrapped for one user and database kind. JSON-serialisable; binary
 * fields are standard base64. The device IMEI is not stored (it is the device's own) but is bound
 * into the AAD.
 */
export interface WrappedKeyEntry {
  readonly v: typeof KEY_WRAP_VERSION;
  readonly username: string;
  readonly kind: DbKind;
  readonly keyId: string;
  readonly keyTimestamp?: string;
  readonly kdf: KdfParamsJson;
  /** 12-byte GCM nonce, base64. */
  readonly nonce: string;
  /** Wrapped key || tag (48 bytes), base64. */
  readonly wrapped: string;
}

export interface WrapKeyForUserInput {
  readonly password: string;
  readonly key: Uint8Array;
  readonly username: string;
  readonly imei: string;
  readonly kind: DbKind;
  /** Defaults to `defaultKdfParams()` (fresh salt). Clamped into `kdfBounds`; the entry stores the clamped values. */
  readonly kdf?: KdfParams;
  /** HLC timestamp of the key record, authenticated with the entry when given. */
  readonly keyTimestamp?: string;
}

/**
 * Wraps a DB key for a user: KEK = Argon2id(NFKC(password), kdf), then `wrapKey`.
 * @throws CRYPTO_KEY_INVALID when `key` is not 32 bytes.
 * @throws CRYPTO_KDF_PARAMS_INVALID when `kdf` is malformed.
 * @throws INPUT_INVALID when username, imei, kind or password are malformed.
 */
export async function wrapKeyForUser(input: WrapKeyForUserInput): Promise<WrappedKeyEntry> {
  assertKey(input.key, 'database key');
  const kdf = clampKdfParams(input.kdf ?? defaultKdfParams());
  const context: KeyWrapContext = {
    username: input.username,
    imei: input.imei,
    kind: input.kind,
    kdf,
    ...(input.keyTimestamp === undefined ? {} : { keyTimestamp: input.keyTimestamp }),
  };
  // Validate before Argon2, so a caller's mistake costs no derivation time.
  checkContext(context);
  const kek = await deriveKek(input.password, kdf);
  try {
    const w = wrapKey(kek, input.key, context);
    return {
      v: KEY_WRAP_VERSION,
      username: input.username,
      kind: input.kind,
      keyId: w.keyId,
      ...(input.keyTimestamp === undefined ? {} : { keyTimestamp: input.keyTimestamp }),
      kdf: kdfParamsToJson(kdf),
      nonce: toBase64(w.nonce),
      wrapped: toBase64(w.wrapped),
    };
  } finally {
    wipe(kek);
  }
}

interface ParsedEntry {
  readonly context: Omit<KeyWrapContext, 'imei'>;
  readonly keyId: string;
  readonly nonce: Uint8Array;
  readonly wrapped: Uint8Array;
}

/** Structural check of an entry read from disk; `undefined` when anything is off. */
function parseEntry(entry: unknown): ParsedEntry | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const e = entry as Record<string, unknown>;
  const { username, kind, keyId, keyTimestamp, nonce, wrapped } = e;
  if (typeof username !== 'string' || username === '' || !isDbKind(kind)) return undefined;
  if (typeof keyId !== 'string' || !KEY_ID_PATTERN.test(keyId)) return undefined;
  if (keyTimestamp !== undefined && typeof keyTimestamp !== 'string') return undefined;
  if (typeof nonce !== 'string' || typeof wrapped !== 'string') return undefined;
  try {
    const kdf = kdfParamsFromJson(e['kdf']);
    const n = fromBase64(nonce);
    const w = fromBase64(wrapped);
    if (n.byteLength !== GCM_NONCE_LENGTH || w.byteLength !== WRAPPED_KEY_LENGTH) return undefined;
    return {
      context: { username, kind, kdf, ...(keyTimestamp === undefined ? {} : { keyTimestamp }) },
      keyId,
      nonce: n,
      wrapped: w,
    };
  } catch {
    return undefined;
  }
}

/**
 * Unwraps a keyring entry with the user's password on this device.
 *
 * Argon2 runs with the entry's parameters clamped into `kdfBounds`, so an edited file can neither
 * exhaust memory nor weaken the derivation; the edit then fails authentication.
 * @throws VAULT_WRONG_PASSWORD for a wrong password and for any altered or malformed entry
 * (another user's, kind or device's entry, edited KDF parameters or key id, a cut tag, a flipped
 * bit): one code and one message for all.
 * @throws CRYPTO_FORMAT_UNSUPPORTED when the entry's version `v` is not one this code reads
 * (a keyring written by a newer fieldvault); the version is not secret, and telling the user
 * "wrong password" there would send them the wrong way.
 * @throws INPUT_INVALID when `options.imei` or `password` is not a string.
 */
export async function unwrapKeyForUser(
  password: string,
  entry: WrappedKeyEntry,
  options: { readonly imei: string },
): Promise<Uint8Array> {
  if (typeof options?.imei !== 'string' || options.imei === '') {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'imei must be a non-empty string' });
  }
  const v: unknown = (entry as { v?: unknown } | null)?.v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > KEY_WRAP_VERSION) {
    throw new FieldvaultError('CRYPTO_FORMAT_UNSUPPORTED', { detail: `keyring entry version ${v}` });
  }
  const parsed = v === KEY_WRAP_VERSION ? parseEntry(entry) : undefined;
  if (parsed === undefined) throw wrongPassword();
  let kek: Uint8Array;
  try {
    kek = await deriveKek(password, parsed.context.kdf);
  } catch (err) {
    // Only malformed KDF parameters land here (a password that is not a string is the caller's
    // bug and is reported as such); they are part of the entry, so they read as tampering.
    if ((err as { code?: unknown }).code === 'CRYPTO_KDF_PARAMS_INVALID') throw wrongPassword();
    throw err;
  }
  try {
    return unwrapKey(kek, { keyId: parsed.keyId, nonce: parsed.nonce, wrapped: parsed.wrapped }, {
      ...parsed.context,
      imei: options.imei,
    });
  } finally {
    wipe(kek);
  }
}
