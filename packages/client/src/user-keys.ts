import {
  defaultKdfParams,
  deriveKek,
  unwrapKeyForUser,
  unwrapSuccessor,
  wrapKeyForUser,
  type DbKind,
  type KdfParams,
  type WrappedKeyEntry,
} from '@fieldvault/crypto';
import { FieldvaultError, compareKeyRecords, type KeyRecord } from '@fieldvault/protocol';
import type { KdfCost } from './device-options.js';
import { currentKind, entriesOf, successorOf, withEntry, withoutEntries, type KeyringContent } from './keyring.js';
import type { Logger } from './logger.js';

/*
 * A user's keys on this device: their keyring entries unwrapped with a password, each followed
 * along the key succession to the newest key, the database a login opens or offers a server,
 * and the entries re-wrapped when a key, a kind or the password changed.
 */

/** What wrapping and unwrapping a user's keys needs of the device. */
export interface KeyContext {
  /** Bound into every wrapped key. */
  readonly imei: string;
  /** Argon2id cost of the keys this device wraps; crypto's default when `undefined`. */
  readonly kdf: KdfCost | undefined;
  readonly logger: Logger;
}

/** One of a user's keyring entries, unwrapped, and where its key succession leads. */
export interface UnlockedEntry {
  readonly entry: WrappedKeyEntry;
  /** The key at the end of the succession chain (the entry's own key when it has none). */
  readonly keyId: string;
  readonly key: Uint8Array;
}

export interface Unlocked {
  readonly entries: UnlockedEntry[];
  /** Every key reached, by key id (entries' own keys and every step of their chains). */
  readonly keys: Map<string, Uint8Array>;
}

/** The database a session opens. */
export interface Target {
  readonly kind: DbKind;
  readonly keyId: string;
  readonly key: Uint8Array;
  readonly record: KeyRecord | undefined;
}

export function wipeKeys(keys: Iterable<Uint8Array>): void {
  for (const k of keys) k.fill(0);
}

function kdfParams(cost: KdfCost | undefined): KdfParams {
  const params = defaultKdfParams();
  return cost === undefined ? params : { ...params, ...cost };
}

/** A keyring entry of `username` for `key`, wrapped under `password` with a fresh salt. */
export function wrapEntry(
  ctx: KeyContext,
  username: string,
  password: string,
  key: Uint8Array,
  kind: DbKind,
  keyTimestamp: string | undefined,
): Promise<WrappedKeyEntry> {
  return wrapKeyForUser({
    password,
    key,
    username,
    imei: ctx.imei,
    kind,
    kdf: kdfParams(ctx.kdf),
    ...(keyTimestamp === undefined ? {} : { keyTimestamp }),
  });
}

/** Follows the key succession from `keyId` to the newest key, recording every key reached. */
function follow(k: KeyringContent, keyId: string, key: Uint8Array, keys: Map<string, Uint8Array>): { keyId: string; key: Uint8Array } {
  let current = { keyId, key };
  const seen = new Set([keyId]);
  for (let s = successorOf(k, keyId); s !== undefined && !seen.has(s.toKeyId); s = successorOf(k, current.keyId)) {
    const next = keys.get(s.toKeyId) ?? unwrapSuccessor(current.key, s);
    keys.set(s.toKeyId, next);
    seen.add(s.toKeyId);
    current = { keyId: s.toKeyId, key: next };
  }
  return current;
}

/**
 * Unwraps every keyring entry of `username` that `password` opens and follows each key's
 * succession. A user with no entries costs one key derivation all the same, so the time taken
 * does not tell whether the user exists.
 */
export async function unlock(ctx: KeyContext, k: KeyringContent, username: string, password: string, equalizeTiming = true): Promise<Unlocked> {
  const keys = new Map<string, Uint8Array>();
  const entries: UnlockedEntry[] = [];
  const mine = entriesOf(k, username);
  if (mine.length === 0) {
    if (equalizeTiming) (await deriveKek(password, kdfParams(ctx.kdf))).fill(0);
    return { entries, keys };
  }
  for (const entry of mine) {
    let key: Uint8Array;
    try {
      key = await unwrapKeyForUser(password, entry, { imei: ctx.imei });
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'VAULT_WRONG_PASSWORD') throw err;
      continue;
    }
    keys.set(entry.keyId, key);
    const final = follow(k, entry.keyId, key, keys);
    entries.push({ entry, keyId: final.keyId, key: final.key });
  }
  if (entries.length > 0 && entries.length < mine.length) {
    ctx.logger.warn({ username, entries: mine.length, opened: entries.length }, 'some keyring entries did not open with this password');
  }
  return { entries, keys };
}

/** The kind of database a key is for now: the device's verified key, a server's temporary key, or the entry's own kind. */
function kindOf(k: KeyringContent, u: UnlockedEntry): DbKind {
  return currentKind(k, u.entry.kind, u.keyId);
}

function recordFor(k: KeyringContent, kind: DbKind, id: string): KeyRecord | undefined {
  if (kind === 'verified') return k.verified?.keyId === id ? k.verified : undefined;
  if (kind.startsWith('temporary:')) {
    const r = k.temporary[kind.slice('temporary:'.length)];
    return r?.keyId === id ? r : undefined;
  }
  return undefined;
}

/**
 * Which database a login opens: the device's verified one, else a temporary one, else the user's own kind.
 * @throws VAULT_WRONG_PASSWORD when nothing was unlocked.
 */
export function chooseTarget(k: KeyringContent, u: Unlocked): Target {
  // Lower is better: the device's verified key, a server's current temporary key, any other
  // temporary or verified key, the user's unverified key.
  const rank = (x: UnlockedEntry): number => {
    const kind = kindOf(k, x);
    if (kind === 'verified' && x.keyId === k.verified?.keyId) return 0;
    if (kind.startsWith('temporary:')) return recordFor(k, kind, x.keyId) === undefined ? 2 : 1;
    return kind === 'verified' ? 2 : 3;
  };
  const best = [...u.entries].sort((a, b) => rank(a) - rank(b))[0];
  if (best === undefined) throw new FieldvaultError('VAULT_WRONG_PASSWORD');
  const kind = kindOf(k, best);
  return { kind, keyId: best.keyId, key: best.key, record: recordFor(k, kind, best.keyId) };
}

/**
 * The key this user offers a server at login (flow 2): the one they would open, with its key
 * record — the device's verified key first, then their temporary key for this server, then
 * another server's. None for an unverified user (a phone-made key never leaves the phone).
 */
export function offeredKey(k: KeyringContent, u: Unlocked, serverId: string): { record: KeyRecord; key: Uint8Array } | undefined {
  const rank = (kind: DbKind): number => (kind === 'verified' ? 0 : kind === `temporary:${serverId}` ? 1 : 2);
  let best: { record: KeyRecord; key: Uint8Array; rank: number } | undefined;
  for (const x of u.entries) {
    const kind = kindOf(k, x);
    const record = kind === 'unverified' ? undefined : recordFor(k, kind, x.keyId);
    if (record === undefined) continue;
    const candidate = { record, key: x.key, rank: rank(kind) };
    if (best === undefined || candidate.rank < best.rank || (candidate.rank === best.rank && compareKeyRecords(record, best.record) > 0)) best = candidate;
  }
  return best === undefined ? undefined : { record: best.record, key: best.key };
}

/**
 * The keyring with the user's entries re-wrapped where their key or kind changed (key succession
 * was followed), or all of them (`all`, for a password change) under `password`.
 */
export async function rewrap(ctx: KeyContext, k: KeyringContent, username: string, password: string, u: Unlocked, all: boolean): Promise<KeyringContent> {
  let next = k;
  for (const x of u.entries) {
    const kind = kindOf(k, x);
    if (!all && kind === x.entry.kind && x.keyId === x.entry.keyId) continue;
    const entry = await wrapEntry(ctx, username, password, x.key, kind, recordFor(k, kind, x.keyId)?.issuedAt ?? x.entry.keyTimestamp);
    next = withEntry(
      withoutEntries(next, (e) => e === x.entry),
      entry,
    );
  }
  return next;
}
