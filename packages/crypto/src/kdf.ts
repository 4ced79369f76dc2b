import { FieldvaultError } from '@fieldvault/protocol';
import { argon2idRaw } from './argon2id.js';
import { KEY_LENGTH, isBytes, randomBytes } from './bytes.js';
import { fromBase64, toBase64, utf8 } from './encoding.js';
import { normalizePassword } from './password.js';

/** Argon2id parameters of a password-derived key-encryption key. */
export interface KdfParams {
  readonly alg: 'argon2id';
  /** Memory cost in KiB. */
  readonly m: number;
  /** Time cost (passes). */
  readonly t: number;
  /** Parallelism (lanes). */
  readonly p: number;
  /** 16 random bytes, fresh per keyring entry. */
  readonly salt: Uint8Array;
}

/** `KdfParams` as stored in the keyring file: the salt as standard base64. */
export interface KdfParamsJson {
  readonly alg: 'argon2id';
  readonly m: number;
  readonly t: number;
  readonly p: number;
  readonly salt: string;
}

export const KDF_SALT_LENGTH = 16;

/**
 * Parameters are clamped into these bounds before every derivation. The floor is OWASP's
 * minimum for Argon2id (19 MiB, t=2), so an edited file cannot make a derivation cheap to brute
 * force; the ceiling (256 MiB, t=10, p=4) keeps an edited file from exhausting a phone's memory.
 */
export const kdfBounds = {
  m: { min: 19456, max: 262144 },
  t: { min: 2, max: 10 },
  p: { min: 1, max: 4 },
} as const;

/** Defaults: 64 MiB, 3 passes, 1 lane (about 150 ms on a 2-core server, more on a phone). */
export const kdfDefaults = { m: 65536, t: 3, p: 1 } as const;

/** The default parameters with a fresh random salt. */
export function defaultKdfParams(): KdfParams {
  return { alg: 'argon2id', ...kdfDefaults, salt: randomBytes(KDF_SALT_LENGTH) };
}

function invalid(detail: string): FieldvaultError {
  return new FieldvaultError('CRYPTO_KDF_PARAMS_INVALID', { detail });
}

function clamp(value: unknown, name: 'm' | 't' | 'p'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(`${name} must be an integer`);
  const { min, max } = kdfBounds[name];
  return Math.min(max, Math.max(min, value));
}

/**
 * The parameters actually used for a derivation: `m`, `t`, `p` moved into `kdfBounds`.
 * @throws CRYPTO_KDF_PARAMS_INVALID when `alg` is not "argon2id", a cost is not an integer, or
 * the salt is not exactly 16 bytes.
 */
export function clampKdfParams(params: KdfParams): KdfParams {
  if (typeof params !== 'object' || params === null) throw invalid('parameters must be an object');
  if (params.alg !== 'argon2id') throw invalid('alg must be "argon2id"');
  if (!isBytes(params.salt) || params.salt.byteLength !== KDF_SALT_LENGTH) {
    throw invalid(`salt must be ${KDF_SALT_LENGTH} bytes`);
  }
  return { alg: 'argon2id', m: clamp(params.m, 'm'), t: clamp(params.t, 't'), p: clamp(params.p, 'p'), salt: params.salt };
}

/**
 * Derives a 32-byte key-encryption key from a password with Argon2id over the NFKC-normalised
 * password, after clamping the parameters (see `kdfBounds`).
 * @throws CRYPTO_KDF_PARAMS_INVALID when the parameters are malformed (see `clampKdfParams`).
 * @throws INPUT_INVALID when `password` is not a string.
 */
export async function deriveKek(password: string, params: KdfParams): Promise<Uint8Array> {
  const used = clampKdfParams(params);
  const pw = utf8(normalizePassword(password));
  try {
    return await argon2idRaw({ password: pw, salt: used.salt, m: used.m, t: used.t, p: used.p, length: KEY_LENGTH });
  } finally {
    pw.fill(0);
  }
}

/** The stored form of `params` (salt as base64). */
export function kdfParamsToJson(params: KdfParams): KdfParamsJson {
  return { alg: params.alg, m: params.m, t: params.t, p: params.p, salt: toBase64(params.salt) };
}

/**
 * Reads stored parameters exactly as written (no clamping: the stored values are what the
 * keyring AAD authenticates; `deriveKek` clamps at use).
 * @throws CRYPTO_KDF_PARAMS_INVALID when a field is missing, of the wrong type, or the salt is
 * not base64 of 16 bytes.
 */
export function kdfParamsFromJson(json: unknown): KdfParams {
  if (typeof json !== 'object' || json === null) throw invalid('parameters must be an object');
  const o = json as Record<string, unknown>;
  if (o['alg'] !== 'argon2id') throw invalid('alg must be "argon2id"');
  for (const name of ['m', 't', 'p'] as const) {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw invalid(`${name} must be an integer`);
  }
  if (typeof o['salt'] !== 'string') throw invalid('salt must be a base64 string');
  let salt: Uint8Array;
  try {
    salt = fromBase64(o['salt']);
  } catch {
    throw invalid('salt must be base64');
  }
  if (salt.byteLength !== KDF_SALT_LENGTH) throw invalid(`salt must be ${KDF_SALT_LENGTH} bytes`);
  return { alg: 'argon2id', m: o['m'] as number, t: o['t'] as number, p: o['p'] as number, salt };
}
