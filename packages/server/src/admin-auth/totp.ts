import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { deriveSubkey, hmacSha256, openWithKek, sealWithKek, toHex } from '@fieldvault/crypto';

/*
 * RFC 6238 TOTP for admin accounts, with the parameters every authenticator app supports:
 * HMAC-SHA-1, 6 digits, 30-second steps, a 160-bit secret (RFC 4226 §4). Codes are accepted one
 * step either side of the server's clock; the caller refuses a step at or before the last one
 * used (replay). Recovery codes are 80-bit random strings kept only as keyed digests.
 */

export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** Steps accepted either side of now (clock drift between the server and the phone). */
export const TOTP_WINDOW = 1;
export const RECOVERY_CODE_COUNT = 10;

/** AAD of a sealed TOTP secret: binds it to its account, so it can't be moved to another user. */
const SECRET_AAD = 'fieldvault/totp-secret/v1';
/** HKDF label of the key that digests recovery codes (a store dump alone can't test guesses). */
const RECOVERY_KEY_LABEL = 'fieldvault/recovery-code/v1';

export const TOTP_CODE_PATTERN = /^[0-9]{6}$/;
/** `xxxx-xxxx-xxxx-xxxx` of RFC 4648 base32 letters (case and dashes are ignored when typed). */
export const RECOVERY_CODE_PATTERN = /^[A-Za-z2-7]{4}(-?[A-Za-z2-7]{4}){3}$/;

function totpOf(secret: Uint8Array, issuer = 'fieldvault', label = 'admin'): TOTP {
  return new TOTP({
    issuer,
    label,
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
  });
}

export function newTotpSecret(): Uint8Array {
  return new Uint8Array(randomBytes(20));
}

export function sealTotpSecret(kek: Uint8Array, username: string, secret: Uint8Array): string {
  return sealWithKek(kek, secret, `${SECRET_AAD}\n${username}`);
}

/** @throws CRYPTO_ENVELOPE_INVALID when the sealed secret was altered, moved or sealed under another KEK. */
export function openTotpSecret(kek: Uint8Array, username: string, sealed: string): Uint8Array {
  return openWithKek(kek, sealed, `${SECRET_AAD}\n${username}`);
}

/**
 * The issuer an authenticator app shows for this server's accounts: the configured issuer and the
 * server id (`fieldvault server-a`), so an admin of several servers can tell their entries apart
 * and a new QR code of one server never replaces another's entry (audit s16 F10).
 */
export function totpIssuerOf(issuer: string, serverId: string): string {
  return `${issuer} ${serverId}`;
}

/**
 * What an authenticator app needs: the base32 secret and the `otpauth://totp/…` URI (QR code
 * content), e.g. `otpauth://totp/fieldvault%20server-a:admin?issuer=fieldvault%20server-a&…`.
 * Only the name changes with the server: codes depend on the secret alone.
 */
export function enrolmentOf(secret: Uint8Array, issuer: string, serverId: string, username: string): { secret: string; otpauthUri: string; issuer: string } {
  const named = totpIssuerOf(issuer, serverId);
  const totp = totpOf(secret, named, username);
  return { secret: totp.secret.base32, otpauthUri: totp.toString(), issuer: named };
}

/** The time step of `nowMs`. */
export function stepAt(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS);
}

/** The step whose code `code` is, within the window around `nowMs`, or null when it matches none. */
export function matchTotpStep(secret: Uint8Array, code: string, nowMs: number): number | null {
  if (!TOTP_CODE_PATTERN.test(code)) return null;
  const delta = totpOf(secret).validate({ token: code, timestamp: nowMs, window: TOTP_WINDOW });
  return delta === null ? null : stepAt(nowMs) + delta;
}

/** The code for a step (tests and the enrolment check only; never sent anywhere). */
export function totpCodeAt(secret: Uint8Array, nowMs: number): string {
  return totpOf(secret).generate({ timestamp: nowMs });
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Fresh recovery codes as shown to the admin once: `abcd-efgh-ijkl-mnop`. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => base32(new Uint8Array(randomBytes(10))).replace(/(.{4})(?=.)/g, '$1-'));
}

/** The keyed digest a recovery code is stored as (case and dashes ignored). */
export function recoveryCodeDigest(kek: Uint8Array, code: string): string {
  const key = deriveSubkey(kek, RECOVERY_KEY_LABEL);
  try {
    return toHex(hmacSha256(key, code.toLowerCase().replaceAll('-', '')));
  } finally {
    key.fill(0);
  }
}
