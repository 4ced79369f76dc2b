import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { generateDbKey, kdfBounds, wrapKeyForUser, wrapSuccessor } from '@fieldvault/crypto';
import { KEYRING_FILE, createNodeFileSystem, parseKeyring, serializeKeyring, type KeyringContent } from '../src/index.js';
import { KeyringFile, emptyKeyring, keyringImeiOf, pruneSuccessions, rebaseKeyring, withEntry, withSuccession } from '../src/keyring.js';

const IMEI = '490154203237518';
const kdf = { alg: 'argon2id', m: kdfBounds.m.min, t: kdfBounds.t.min, p: 1, salt: new Uint8Array(16).fill(7) } as const;

async function sample(): Promise<KeyringContent> {
  const key = generateDbKey();
  const entry = await wrapKeyForUser({ password: 'amber lantern over quiet harbour', key, username: 'amina', imei: IMEI, kind: 'unverified', kdf });
  return withEntry(emptyKeyring(IMEI), entry);
}

function code(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return 'no error';
}

t.test('a keyring survives serialisation unchanged', async (t) => {
  const k = await sample();
  t.same(parseKeyring(serializeKeyring(k), IMEI), k);
});

t.test('a keyring cut short is VAULT_KEYRING_CORRUPT', async (t) => {
  const bytes = serializeKeyring(await sample());
  for (const cut of [0, 1, 10, Math.floor(bytes.length / 2), bytes.length - 2]) {
    t.equal(code(() => parseKeyring(bytes.subarray(0, cut), IMEI)), 'VAULT_KEYRING_CORRUPT', `cut at ${cut}`);
  }
});

t.test('an edited keyring fails its checksum with VAULT_KEYRING_CORRUPT', async (t) => {
  const text = new TextDecoder().decode(serializeKeyring(await sample()));
  t.equal(code(() => parseKeyring(new TextEncoder().encode(text.replace('"generation": 0', '"generation": 1')), IMEI)), 'VAULT_KEYRING_CORRUPT');
  t.equal(code(() => parseKeyring(new TextEncoder().encode(text.replace('"amina"', '"bilal"')), IMEI)), 'VAULT_KEYRING_CORRUPT');
});

t.test('a keyring of another IMEI is VAULT_DEVICE_MISMATCH, not damage (SDK audit M4)', async (t) => {
  const bytes = serializeKeyring(await sample());
  t.equal(code(() => parseKeyring(bytes, '356938035643809')), 'VAULT_DEVICE_MISMATCH');
  t.equal(keyringImeiOf(bytes), IMEI, 'the IMEI it names is readable without the rest');
  t.equal(keyringImeiOf(bytes.subarray(0, 20)), undefined);
});

t.test('a save over a version another writer saved since applies the change to that version (SDK audit H3)', async (t) => {
  const dir = t.testdir();
  const first = new KeyringFile(createNodeFileSystem(dir), IMEI);
  const second = new KeyringFile(createNodeFileSystem(dir), IMEI);
  const amina = (await sample()).entries[0]!;
  const bilal = { ...(await sample()).entries[0]!, username: 'bilal' };
  const base1 = await first.load();
  const base2 = await second.load();
  await first.save(withEntry(base1, amina));
  const written = await second.save(withEntry(base2, bilal));
  t.same(written.entries.map((e) => e.username).sort(), ['amina', 'bilal'], 'both entries kept');
  t.equal(written.generation, 2, 'the generation counts both writes');
  // A removal made from an older version removes only what it removed.
  const stale = await first.load();
  await second.save(withEntry(await second.load(), { ...amina, username: 'carl' }));
  const after = await first.save({ ...stale, entries: stale.entries.filter((e) => e.username !== 'amina') });
  t.same(after.entries.map((e) => e.username).sort(), ['bilal', 'carl']);
  t.same(parseKeyring(readFileSync(join(dir, KEYRING_FILE)), IMEI), after, 'what save returns is what is on disk');
  t.notOk(readdirSync(dir).some((n) => n.endsWith('.lock')), 'no lock left behind');
});

t.test('rebaseKeyring: a change wins over the other writer only where it changed something', async (t) => {
  const base = await sample();
  const other = withEntry(base, { ...base.entries[0]!, username: 'bilal' });
  const mine = { ...withEntry(base, { ...base.entries[0]!, username: 'carl' }), verified: null };
  const merged = rebaseKeyring(base, mine, { ...other, generation: 5 });
  t.same(merged.entries.map((e) => e.username).sort(), ['amina', 'bilal', 'carl']);
  t.equal(merged.generation, 5);
  t.same(rebaseKeyring(base, base, other).entries, other.entries, 'no change: the fresh version as it is');
});

t.test('a keyring from a newer format version is VAULT_FORMAT_UNSUPPORTED', async (t) => {
  const file = JSON.parse(new TextDecoder().decode(serializeKeyring(await sample()))) as { v: number };
  file.v = 2;
  t.equal(code(() => parseKeyring(new TextEncoder().encode(JSON.stringify(file)), IMEI)), 'VAULT_FORMAT_UNSUPPORTED');
});

t.test('key order and whitespace do not affect the checksum', async (t) => {
  const k = await sample();
  const file = JSON.parse(new TextDecoder().decode(serializeKeyring(k))) as Record<string, unknown>;
  const reordered = { content: file['content'], sha256: file['sha256'], v: file['v'], format: file['format'] };
  t.same(parseKeyring(new TextEncoder().encode(JSON.stringify(reordered)), IMEI), k);
});

t.test('save writes atomically, bumps the generation and leaves no temporary file', async (t) => {
  const dir = t.testdir();
  const file = new KeyringFile(createNodeFileSystem(dir), IMEI);
  const written = await file.save(await sample());
  t.equal(written.generation, 1);
  t.same(await file.load(), written);
  t.same(readdirSync(dir), [KEYRING_FILE]);
});

t.test('save refuses to replace a keyring that no longer parses', async (t) => {
  const dir = t.testdir();
  const file = new KeyringFile(createNodeFileSystem(dir), IMEI);
  await file.save(await sample());
  const path = join(dir, KEYRING_FILE);
  writeFileSync(path, '{"torn":');
  await t.rejects(file.save(await sample()), { code: 'VAULT_KEYRING_CORRUPT' });
  t.equal(readFileSync(path, 'utf8'), '{"torn":');
});

t.test('succession entries no keyring entry can reach are pruned', async (t) => {
  const k = await sample();
  const held = generateDbKey();
  const entryKeyId = k.entries[0]?.keyId as string;
  const k1 = generateDbKey();
  const k2 = generateDbKey();
  // An unreachable chain k1 → k2, and nothing reaching from the entry.
  const withChain = withSuccession(withSuccession(k, wrapSuccessor(k1, k2)), wrapSuccessor(held, k1));
  t.equal(withChain.successions.length, 2);
  t.same(pruneSuccessions(withChain).successions, []);
  t.ok(entryKeyId);
});
