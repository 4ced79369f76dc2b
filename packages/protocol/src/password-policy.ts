import { FieldvaultError } from './errors.js';
import { passwordBlocklistEntries } from './password-blocklist.js';

/**
 * Password rules shared by the server and the phone (offline sign-up), after NIST SP 800-63B-4:
 * a length window counted in Unicode code points after NFKC, no composition rules, and a
 * blocklist of common, expected or context-specific values. Nothing else is required of a
 * password: spaces and any printable Unicode are allowed.
 */
export interface PasswordPolicy {
  /** Minimum length in code points after NFKC. NIST: at least 15 when the password is the only factor. */
  readonly minLength: number;
  /** Maximum length in code points after NFKC; NIST asks to allow at least 64. */
  readonly maxLength: number;
}

/** Lowest minimum a deployment may configure (NIST's floor when another factor is present). */
export const PASSWORD_MIN_LENGTH_FLOOR = 8;
/** NIST: verifiers should allow at least 64 characters. */
export const PASSWORD_MAX_LENGTH_FLOOR = 64;
/** Upper bound on the configurable maximum, so a password cannot be used to make hashing slow. */
export const PASSWORD_MAX_LENGTH_CEILING = 256;

export const defaultPasswordPolicy: PasswordPolicy = Object.freeze({ minLength: 15, maxLength: 256 });

/** Context words that make a password expected for this system (checked case-insensitively). */
const systemWords = ['fieldvault', 'rapidftr'];

let blocklist: ReadonlySet<string> | undefined;
function blocklisted(lower: string): boolean {
  blocklist ??= new Set(passwordBlocklistEntries);
  return blocklist.has(lower);
}

export type PasswordProblem = 'PASSWORD_TOO_SHORT' | 'PASSWORD_TOO_LONG' | 'PASSWORD_TOO_COMMON';

export interface PasswordContext {
  /** The account's username: a password containing it is refused. */
  readonly username?: string;
}

/** NFKC, the one normalisation applied before a password is hashed, checked or used in a KDF. */
export function normalizePasswordText(password: string): string {
  return password.normalize('NFKC');
}

function codePoints(text: string): string[] {
  return Array.from(text);
}

/** True when the whole text repeats one unit of at most `maxUnit` code points ("aaaa…", "abcabc…"). */
function isRepetition(chars: readonly string[], maxUnit: number): boolean {
  for (let unit = 1; unit <= maxUnit && unit * 2 <= chars.length; unit += 1) {
    if (chars.length % unit !== 0) continue;
    let same = true;
    for (let i = unit; i < chars.length && same; i += 1) same = chars[i] === chars[i - unit];
    if (same) return true;
  }
  return false;
}

/** True for a run like "abcdefgh…", "987654…" (each code point one more, or one less, than the last). */
function isSequence(chars: readonly string[]): boolean {
  if (chars.length < 3) return false;
  const points = chars.map((c) => c.codePointAt(0) ?? 0);
  const step = (points[1] ?? 0) - (points[0] ?? 0);
  if (step !== 1 && step !== -1) return false;
  for (let i = 2; i < points.length; i += 1) if ((points[i] ?? 0) - (points[i - 1] ?? 0) !== step) return false;
  return true;
}

/** Keyboard rows, columns and the alphabet, forwards; walks along them backwards count too. */
const walks = [
  '1234567890',
  'qwertyuiop',
  'asdfghjkl',
  'zxcvbnm',
  'qwertzuiop',
  'azertyuiop',
  'abcdefghijklmnopqrstuvwxyz',
  '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p',
];
const walkTexts = [...walks, ...walks.map((w) => [...w].reverse().join(''))];

/**
 * True when the whole text is made of runs of at least 3 keys along a keyboard row or column or
 * the alphabet ("qwertyuiopasdfghjkl", "1qaz2wsx3edc4rfv"), each run as long as possible.
 */
function isKeyboardWalk(lower: string): boolean {
  let i = 0;
  while (i < lower.length) {
    let best = 0;
    for (const w of walkTexts) {
      for (let len = lower.length - i; len > best; len -= 1) {
        if (len >= 3 && w.includes(lower.slice(i, i + len))) {
          best = len;
          break;
        }
      }
    }
    if (best < 3) return false;
    i += best;
  }
  return lower.length > 0;
}

/** True when `lower` is a blocklisted word repeated ("passwordpassword") or padded with digits/symbols. */
function isDecoratedCommonWord(lower: string): boolean {
  const core = lower.replace(/^[\d\p{P}\p{S}\s]+|[\d\p{P}\p{S}\s]+$/gu, '');
  if (core.length >= 4 && core !== lower && blocklisted(core)) return true;
  for (const entry of [core, lower]) {
    for (let unit = 4; unit * 2 <= entry.length; unit += 1) {
      if (entry.length % unit !== 0) continue;
      const head = entry.slice(0, unit);
      if (head.repeat(entry.length / unit) === entry && blocklisted(head)) return true;
    }
  }
  return false;
}

/**
 * Checks a password against the policy. Returns the first problem found, or `undefined` when the
 * password is acceptable. The password itself never appears in the result.
 */
export function findPasswordProblem(
  password: string,
  policy: PasswordPolicy = defaultPasswordPolicy,
  context: PasswordContext = {},
): PasswordProblem | undefined {
  const normalized = normalizePasswordText(password);
  const chars = codePoints(normalized);
  if (chars.length < policy.minLength) return 'PASSWORD_TOO_SHORT';
  if (chars.length > policy.maxLength) return 'PASSWORD_TOO_LONG';
  const lower = normalized.toLowerCase();
  if (blocklisted(lower) || isDecoratedCommonWord(lower)) return 'PASSWORD_TOO_COMMON';
  if (isRepetition(codePoints(lower), 4) || isSequence(codePoints(lower)) || isKeyboardWalk(lower)) return 'PASSWORD_TOO_COMMON';
  const username = context.username?.normalize('NFKC').toLowerCase();
  if (username !== undefined && username.length >= 3 && lower.includes(username)) return 'PASSWORD_TOO_COMMON';
  if (systemWords.some((w) => lower.replace(/[\s\d\p{P}\p{S}]/gu, '') === w)) return 'PASSWORD_TOO_COMMON';
  return undefined;
}

/**
 * Checks a password and returns its NFKC form, the one to hash or derive keys from.
 * @throws PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG or PASSWORD_TOO_COMMON.
 */
export function assertPasswordAcceptable(
  password: string,
  policy: PasswordPolicy = defaultPasswordPolicy,
  context: PasswordContext = {},
): string {
  const problem = findPasswordProblem(password, policy, context);
  if (problem === 'PASSWORD_TOO_SHORT') {
    throw new FieldvaultError(problem, { detail: `at least ${policy.minLength} characters`, details: { minLength: policy.minLength } });
  }
  if (problem === 'PASSWORD_TOO_LONG') {
    throw new FieldvaultError(problem, { detail: `at most ${policy.maxLength} characters`, details: { maxLength: policy.maxLength } });
  }
  if (problem !== undefined) throw new FieldvaultError(problem);
  return normalizePasswordText(password);
}

/**
 * Checks that a configured policy is within NIST's bounds.
 * @throws CONFIG_INVALID naming the offending setting.
 */
export function assertPasswordPolicy(policy: PasswordPolicy): PasswordPolicy {
  const { minLength, maxLength } = policy;
  if (!Number.isInteger(minLength) || minLength < PASSWORD_MIN_LENGTH_FLOOR) {
    throw new FieldvaultError('CONFIG_INVALID', { detail: `password.minLength must be an integer ≥ ${PASSWORD_MIN_LENGTH_FLOOR}` });
  }
  if (!Number.isInteger(maxLength) || maxLength < PASSWORD_MAX_LENGTH_FLOOR || maxLength > PASSWORD_MAX_LENGTH_CEILING) {
    throw new FieldvaultError('CONFIG_INVALID', {
      detail: `password.maxLength must be an integer in [${PASSWORD_MAX_LENGTH_FLOOR}, ${PASSWORD_MAX_LENGTH_CEILING}]`,
    });
  }
  if (minLength > maxLength) throw new FieldvaultError('CONFIG_INVALID', { detail: 'password.minLength must not exceed password.maxLength' });
  return Object.freeze({ minLength, maxLength });
}
