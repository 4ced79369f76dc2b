import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import type { Test } from 'tap';
import {
  FILE_CHUNK_SIZE,
  FILE_HEADER_LENGTH,
  concatBytes,
  createDecryptStream,
  createEncryptStream,
  decryptBuffer,
  decryptToBuffer,
  encryptBuffer,
  encryptedFileSize,
  generateDbKey,
  toHex,
} from '../src/index.js';

const SEALED_CHUNK = FILE_CHUNK_SIZE + 16;
const dbKey = generateDbKey();

function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >> 8)) & 0xff);
}

/** Byte equality without tap's element-by-element diff, which is slow on 200 KB arrays. */
function sameBytes(t: Test, actual: Uint8Array, expected: Uint8Array, message?: string): void {
  t.equal(actual.byteLength, expected.byteLength, message === undefined ? 'length' : `${message}: length`);
  t.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected), message ?? 'same bytes');
}

/** Splits an encrypted file into its header and sealed chunks. */
function split(file: Uint8Array): { header: Uint8Array; chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  for (let at = FILE_HEADER_LENGTH; at < file.byteLength; at += SEALED_CHUNK) chunks.push(file.subarray(at, at + SEALED_CHUNK));
  return { header: file.subarray(0, FILE_HEADER_LENGTH), chunks };
}

/** Feeds `data` to a stream in pieces of `piece` bytes and collects what comes out. */
async function throughStream(stream: NodeJS.ReadWriteStream, data: Uint8Array, piece = 10_000): Promise<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < data.byteLength; at += piece) pieces.push(data.subarray(at, at + piece));
  const out: Uint8Array[] = [];
  await pipeline(Readable.from(pieces), stream, async (source: AsyncIterable<Buffer | string>) => {
    for await (const chunk of source) out.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  });
  return concatBytes(out);
}

/** Decrypts `file` all three ways and returns the error code each raised (undefined if none). */
async function decryptCodes(file: Uint8Array, key = dbKey): Promise<unknown[]> {
  const codeOf = (err: unknown): unknown => (err as { code?: unknown }).code;
  const codes: unknown[] = [];
  try {
    decryptBuffer(key, file);
    codes.push(undefined);
  } catch (err) {
    codes.push(codeOf(err));
  }
  try {
    await throughStream(createDecryptStream(key), file, 7_777);
    codes.push(undefined);
  } catch (err) {
    codes.push(codeOf(err));
  }
  try {
    await decryptToBuffer(key, [file]);
    codes.push(undefined);
  } catch (err) {
    codes.push(codeOf(err));
  }
  return codes;
}

const tamperedEverywhere = ['CRYPTO_FILE_TAMPERED', 'CRYPTO_FILE_TAMPERED', 'CRYPTO_FILE_TAMPERED'];

t.test('files of every size around the chunk boundaries round-trip through the buffer API', async (t) => {
  for (const n of [0, 1, 100, FILE_CHUNK_SIZE - 1, FILE_CHUNK_SIZE, FILE_CHUNK_SIZE + 1, 2 * FILE_CHUNK_SIZE, 200_000]) {
    const plain = pattern(n);
    const file = encryptBuffer(dbKey, plain);
    t.equal(file.byteLength, encryptedFileSize(n), `size for ${n}`);
    sameBytes(t, decryptBuffer(dbKey, file), plain, `content for ${n}`);
  }
});

t.test('an empty input still produces a header and one final chunk', async (t) => {
  const file = await throughStream(createEncryptStream(dbKey), new Uint8Array(0));
  t.equal(file.byteLength, FILE_HEADER_LENGTH + 16);
  sameBytes(t, decryptBuffer(dbKey, file), new Uint8Array(0));
});

t.test('the header is "FVF", version 1 and a 16-byte random salt', async (t) => {
  const a = encryptBuffer(dbKey, pattern(10));
  const b = encryptBuffer(dbKey, pattern(10));
  t.same(a.subarray(0, 4), Uint8Array.from([0x46, 0x56, 0x46, 0x01]));
  t.not(toHex(a.subarray(4, 20)), toHex(b.subarray(4, 20)), 'salt is fresh per file');
  t.not(toHex(a.subarray(20)), toHex(b.subarray(20)), 'so the same photo never encrypts alike');
});

t.test('stream encryption and decryption agree with the buffer API for any write sizes', async (t) => {
  const plain = pattern(3 * FILE_CHUNK_SIZE + 12_345);
  for (const piece of [1_000, FILE_CHUNK_SIZE, FILE_CHUNK_SIZE + 17, 1 << 20]) {
    const file = await throughStream(createEncryptStream(dbKey), plain, piece);
    t.equal(file.byteLength, encryptedFileSize(plain.byteLength));
    sameBytes(t, decryptBuffer(dbKey, file), plain, `encrypted in pieces of ${piece}`);
    sameBytes(t, await throughStream(createDecryptStream(dbKey), file, piece + 3), plain, `decrypted in pieces of ${piece + 3}`);
  }
});

t.test('a photo written to and read from a real file round-trips through the streams', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'photo.fvf');
  const plain = pattern(150_000);
  await pipeline(Readable.from([plain]), createEncryptStream(dbKey), createWriteStream(path));
  t.equal((await readFile(path)).byteLength, encryptedFileSize(plain.byteLength));
  sameBytes(t, await decryptToBuffer(dbKey, createReadStream(path, { highWaterMark: 4096 })), plain);
});

const plain3 = pattern(2 * FILE_CHUNK_SIZE + 1_000);
const file3 = encryptBuffer(dbKey, plain3);
const { header, chunks } = split(file3);
const [c0, c1, c2] = chunks as [Uint8Array, Uint8Array, Uint8Array];

t.test('a bit flip anywhere in the salt or any chunk is detected as CRYPTO_FILE_TAMPERED', async (t) => {
  const positions = [4, 19, 20, 20 + 1000, 20 + SEALED_CHUNK - 1, 20 + SEALED_CHUNK, 20 + 2 * SEALED_CHUNK + 5, file3.byteLength - 1];
  for (const at of positions) {
    const bad = file3.slice();
    bad[at] = (bad[at] ?? 0) ^ 0x04;
    t.same(await decryptCodes(bad), tamperedEverywhere, `byte ${at}`);
  }
});

const rearranged: ReadonlyArray<readonly [string, Uint8Array]> = [
  ['reordered chunks', concatBytes([header, c1, c0, c2])],
  ['a duplicated chunk', concatBytes([header, c0, c0, c1, c2])],
  ['a dropped middle chunk', concatBytes([header, c0, c2])],
  ['a dropped last chunk (cut at a chunk boundary)', concatBytes([header, c0, c1])],
  ['a cut inside the last chunk', file3.subarray(0, file3.byteLength - 100)],
  ['a cut inside the last tag', file3.subarray(0, file3.byteLength - 1)],
  ['a cut leaving less than a tag', concatBytes([header, c0, c1, c2.subarray(0, 10)])],
  ['only the header', header],
  ['a cut inside the header', header.subarray(0, 10)],
  ['one appended byte', concatBytes([file3, Uint8Array.from([0])])],
  ['an appended tag-sized tail', concatBytes([file3, new Uint8Array(16)])],
  ['the last chunk appended again', concatBytes([file3, c2])],
  ['a chunk from another file under the same key', concatBytes([header, split(encryptBuffer(dbKey, plain3)).chunks[0] ?? c0, c1, c2])],
  ['the header of another file under the same key', concatBytes([encryptBuffer(dbKey, plain3).subarray(0, 20), c0, c1, c2])],
  ['no bytes at all', new Uint8Array(0)],
];

for (const [what, bad] of rearranged) {
  t.test(`a file with ${what} is rejected as CRYPTO_FILE_TAMPERED`, async (t) => {
    t.same(await decryptCodes(bad), tamperedEverywhere);
  });
}

t.test('decrypting with the wrong key is rejected as CRYPTO_FILE_TAMPERED', async (t) => {
  t.same(await decryptCodes(file3, generateDbKey()), tamperedEverywhere);
});

t.test('a file without the "FVF" magic is rejected as CRYPTO_FORMAT_UNSUPPORTED', async (t) => {
  const codes = Array(3).fill('CRYPTO_FORMAT_UNSUPPORTED');
  t.same(await decryptCodes(pattern(1000)), codes);
  const jpeg = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0]);
  t.same(await decryptCodes(jpeg), codes);
  const bad = file3.slice();
  bad[0] = 0x47;
  t.same(await decryptCodes(bad), codes);
});

t.test('a file of an unknown format version is rejected as CRYPTO_FORMAT_UNSUPPORTED', async (t) => {
  const bad = file3.slice();
  bad[3] = 2;
  t.same(await decryptCodes(bad), Array(3).fill('CRYPTO_FORMAT_UNSUPPORTED'));
});

/**
 * Writes `file` to a decrypt stream in two steps (split at `at`), letting the stream flow in
 * between, and returns what it emitted and the error it ended with.
 */
async function decryptInTwoSteps(file: Uint8Array, at: number): Promise<{ emitted: Uint8Array; error: unknown }> {
  const parts: Uint8Array[] = [];
  const stream = createDecryptStream(dbKey);
  stream.on('data', (d: Uint8Array) => parts.push(d));
  const ended = new Promise<unknown>((resolve) => {
    stream.on('error', resolve);
    stream.on('end', () => resolve(undefined));
  });
  stream.write(file.subarray(0, at));
  // setImmediate runs after pending ticks, so anything the first write produced has been emitted.
  await new Promise((resolve) => setImmediate(resolve));
  stream.end(file.subarray(at));
  const error = await ended;
  return { emitted: concatBytes(parts), error };
}

t.test('the decrypt stream emits nothing from a chunk that fails authentication', async (t) => {
  const bad = file3.slice();
  bad[20 + 10] = (bad[20 + 10] ?? 0) ^ 1;
  const { emitted, error } = await decryptInTwoSteps(bad, 20 + SEALED_CHUNK + 1);
  t.match(error, { code: 'CRYPTO_FILE_TAMPERED' });
  t.equal(emitted.byteLength, 0);
});

t.test('the decrypt stream emits only the chunks before a bad one, each already authenticated', async (t) => {
  const bad = file3.slice();
  bad[20 + SEALED_CHUNK + 10] = (bad[20 + SEALED_CHUNK + 10] ?? 0) ^ 1;
  const { emitted, error } = await decryptInTwoSteps(bad, 20 + SEALED_CHUNK + 1);
  t.match(error, { code: 'CRYPTO_FILE_TAMPERED' });
  sameBytes(t, emitted, plain3.subarray(0, FILE_CHUNK_SIZE));
});

t.test('the decrypt stream holds a complete chunk back until it knows whether it is the last', async (t) => {
  const { emitted, error } = await decryptInTwoSteps(file3, 20 + SEALED_CHUNK);
  t.equal(error, undefined);
  sameBytes(t, emitted, plain3);
  const parts: Uint8Array[] = [];
  const stream = createDecryptStream(dbKey);
  stream.on('data', (d: Uint8Array) => parts.push(d));
  stream.write(file3.subarray(0, 20 + SEALED_CHUNK));
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(parts.length, 0, 'nothing emitted while the first chunk could still be the last');
  stream.destroy();
});

t.test('a file cut at a chunk boundary is reported only when the stream ends, so output is untrusted until then', async (t) => {
  const cut = concatBytes([header, c0, c1]);
  const { emitted, error } = await decryptInTwoSteps(cut, 20 + SEALED_CHUNK + 1);
  t.match(error, { code: 'CRYPTO_FILE_TAMPERED' });
  sameBytes(t, emitted, plain3.subarray(0, FILE_CHUNK_SIZE), 'the first chunk was genuine, yet the file as a whole is not');
});

t.test('decryptToBuffer rejects a source of strings with INPUT_INVALID', async (t) => {
  await t.rejects(decryptToBuffer(dbKey, ['FVF'] as unknown as Uint8Array[]), { code: 'INPUT_INVALID' });
});

t.test('creating a stream with a key of the wrong length throws CRYPTO_KEY_INVALID at once', async (t) => {
  t.throws(() => createEncryptStream(new Uint8Array(16)), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => createDecryptStream(new Uint8Array(64)), { code: 'CRYPTO_KEY_INVALID' });
  t.throws(() => encryptBuffer(new Uint8Array(0), pattern(1)), { code: 'CRYPTO_KEY_INVALID' });
});

t.test('encryptedFileSize counts the header, one tag per chunk and the plaintext', async (t) => {
  t.equal(encryptedFileSize(0), 36);
  t.equal(encryptedFileSize(FILE_CHUNK_SIZE), 20 + FILE_CHUNK_SIZE + 16);
  t.equal(encryptedFileSize(FILE_CHUNK_SIZE + 1), 20 + FILE_CHUNK_SIZE + 1 + 32);
});
