import type { DbKind, SuccessionEntry, WrappedKeyEntry } from '@fieldvault/crypto';
import { KEY_ID_PATTERN, isDbKind } from '@fieldvault/crypto';
import { FieldvaultError, USERNAME_PATTERN, parseKeyRecord, type KeyRecord } from '@fieldvault/protocol';
import { canonicalJson } from './canonical-json.js';
import { sha256Hex } from './digest.js';
import type { FileSystem } from './file-system.js';

/*
 * The keyring file (`<directory>/keyring.json`) holds only wrapped keys and public metadata:
 *
 *   { "format": "fieldvault-keyring", "v": 1, "sha256": "<hex>", "content": { … } }
 *
 * `sha256` is SHA-256 over the canonical JSON of `content` (sorted keys, no whitespace). It catches
 * a torn, truncated or hand-edited file, which is then refused (VAULT_KEYRING_CORRUPT) and never
 * replaced. It is not a MAC (no key exists before a login): deliberate edits of an entry are caught
 * by the entry's own AEAD tag, whose AAD binds user, device, kind, key id, key timestamp and KDF
 * parameters; the other fields (key records, pending migrations) are public and checked on use.
 */

export const KEYRING_FILE = 'keyring.json';
export const KEYRING_FORMAT = 'fieldvault-keyring';
export const KEYRING_VERSION = 1;

/**
 * A migration that was started and must be finished (DESIGN.md §3: crash-safe, resumed on next
 * open). `merge`: every record of the database under `fromKeyId` into the one under `toKeyId`,
 * then the source is deleted. `move`: only `username`'s records (flow 1, unverified → verified).
 */
export interface PendingMigration {
  readonly op: 'merge' | 'move';
  readonly fromKeyId: string;
  readonly toKeyId: string;
  /** For `move`: whose records move. */
  readonly username?: string;
  /**
   * The source key wrapped under the target key (crypto's succession format, from the target to the
   * source), so that whoever can open the target can finish the migration after a crash.
   */
  readonly sourceKey: SuccessionEntry;
  /** ISO time the migration was journaled (for logs and support). */
  readonly startedAt: string;
}

/** Everything the keyring holds. Immutable: every change makes a new value. */
export interface KeyringContent {
  readonly imei: string;
  /** Counts writes, for support and to make each write differ. */
  readonly generation: number;
  /** The device's current verified key record, `null` before the first online login. */
  readonly verified: KeyRecord | null;
  /** Key records of temporary databases, by server id. */
  readonly temporary: Readonly<Record<string, KeyRecord>>;
  /** Wrapped keys, at most one per (username, kind). */
  readonly entries: readonly WrappedKeyEntry[];
  /** Key succession: "after key `fromKeyId` comes `toKeyId`", at most one per `fromKeyId`. */
  readonly successions: readonly SuccessionEntry[];
  readonly pending: readonly PendingMigration[];
}

export function emptyKeyring(imei: string): KeyringContent {
  return { imei, generation: 0, verified: null, temporary: {}, entries: [], successions: [], pending: [] };
}

function corrupt(detail: string, cause?: unknown): FieldvaultError {
  return new FieldvaultError('VAULT_KEYRING_CORRUPT', cause === undefined ? { detail } : { detail, cause });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isKeyId(v: unknown): v is string {
  return typeof v === 'string' && KEY_ID_PATTERN.test(v);
}

function checkSuccession(s: unknown, where: string): SuccessionEntry {
  if (!isObject(s) || !isKeyId(s['fromKeyId']) || !isKeyId(s['toKeyId']) || typeof s['nonce'] !== 'string' || typeof s['wrapped'] !== 'string') {
    throw corrupt(`${where} is malformed`);
  }
  return s as unknown as SuccessionEntry;
}

function checkKeyRecord(r: unknown, where: string): KeyRecord {
  try {
    return parseKeyRecord(r);
  } catch (cause) {
    throw corrupt(`${where} is malformed`, cause);
  }
}

/** Structural check of the content read from disk; the entries' cryptographic fields are checked by crypto at unwrap. */
function checkContent(c: unknown, imei: string): KeyringContent {
  if (!isObject(c)) throw corrupt('content is not an object');
  if (c['imei'] !== imei) {
    // A wrong IMEI passed by the app, not damage: say so, without the wipe hint (audit M4).
    if (typeof c['imei'] === 'string') throw new FieldvaultError('VAULT_DEVICE_MISMATCH', { detail: 'the keyring belongs to another IMEI', details: { field: 'imei' } });
    throw corrupt('the keyring belongs to another device');
  }
  const generation = c['generation'];
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) throw corrupt('generation is malformed');
  const verified = c['verified'] === null ? null : checkKeyRecord(c['verified'], 'verified');
  if (!isObject(c['temporary'])) throw corrupt('temporary is malformed');
  const temporary: Record<string, KeyRecord> = {};
  for (const [server, record] of Object.entries(c['temporary'])) temporary[server] = checkKeyRecord(record, `temporary.${server}`);
  const { entries, successions, pending } = c;
  if (!Array.isArray(entries) || !Array.isArray(successions) || !Array.isArray(pending)) throw corrupt('a list is malformed');
  const seen = new Set<string>();
  entries.forEach((e: unknown, i) => {
    if (!isObject(e) || typeof e['username'] !== 'string' || !USERNAME_PATTERN.test(e['username']) || !isDbKind(e['kind']) || !isKeyId(e['keyId'])) {
      throw corrupt(`entries.${i} is malformed`);
    }
    const id = `${e['username']}\u0000${e['kind']}`;
    if (seen.has(id)) throw corrupt(`entries.${i} repeats a user and kind`);
    seen.add(id);
  });
  successions.forEach((s: unknown, i) => checkSuccession(s, `successions.${i}`));
  pending.forEach((p: unknown, i) => {
    const where = `pending.${i}`;
    if (!isObject(p) || (p['op'] !== 'merge' && p['op'] !== 'move') || !isKeyId(p['fromKeyId']) || !isKeyId(p['toKeyId'])) {
      throw corrupt(`${where} is malformed`);
    }
    if (p['op'] === 'move' && (typeof p['username'] !== 'string' || !USERNAME_PATTERN.test(p['username']))) throw corrupt(`${where} is malformed`);
    if (typeof p['startedAt'] !== 'string') throw corrupt(`${where} is malformed`);
    const source = checkSuccession(p['sourceKey'], `${where}.sourceKey`);
    if (source.fromKeyId !== p['toKeyId'] || source.toKeyId !== p['fromKeyId']) throw corrupt(`${where}.sourceKey does not match`);
  });
  return {
    imei,
    generation,
    verified,
    temporary,
    entries: entries as WrappedKeyEntry[],
    successions: successions as SuccessionEntry[],
    pending: pending as PendingMigration[],
  };
}

/**
 * Parses the bytes of a keyring file.
 * @throws VAULT_KEYRING_CORRUPT when the file is not JSON, not a keyring, fails its checksum, or
 * its content is malformed or belongs to another IMEI.
 * @throws VAULT_FORMAT_UNSUPPORTED when it was written by a newer keyring format.
 */
export function parseKeyring(bytes: Uint8Array, imei: string): KeyringContent {
  let file: unknown;
  try {
    file = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw corrupt('the file is not JSON (torn or edited)', cause);
  }
  if (!isObject(file) || file['format'] !== KEYRING_FORMAT) throw corrupt('the file is not a fieldvault keyring');
  const v = file['v'];
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > KEYRING_VERSION) {
    throw new FieldvaultError('VAULT_FORMAT_UNSUPPORTED', { detail: `keyring version ${v}` });
  }
  if (v !== KEYRING_VERSION) throw corrupt('unknown keyring version');
  if (typeof file['sha256'] !== 'string' || sha256Hex(canonicalJson(file['content'])) !== file['sha256']) {
    throw corrupt('checksum mismatch (torn or edited)');
  }
  return checkContent(file['content'], imei);
}

/**
 * The IMEI a keyring file names, read without checking the rest (`undefined` when the file does not
 * parse that far): lets `createDevice` tell a wrong IMEI from a damaged file (audit M4).
 */
export function keyringImeiOf(bytes: Uint8Array): string | undefined {
  try {
    const file = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
    const imei = isObject(file) && isObject(file['content']) ? file['content']['imei'] : undefined;
    return typeof imei === 'string' ? imei : undefined;
  } catch {
    return undefined;
  }
}

/** The bytes of a keyring file for `content`. */
export function serializeKeyring(content: KeyringContent): Uint8Array {
  const plain = JSON.parse(JSON.stringify(content)) as unknown;
  const file = { format: KEYRING_FORMAT, v: KEYRING_VERSION, sha256: sha256Hex(canonicalJson(plain)), content: plain };
  return new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`);
}

/** How many loaded versions a `KeyringFile` remembers as bases for `save` (a change is derived from a recent load). */
const REMEMBERED_BASES = 16;

/**
 * Loads and atomically saves the keyring file through the `FileSystem` seam.
 *
 * Several `Device` objects may share one directory (an app and its background worker, two
 * processes): every `save` runs under the file system's lock (`FileSystem.withLock`), re-reads
 * the file there, and when another writer got in since the version the change was made from (its
 * `generation` differs), applies this change to the fresh copy instead of overwriting it (audit
 * H3): `rebaseKeyring`.
 */
export class KeyringFile {
  readonly #fs: FileSystem;
  readonly #imei: string;
  /** Contents this object loaded or wrote, by generation: the bases `save` diffs against. */
  readonly #bases = new Map<number, KeyringContent>();

  constructor(fs: FileSystem, imei: string) {
    this.#fs = fs;
    this.#imei = imei;
  }

  #remember(k: KeyringContent): KeyringContent {
    this.#bases.delete(k.generation);
    this.#bases.set(k.generation, k);
    for (const g of this.#bases.keys()) {
      if (this.#bases.size <= REMEMBERED_BASES) break;
      this.#bases.delete(g);
    }
    return k;
  }

  async #read(): Promise<KeyringContent> {
    const bytes = await this.#fs.readFile(KEYRING_FILE);
    return bytes === undefined ? emptyKeyring(this.#imei) : parseKeyring(bytes, this.#imei);
  }

  /**
   * The keyring; an empty one when the file does not exist yet (a new device).
   * @throws VAULT_KEYRING_CORRUPT, VAULT_FORMAT_UNSUPPORTED (see `parseKeyring`), VAULT_DEVICE_MISMATCH.
   */
  async load(): Promise<KeyringContent> {
    return this.#remember(await this.#read());
  }

  /** Runs `work` under the keyring's cross-process lock (when the file system has one). */
  async #locked<T>(work: () => Promise<T>): Promise<T> {
    return this.#fs.withLock === undefined ? work() : this.#fs.withLock(KEYRING_FILE, work);
  }

  /**
   * Writes `next` (a change of a version this object loaded) atomically and returns what was
   * written. Under the lock, re-reads the file and refuses to write over a keyring that has become
   * unreadable; when another writer saved since `next`'s base, writes `next`'s change applied to
   * that fresh version (`rebaseKeyring`) instead, so neither write is lost.
   * @throws VAULT_KEYRING_CORRUPT when the file on disk no longer parses.
   * @throws VAULT_STORAGE_FAILED when the write fails; VAULT_BUSY when the lock stays held.
   */
  async save(next: KeyringContent): Promise<KeyringContent> {
    return this.#locked(async () => {
      const fresh = await this.#read();
      let merged = next;
      if (fresh.generation !== next.generation) {
        // Without the base (never expected: every change starts from a load) the change is applied
        // as a whole over the fresh copy, as before the lock existed.
        merged = rebaseKeyring(this.#bases.get(next.generation) ?? fresh, next, fresh);
      }
      const written: KeyringContent = { ...pruneSuccessions(merged), generation: fresh.generation + 1 };
      await this.#fs.writeFileAtomic(KEYRING_FILE, serializeKeyring(written), { mode: 0o600 });
      return this.#remember(written);
    });
  }

  async remove(): Promise<void> {
    await this.#locked(() => this.#fs.remove(KEYRING_FILE));
    this.#bases.clear();
  }
}

/**
 * `next`'s change from `base`, applied to `fresh` (a version another writer saved since `base`):
 * per item — an entry per (username, kind), a succession per `fromKeyId`, a temporary key record
 * per server, a pending migration per (op, keys, user), the verified key record — what `next`
 * changed, added or removed relative to `base` is taken from `next`; everything else from `fresh`.
 * When both changed the same item, `next` (the later writer) wins that item.
 */
export function rebaseKeyring(base: KeyringContent, next: KeyringContent, fresh: KeyringContent): KeyringContent {
  const same = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);
  function items<T>(b: readonly T[], n: readonly T[], f: readonly T[], key: (x: T) => string): T[] {
    const bm = new Map(b.map((x) => [key(x), x]));
    const nm = new Map(n.map((x) => [key(x), x]));
    const out = new Map(f.map((x) => [key(x), x]));
    for (const k of new Set([...bm.keys(), ...nm.keys()])) {
      const bv = bm.get(k);
      const nv = nm.get(k);
      if (bv !== undefined && nv !== undefined && same(bv, nv)) continue;
      if (nv === undefined) out.delete(k);
      else out.set(k, nv);
    }
    return [...out.values()];
  }
  const temp = (r: Readonly<Record<string, KeyRecord>>): [string, KeyRecord][] => Object.entries(r);
  const temporary = Object.fromEntries(items(temp(base.temporary), temp(next.temporary), temp(fresh.temporary), ([id]) => id));
  return {
    imei: fresh.imei,
    generation: fresh.generation,
    verified: same(base.verified, next.verified) ? fresh.verified : next.verified,
    temporary,
    entries: items(base.entries, next.entries, fresh.entries, (e) => `${e.username}\u0000${e.kind}`),
    successions: items(base.successions, next.successions, fresh.successions, (s) => s.fromKeyId),
    pending: items(base.pending, next.pending, fresh.pending, (p) => `${p.op}\u0000${p.fromKeyId}\u0000${p.toKeyId}\u0000${p.username}`),
  };
}

// ---- pure helpers on KeyringContent ----

/** The entries of `username`. */
export function entriesOf(k: KeyringContent, username: string): WrappedKeyEntry[] {
  return k.entries.filter((e) => e.username === username);
}

/** `k` with `entry` added, replacing any entry of the same user and kind. */
export function withEntry(k: KeyringContent, entry: WrappedKeyEntry): KeyringContent {
  return { ...k, entries: [...k.entries.filter((e) => !(e.username === entry.username && e.kind === entry.kind)), entry] };
}

/** `k` without the entries `drop` selects. */
export function withoutEntries(k: KeyringContent, drop: (e: WrappedKeyEntry) => boolean): KeyringContent {
  return { ...k, entries: k.entries.filter((e) => !drop(e)) };
}

/** `k` with a succession added (replacing an older one from the same key). */
export function withSuccession(k: KeyringContent, s: SuccessionEntry): KeyringContent {
  return { ...k, successions: [...k.successions.filter((x) => x.fromKeyId !== s.fromKeyId), s] };
}

/** The succession entry that follows `keyId`, if any. */
export function successorOf(k: KeyringContent, keyId: string): SuccessionEntry | undefined {
  return k.successions.find((s) => s.fromKeyId === keyId);
}

/**
 * The key `keyId` leads to through the recorded successions (`keyId` itself when none follows it).
 * Key ids only, nothing unwrapped: a device with no one logged in can tell which key an entry ends at.
 */
export function latestKeyId(k: KeyringContent, keyId: string): string {
  const seen = new Set([keyId]);
  let current = keyId;
  for (let s = successorOf(k, current); s !== undefined && !seen.has(s.toKeyId); s = successorOf(k, current)) {
    seen.add(s.toKeyId);
    current = s.toKeyId;
  }
  return current;
}

/**
 * The kind of database an entry opens now, given the key its succession ends at (`latestKey`): the
 * device's verified database once that is the verified key, else the entry's own kind. An entry
 * written before a migration keeps its old kind until its user logs in again (flow 4: the other
 * user's `temporary:<server>` entry, whose database became the verified one), so every reader of
 * kinds goes through this.
 */
export function currentKind(k: KeyringContent, entryKind: DbKind, latestKey: string): DbKind {
  if (k.verified !== null && latestKey === k.verified.keyId) return 'verified';
  return entryKind;
}

/** Same migration (op, keys, user)? */
export function sameMigration(a: PendingMigration, b: PendingMigration): boolean {
  return a.op === b.op && a.fromKeyId === b.fromKeyId && a.toKeyId === b.toKeyId && a.username === b.username;
}

export function withPending(k: KeyringContent, p: PendingMigration): KeyringContent {
  return { ...k, pending: [...k.pending.filter((x) => !sameMigration(x, p)), p] };
}

export function withoutPending(k: KeyringContent, p: PendingMigration): KeyringContent {
  return { ...k, pending: k.pending.filter((x) => !sameMigration(x, p)) };
}

/**
 * `k` without succession entries no entry can reach any more (every user who held the old key has
 * been re-wrapped), so the file does not grow with every key change.
 */
export function pruneSuccessions(k: KeyringContent): KeyringContent {
  const reachable = new Set<string>();
  for (const e of k.entries) {
    let id: string | undefined = e.keyId;
    while (id !== undefined && !reachable.has(id)) {
      reachable.add(id);
      id = successorOf(k, id)?.toKeyId;
    }
  }
  const successions = k.successions.filter((s) => reachable.has(s.fromKeyId));
  return successions.length === k.successions.length ? k : { ...k, successions };
}
