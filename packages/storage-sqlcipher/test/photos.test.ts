import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { PHOTO_DIRECTORY, type Session } from '@fieldvault/client';
import { PASSWORD_A, PASSWORD_B, contains, jpegWithGps, newDevice, rejection } from './helpers.js';

const CANARY = 'GPS-CANARY-51.5007N';

async function setup(t: Parameters<typeof newDevice>[0], photoMaxBytes?: number) {
  const { dir, device } = await newDevice(t, photoMaxBytes === undefined ? {} : { photoMaxBytes });
  await device.signUpOffline('amina', PASSWORD_A);
  const session = await device.loginOffline('amina', PASSWORD_A);
  const record = await session.createRecord({ name: 'Kofi' });
  return { dir, device, session, record };
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}

function photoFiles(dir: string): string[] {
  return readdirSync(join(dir, PHOTO_DIRECTORY));
}

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

t.test('a photo round-trips: read back verified, with its digest, size and type on the record', async (t) => {
  const { session, record } = await setup(t);
  const jpeg = jpegWithGps(CANARY);
  const added = await session.addPhoto(record.id, jpeg);
  t.equal(added.type, 'image/jpeg');
  const back = await session.readPhoto(record.id, added.photoId);
  t.equal(back.sha256, createHash('sha256').update(back.bytes).digest('hex'));
  t.match(added.record.photos[added.photoId], { sha256: added.sha256, size: back.bytes.byteLength, type: 'image/jpeg', by: 'amina' });
  t.same(await collect(session.photoStream(record.id, added.photoId)), Buffer.from(back.bytes), 'the stream gives the same bytes');
});

t.test('EXIF GPS is removed before encryption and the rest of the JPEG is kept byte for byte', async (t) => {
  const { dir, session, record } = await setup(t);
  const jpeg = jpegWithGps(CANARY);
  t.ok(contains(jpeg, CANARY) && contains(jpeg, 'Exif'), 'the input carries EXIF GPS');
  const { photoId } = await session.addPhoto(record.id, jpeg);
  const { bytes } = await session.readPhoto(record.id, photoId);
  t.notOk(contains(bytes, CANARY), 'GPS value gone');
  t.notOk(contains(bytes, 'Exif'), 'EXIF segment gone');
  t.notOk(contains(bytes, 'TRAILER'), 'data after EOI gone');
  // What remains is the input minus the APP1 segment and the trailer.
  const app1Start = 2 + 18;
  const app1Length = ((jpeg[app1Start + 2] ?? 0) << 8) | (jpeg[app1Start + 3] ?? 0);
  const eoi = Buffer.from(jpeg).lastIndexOf(Buffer.from([0xff, 0xd9]));
  t.same(Buffer.from(bytes), Buffer.concat([jpeg.subarray(0, app1Start), jpeg.subarray(app1Start + 2 + app1Length, eoi + 2)]));
  for (const f of photoFiles(dir)) t.notOk(contains(readFileSync(join(dir, PHOTO_DIRECTORY, f)), CANARY), 'the file on disk is ciphertext');
});

t.test('photo files are named from the key, never from the record or photo id', async (t) => {
  const { dir, session, record } = await setup(t);
  const { photoId } = await session.addPhoto(record.id, jpegWithGps(CANARY));
  const files = photoFiles(dir);
  t.equal(files.length, 1);
  t.match(files[0], /^[0-9a-f]{64}$/);
  t.notOk(files[0]?.includes(photoId.slice(0, 8)) || files[0]?.includes(record.id.slice(0, 8)));
});

t.test('a photo file altered on disk fails with CRYPTO_FILE_TAMPERED, read or streamed', async (t) => {
  const { dir, session, record } = await setup(t);
  const { photoId } = await session.addPhoto(record.id, jpegWithGps(CANARY));
  const path = join(dir, PHOTO_DIRECTORY, photoFiles(dir)[0] as string);
  const bytes = readFileSync(path);
  bytes[bytes.length - 5] = (bytes[bytes.length - 5] ?? 0) ^ 0x01;
  writeFileSync(path, bytes);
  t.equal((await rejection(session.readPhoto(record.id, photoId))).code, 'CRYPTO_FILE_TAMPERED');
  t.equal((await rejection(collect(session.photoStream(record.id, photoId)))).code, 'CRYPTO_FILE_TAMPERED');
  bytes[0] = 0; // the header's magic
  writeFileSync(path, bytes);
  t.equal((await rejection(session.readPhoto(record.id, photoId))).code, 'CRYPTO_FILE_TAMPERED');
});

t.test('a photo file cut at a chunk boundary fails with CRYPTO_FILE_TAMPERED, also when streamed', async (t) => {
  const { dir, session, record } = await setup(t);
  const big = jpegWithGps(CANARY, 200_000);
  const { photoId } = await session.addPhoto(record.id, big);
  const path = join(dir, PHOTO_DIRECTORY, photoFiles(dir)[0] as string);
  const bytes = readFileSync(path);
  // Header (20 bytes) + one full sealed chunk (64 KiB + 16-byte tag).
  writeFileSync(path, bytes.subarray(0, 20 + 65536 + 16));
  t.equal((await rejection(session.readPhoto(record.id, photoId))).code, 'CRYPTO_FILE_TAMPERED');
  const received: Uint8Array[] = [];
  const err = await rejection(
    (async () => {
      for await (const c of session.photoStream(record.id, photoId)) received.push(c);
    })(),
  );
  t.equal(err.code, 'CRYPTO_FILE_TAMPERED');
  t.ok(received.length <= 1, 'at most the verified first chunk was yielded before the error');
});

t.test('two photo files swapped on disk fail with CRYPTO_FILE_TAMPERED (digest on the record)', async (t) => {
  const { dir, session, record } = await setup(t);
  const a = await session.addPhoto(record.id, jpegWithGps('first photo', 64));
  await session.addPhoto(record.id, jpegWithGps('second photo', 96));
  const [f1, f2] = photoFiles(dir).map((f) => join(dir, PHOTO_DIRECTORY, f)) as [string, string];
  const b1 = readFileSync(f1);
  writeFileSync(f1, readFileSync(f2));
  writeFileSync(f2, b1);
  t.equal((await rejection(session.readPhoto(record.id, a.photoId))).code, 'CRYPTO_FILE_TAMPERED');
});

t.test('a photo over the size cap fails with PHOTO_TOO_LARGE, as bytes or as a stream, and writes nothing', async (t) => {
  const { dir, session, record } = await setup(t, 10_000);
  const big = jpegWithGps(CANARY, 20_000);
  t.equal((await rejection(session.addPhoto(record.id, big))).code, 'PHOTO_TOO_LARGE');
  t.equal((await rejection(session.addPhoto(record.id, chunked(big, 1000)))).code, 'PHOTO_TOO_LARGE');
  t.same(photoFiles(dir), []);
  t.same((await session.getRecord(record.id)).photos, {});
});

t.test('a photo that is not JPEG, PNG or WebP fails with PHOTO_TYPE_UNSUPPORTED', async (t) => {
  const { session, record } = await setup(t);
  t.equal((await rejection(session.addPhoto(record.id, new TextEncoder().encode('GIF89a not allowed')))).code, 'PHOTO_TYPE_UNSUPPORTED');
  t.equal((await rejection(session.addPhoto(record.id, new Uint8Array([0xff, 0xd8, 0xff, 0xe1, 0xff])))).code, 'PHOTO_TYPE_UNSUPPORTED', 'malformed JPEG');
});

t.test('a streamed photo input is accepted', async (t) => {
  const { session, record } = await setup(t);
  const jpeg = jpegWithGps(CANARY, 5000);
  const { photoId, size } = await session.addPhoto(record.id, chunked(jpeg, 777));
  t.equal((await session.readPhoto(record.id, photoId)).bytes.byteLength, size);
});

t.test('removing a photo deletes its file and leaves a tombstone on the record', async (t) => {
  const { dir, session, record } = await setup(t);
  const { photoId } = await session.addPhoto(record.id, jpegWithGps(CANARY));
  const updated = await session.removePhoto(record.id, photoId);
  t.ok(updated.photos[photoId]?.removedAt, 'tombstone');
  t.same(photoFiles(dir), []);
  t.equal((await rejection(session.readPhoto(record.id, photoId))).code, 'PHOTO_NOT_FOUND');
  t.equal((await rejection(session.removePhoto(record.id, photoId))).code, 'PHOTO_NOT_FOUND');
});

t.test('another unverified user cannot read, stream or remove a photo', async (t) => {
  const { device, session, record } = await setup(t);
  const { photoId } = await session.addPhoto(record.id, jpegWithGps(CANARY));
  await session.logout();
  await device.signUpOffline('bilal', PASSWORD_B);
  const other: Session = await device.loginOffline('bilal', PASSWORD_B);
  t.equal((await rejection(other.readPhoto(record.id, photoId))).code, 'VAULT_RECORD_NOT_FOUND');
  t.equal((await rejection(collect(other.photoStream(record.id, photoId)))).code, 'VAULT_RECORD_NOT_FOUND');
  t.equal((await rejection(other.removePhoto(record.id, photoId))).code, 'VAULT_RECORD_NOT_FOUND');
  t.equal((await rejection(other.addPhoto(record.id, jpegWithGps('x')))).code, 'VAULT_RECORD_NOT_FOUND');
});
