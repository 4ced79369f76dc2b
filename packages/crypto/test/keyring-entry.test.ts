import t from 'tap';
import type { KdfParams, WrappedKeyEntry } from '../src/index.js';
import {
  defaultKdfParams,
  fromBase64,
  generateDbKey,
  kdfBounds,
  keyId,
  toBase64,
  toHex,
  unwrapKeyForUser,
  wrapKeyForUser,
} from '../src/index.js';

// Cheapest in-bounds parameters keep each Argon2 run near 30 ms; the defaults are tested once.
const fast = (): KdfParams => ({ ...defaultKdfParams(), m: kdfBounds.m.min, t: kdfBounds.t.min });
const imei = '490154203237518';
const password = 'a long enough passphrase for the field';
const key = generateDbKey();
const entry = await wrapKeyForUser({ password, key, username: 'amina', imei, kind: 'verified', kdf: fast() });

async function failure(p: Promise<unknown>): Promise<{ code?: unknown; message?: unknown }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: unknown; message?: unknown };
  }
  throw new Error('expected a rejection');
}

const wrongPassword = await failure(unwrapKeyForUser('not the password', entry, { imei }));

function flip(b64: string, byte: number): string {
  const bytes = fromBase64(b64);
  const i = byte < 0 ? bytes.byteLength + byte : byte;
  bytes[i] = (bytes[i] ?? 0) ^ 0x01;
  return toBase64(bytes);
}

t.test('an entry made by wrapKeyForUser unwraps with the same password on the same device', async (t) => {
  t.same(await unwrapKeyForUser(password, entry, { imei }), key);
});

t.test('an entry has the documented serialisable shape', async (t) => {
  t.same(Object.keys(entry).sort(), ['kdf', 'keyId', 'kind', 'nonce', 'username', 'v', 'wrapped']);
  t.match(entry, {
    v: 1,
    username: 'amina',
    kind: 'verified',
    keyId: keyId(key),
    kdf: { alg: 'argon2id', m: kdfBounds.m.min, t: kdfBounds.t.min, p: 1, salt: String },
    nonce: /^[A-Za-z0-9+/]{16}$/,
    wrapped: /^[A-Za-z0-9+/]{64}$/,
  });
  const roundTripped = JSON.parse(JSON.stringify(entry)) as WrappedKeyEntry;
  t.same(await unwrapKeyForUser(password, roundTripped, { imei }), key);
});

t.test('wrapKeyForUser uses the default KDF parameters when none are given', async (t) => {
  const e = await wrapKeyForUser({ password, key, username: 'amina', imei, kind: 'unverified' });
  t.match(e.kdf, { alg: 'argon2id', m: 65536, t: 3, p: 1 });
  t.same(await unwrapKeyForUser(password, e, { imei }), key);
});

t.test('two wraps of the same key for the same user differ', async (t) => {
  const params = fast();
  const a = await wrapKeyForUser({ password, key, username: 'amina', imei, kind: 'verified', kdf: params });
  const b = await wrapKeyForUser({ password, key, username: 'amina', imei, kind: 'verified', kdf: params });
  t.not(a.nonce, b.nonce);
  t.not(a.wrapped, b.wrapped);
});

t.test('KDF parameters below the floor are stored clamped', async (t) => {
  const e = await wrapKeyForUser({ password, key, username: 'amina', imei, kind: 'verified', kdf: { ...fast(), m: 8, t: 1 } });
  t.match(e.kdf, { m: kdfBounds.m.min, t: kdfBounds.t.min });
});

t.test('a wrong password fails with VAULT_WRONG_PASSWORD', async (t) => {
  t.equal(wrongPassword.code, 'VAULT_WRONG_PASSWORD');
});

t.test('the password is NFKC-normalised before derivation', async (t) => {
  const e = await wrapKeyForUser({ password: 'caf\u00e9 field passphrase', key, username: 'amina', imei, kind: 'verified', kdf: fast() });
  t.same(await unwrapKeyForUser('cafe\u0301 field passphrase', e, { imei }), key);
});

t.test('the key timestamp is stored and authenticated when given', async (t) => {
  const e = await wrapKeyForUser({ password, key, username: 'amina', imei, kind: 'verified', kdf: fast(), keyTimestamp: 'hlc-1' });
  t.equal(e.keyTimestamp, 'hlc-1');
  t.same(await unwrapKeyForUser(password, e, { imei }), key);
  const edited = await failure(unwrapKeyForUser(password, { ...e, keyTimestamp: 'hlc-2' }, { imei }));
  t.same({ code: edited.code, message: edited.message }, { code: wrongPassword.code, message: wrongPassword.message });
});

const otherSalt = toBase64(defaultKdfParams().salt);
const tampered: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
  ['moved to another user', () => unwrapKeyForUser(password, { ...entry, username: 'bongani' }, { imei })],
  ['moved to the unverified kind', () => unwrapKeyForUser(password, { ...entry, kind: 'unverified' }, { imei })],
  ['moved to a temporary kind', () => unwrapKeyForUser(password, { ...entry, kind: 'temporary:server-b' }, { imei })],
  ['copied to another device', () => unwrapKeyForUser(password, entry, { imei: '490154203237519' })],
  ['an edited memory cost', () => unwrapKeyForUser(password, { ...entry, kdf: { ...entry.kdf, m: entry.kdf.m + 1024 } }, { imei })],
  ['an edited time cost', () => unwrapKeyForUser(password, { ...entry, kdf: { ...entry.kdf, t: entry.kdf.t + 1 } }, { imei })],
  ['an edited parallelism', () => unwrapKeyForUser(password, { ...entry, kdf: { ...entry.kdf, p: 2 } }, { imei })],
  ['an edited salt', () => unwrapKeyForUser(password, { ...entry, kdf: { ...entry.kdf, salt: otherSalt } }, { imei })],
  ['a malformed salt', () => unwrapKeyForUser(password, { ...entry, kdf: { ...entry.kdf, salt: 'AAAA' } }, { imei })],
  ['an edited algorithm', () => unwrapKeyForUser(password, { ...entry, kdf: { ...entry.kdf, alg: 'argon2i' as 'argon2id' } }, { imei })],
  ['an edited key id', () => unwrapKeyForUser(password, { ...entry, keyId: keyId(generateDbKey()) }, { imei })],
  ['an added key timestamp', () => unwrapKeyForUser(password, { ...entry, keyTimestamp: 'hlc-1' }, { imei })],
  ['a flipped nonce bit', () => unwrapKeyForUser(password, { ...entry, nonce: flip(entry.nonce, 5) }, { imei })],
  ['a flipped ciphertext bit', () => unwrapKeyForUser(password, { ...entry, wrapped: flip(entry.wrapped, 0) }, { imei })],
  ['a flipped tag bit', () => unwrapKeyForUser(password, { ...entry, wrapped: flip(entry.wrapped, -1) }, { imei })],
  ['a truncated tag', () => unwrapKeyForUser(password, { ...entry, wrapped: toBase64(fromBase64(entry.wrapped).subarray(0, 44)) }, { imei })],
  ['malformed base64', () => unwrapKeyForUser(password, { ...entry, wrapped: `${entry.wrapped}=` }, { imei })],
  ['a missing field', () => unwrapKeyForUser(password, { ...entry, nonce: undefined } as unknown as WrappedKeyEntry, { imei })],
  ['an older version', () => unwrapKeyForUser(password, { ...entry, v: 0 as 1 }, { imei })],
  ['no entry at all', () => unwrapKeyForUser(password, null as unknown as WrappedKeyEntry, { imei })],
];

for (const [what, attempt] of tampered) {
  t.test(`an entry with ${what} fails exactly like a wrong password`, async (t) => {
    const err = await failure(attempt());
    t.same({ code: err.code, message: err.message }, { code: wrongPassword.code, message: wrongPassword.message });
  });
}

t.test('a swapped wrapped key from another entry of the same user fails like a wrong password', async (t) => {
  const other = await wrapKeyForUser({ password, key: generateDbKey(), username: 'amina', imei, kind: 'verified', kdf: fast() });
  const err = await failure(unwrapKeyForUser(password, { ...entry, nonce: other.nonce, wrapped: other.wrapped }, { imei }));
  t.same({ code: err.code, message: err.message }, { code: wrongPassword.code, message: wrongPassword.message });
});

t.test('a tampered huge memory cost is clamped (no out-of-memory) and then fails like a wrong password', async (t) => {
  // Unclamped, 2^40 KiB would ask Argon2 for 1 PiB; clamped it runs at the 256 MiB ceiling.
  const before = process.memoryUsage().rss;
  const err = await failure(unwrapKeyForUser(password, { ...entry, kdf: { ...entry.kdf, m: 2 ** 40 } }, { imei }));
  t.same({ code: err.code, message: err.message }, { code: wrongPassword.code, message: wrongPassword.message });
  t.ok(process.memoryUsage().rss - before < 512 * 1024 * 1024, 'memory stayed below the ceiling plus slack');
});

t.test('a tampered huge time cost and parallelism are clamped and then fail like a wrong password', async (t) => {
  const err = await failure(unwrapKeyForUser(password, { ...entry, kdf: { ...entry.kdf, t: 10 ** 9, p: 10 ** 6 } }, { imei }));
  t.same({ code: err.code, message: err.message }, { code: wrongPassword.code, message: wrongPassword.message });
});

t.test('an entry from a newer format version fails with CRYPTO_FORMAT_UNSUPPORTED', async (t) => {
  await t.rejects(unwrapKeyForUser(password, { ...entry, v: 2 as 1 }, { imei }), { code: 'CRYPTO_FORMAT_UNSUPPORTED' });
});

t.test('unwrapping without an imei is rejected with INPUT_INVALID', async (t) => {
  await t.rejects(unwrapKeyForUser(password, entry, { imei: '' }), { code: 'INPUT_INVALID' });
});

t.test('wrapping a key of the wrong length is rejected with CRYPTO_KEY_INVALID', async (t) => {
  await t.rejects(
    wrapKeyForUser({ password, key: new Uint8Array(16), username: 'amina', imei, kind: 'verified', kdf: fast() }),
    { code: 'CRYPTO_KEY_INVALID' },
  );
});

t.test('wrapping with a malformed salt is rejected with CRYPTO_KDF_PARAMS_INVALID', async (t) => {
  await t.rejects(
    wrapKeyForUser({ password, key, username: 'amina', imei, kind: 'verified', kdf: { ...fast(), salt: new Uint8Array(4) } }),
    { code: 'CRYPTO_KDF_PARAMS_INVALID' },
  );
});

t.test('an unwrapped key is a fresh copy independent of the entry', async (t) => {
  const a = await unwrapKeyForUser(password, entry, { imei });
  a.fill(0);
  t.equal(toHex(await unwrapKeyForUser(password, entry, { imei })), toHex(key));
});

t.test('wrapping for an empty username or an unknown kind is rejected with INPUT_INVALID', async (t) => {
  await t.rejects(wrapKeyForUser({ password, key, username: '', imei, kind: 'verified', kdf: fast() }), { code: 'INPUT_INVALID' });
  await t.rejects(
    wrapKeyForUser({ password, key, username: 'amina', imei, kind: 'temporary:' as 'verified', kdf: fast() }),
    { code: 'INPUT_INVALID' },
  );
});
