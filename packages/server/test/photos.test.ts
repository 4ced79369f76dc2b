import { randomBytes, randomUUID } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import t from 'tap';
import { addPhoto, removePhoto, type ChildRecord, type PhotoType, type PhotoUploadStatus } from '@fieldvault/protocol';
import { bearer, json, makeApp, setupAdmin, startStore, storeRecorder, type LogCapture } from './helpers.js';
import { newRecord, phoneFor, push, type Phone } from './sync-helpers.js';
import { image, sha256, upload, uploadStatus, type App } from './photo-helpers.js';

// Issue 5 item 3: photos upload/download, streamed, resumable, size-capped, type-checked.
const couch = await startStore(t);

/** A record on the server with one photo ref; returns the record and the photo id. */
async function recordWithPhoto(
  app: App,
  phone: Phone,
  bytes: Buffer,
  type: PhotoType = 'image/jpeg',
  ref: Partial<{ sha256: string; size: number }> = {},
): Promise<{ record: ChildRecord; photoId: string }> {
  const photoId = randomUUID();
  const record = addPhoto(newRecord(phone, { name: 'With photo' }), photoId, {
    sha256: ref.sha256 ?? sha256(bytes),
    size: ref.size ?? bytes.byteLength,
    type,
    by: phone.username,
    ts: phone.clock.now(),
  });
  const res = await push(app, phone.token, [record]);
  if (res.results[0]?.status !== 'ok') throw new Error(`push failed: ${JSON.stringify(res.results[0])}`);
  return { record, photoId };
}

t.test('a photo uploads and streams back byte for byte to another user', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const sam = await phoneFor(app, admin, clock, 'sam', 'supervisor');
  const bytes = image('image/png', 200_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes, 'image/png');
  const put = await upload(app, amina.token, photoId, record.id, bytes);
  t.equal(put.statusCode, 200);
  t.same(put.json(), { photoId, recordId: record.id, size: bytes.byteLength, sha256: sha256(bytes), received: bytes.byteLength, complete: true });
  const again = await upload(app, amina.token, photoId, record.id, bytes);
  t.same(again.json(), put.json(), 'uploading it again is a no-op');

  const got = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(sam.token) });
  t.equal(got.statusCode, 200);
  t.equal(got.headers['content-type'], 'image/png');
  t.equal(got.headers['etag'], `"${sha256(bytes)}"`);
  t.ok(got.rawPayload.equals(bytes), 'same bytes');
  t.same((await uploadStatus(app, amina.token, photoId, record.id)).complete, true);
});

t.test('protocol audit L8: a download whose If-None-Match names the photo answers 304 without the bytes', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/png', 40_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes, 'image/png');
  t.equal((await upload(app, amina.token, photoId, record.id, bytes)).statusCode, 200);
  const first = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(amina.token) });
  const etag = first.headers['etag'] as string;
  t.equal(etag, `"${sha256(bytes)}"`);
  for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const again = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: { ...bearer(amina.token), 'if-none-match': header } });
    t.same([again.statusCode, again.rawPayload.byteLength, again.headers['etag']], [304, 0, etag], header);
  }
  const other = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: { ...bearer(amina.token), 'if-none-match': '"0000"' } });
  t.ok(other.statusCode === 200 && other.rawPayload.equals(bytes), 'another etag gets the bytes');
  const stranger = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: { 'if-none-match': etag } });
  t.equal(stranger.statusCode, 401, 'no session: refused before any comparison');
});

t.test('a download reads the store three times: the photo with its owner, its record, its bytes', async (t) => {
  const recorder = await storeRecorder(t, couch);
  const { app, clock } = await makeApp(t, recorder);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 50_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  t.equal((await upload(app, amina.token, photoId, record.id, bytes)).statusCode, 200);
  const mark = recorder.requests.length;
  const got = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(amina.token) });
  t.equal(got.statusCode, 200);
  t.ok(got.rawPayload.equals(bytes));
  // Besides the authentication's reads (session, user, device) and the device's bookkeeping.
  const reads = recorder.requests.slice(mark).filter((r) => /_(photos|records)\b/.test(r));
  t.equal(reads.length, 3, reads.join(' | '));
});

t.test('bytes that are not the image type on the record are refused', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const text = Buffer.from('#!/bin/sh\necho this is not an image at all\n');
  const asJpeg = await recordWithPhoto(app, amina, text, 'image/jpeg');
  const res = await upload(app, amina.token, asJpeg.photoId, asJpeg.record.id, text);
  t.equal(res.statusCode, 415);
  t.equal(json(res)['code'], 'PHOTO_TYPE_UNSUPPORTED');
  const png = image('image/png', 4_000);
  const pngAsJpeg = await recordWithPhoto(app, amina, png, 'image/jpeg');
  t.equal(json(await upload(app, amina.token, pngAsJpeg.photoId, pngAsJpeg.record.id, png))['code'], 'PHOTO_TYPE_UNSUPPORTED', 'a PNG is not the JPEG the record says');
  const wrongHeader = await app.inject({
    method: 'PUT',
    url: `/v1/photos/${asJpeg.photoId}?record=${asJpeg.record.id}`,
    headers: { ...bearer(amina.token), 'content-type': 'text/plain' },
    payload: 'hello',
  });
  t.equal(json(wrongHeader)['code'], 'INPUT_UNSUPPORTED_MEDIA_TYPE');
  const asJson = await app.inject({
    method: 'PUT',
    url: `/v1/photos/${asJpeg.photoId}?record=${asJpeg.record.id}`,
    headers: bearer(amina.token),
    payload: { photo: 'base64?' },
  });
  t.equal(json(asJson)['code'], 'INPUT_UNSUPPORTED_MEDIA_TYPE');
});

t.test('a photo over the size cap is refused before its bytes are read', async (t) => {
  const { app, clock } = await makeApp(t, couch, { photos: { maxBytes: 2_048 } });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 4_096);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  const res = await upload(app, amina.token, photoId, record.id, bytes);
  t.equal(res.statusCode, 413);
  t.equal(json(res)['code'], 'PHOTO_TOO_LARGE');
  const small = image('image/jpeg', 1_000);
  const other = await recordWithPhoto(app, amina, small);
  const tooMany = await upload(app, amina.token, other.photoId, other.record.id, Buffer.concat([small, small]));
  t.equal(json(tooMany)['code'], 'PHOTO_DIGEST_MISMATCH', 'more bytes than the ref says');
});

t.test('bytes that do not match the SHA-256 on the record are refused and discarded', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 10_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes, 'image/jpeg', { sha256: sha256(image('image/jpeg', 10_000)) });
  const first = await upload(app, amina.token, photoId, record.id, bytes.subarray(0, 4_000));
  t.equal((first.json() as PhotoUploadStatus).received, 4_000);
  const rest = await upload(app, amina.token, photoId, record.id, bytes.subarray(4_000), 4_000);
  t.equal(rest.statusCode, 422);
  t.equal(json(rest)['code'], 'PHOTO_DIGEST_MISMATCH');
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, 0, 'the partial upload was discarded');
  const get = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(amina.token) });
  t.equal(json(get)['code'], 'PHOTO_NOT_FOUND');
});

t.test('an upload resumes from the received offset', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/webp', 300_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes, 'image/webp');
  const part = await upload(app, amina.token, photoId, record.id, bytes.subarray(0, 100_000));
  t.same(part.json(), { photoId, recordId: record.id, size: 300_000, sha256: sha256(bytes), received: 100_000, complete: false });
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, 100_000);
  const wrong = await upload(app, amina.token, photoId, record.id, bytes.subarray(50_000), 50_000);
  t.equal(wrong.statusCode, 409);
  t.equal(json(wrong)['code'], 'PHOTO_OFFSET_MISMATCH');
  const fromZero = await upload(app, amina.token, photoId, record.id, bytes);
  t.equal(json(fromZero)['code'], 'PHOTO_OFFSET_MISMATCH', 'starting over needs the server offset too');
  const more = await upload(app, amina.token, photoId, record.id, bytes.subarray(100_000, 200_000), 100_000);
  t.equal((more.json() as PhotoUploadStatus).received, 200_000);
  const done = await upload(app, amina.token, photoId, record.id, bytes.subarray(200_000), 200_000);
  t.equal((done.json() as PhotoUploadStatus).complete, true);
  const got = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(amina.token) });
  t.ok(got.rawPayload.equals(bytes));
});

t.test('an unfinished upload is swept once it expires', async (t) => {
  const { app, clock } = await makeApp(t, couch, { photos: { uploadTtlSeconds: 3_600 } });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 5_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  await upload(app, amina.token, photoId, record.id, bytes.subarray(0, 2_000));
  t.equal(await app.repo.sweepExpired(clock.now() + 1_000), 0, 'not yet');
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, 2_000);
  // The sweep also drops expired sessions (an admin's live one hour), so count at least the upload.
  t.ok((await app.repo.sweepExpired(clock.now() + 3_600_001)) >= 1);
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, 0, 'start again from 0');
});

/** The port of `app`, listening on loopback. */
async function listening(app: App): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

/** The head of a raw `PUT` of a photo announcing `contentLength` bytes. */
function putHead(photoId: string, recordId: string, token: string, contentLength: number, offset = 0): string {
  return (
    `PUT /v1/photos/${photoId}?record=${recordId}&offset=${offset} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${token}\r\n` +
    `content-type: application/octet-stream\r\ncontent-length: ${contentLength}\r\n\r\n`
  );
}

/**
 * Sends the head and `sent` (fewer bytes than announced), then ends the connection (FIN after the
 * bytes, so they all reach the server) without waiting for anything: the cut can come before the
 * server has even authenticated the request.
 */
function cutUpload(port: number, head: string, sent: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(head);
      socket.end(sent);
    });
    socket.resume();
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

/** Waits (no deadline but tap's) for the server to log the end of a partial upload of `photoId`. */
async function partialLogged(logs: LogCapture, photoId: string, n = 1): Promise<Array<Record<string, unknown>>> {
  for (;;) {
    const lines = logs.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['msg'] === 'photo upload partial' && l['photoId'] === photoId);
    if (lines.length >= n) return lines;
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('issue 5: a connection cut before the handler reads the body keeps what arrived, and the handler does not hang', async (t) => {
  const { app, clock, logs } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 256 * 1024);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  const port = await listening(app);
  // 10 000 bytes arrive with the head and the connection ends at once: the server is still
  // checking the session in CouchDB when it breaks.
  await cutUpload(port, putHead(photoId, record.id, amina.token, bytes.byteLength), bytes.subarray(0, 10_000));
  const [line] = await partialLogged(logs, photoId);
  t.match(line, { received: 10_000, end: 'aborted' }, 'the handler ran to its end with the bytes of the broken request');
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, 10_000, 'what arrived was kept');
  const rest = await upload(app, amina.token, photoId, record.id, bytes.subarray(10_000), 10_000);
  t.equal((rest.json() as PhotoUploadStatus).complete, true);
  const got = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(amina.token) });
  t.ok(got.rawPayload.equals(bytes), 'the resumed photo is whole');
});

t.test('protocol audit M5: a status asked while a broken upload is still saving its bytes waits for them', async (t) => {
  let photoIdHeld = '';
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  // The broken request's save of what reached it (a POST into the photos database) is held in
  // flight: the moment the phone asks the status again right after the break.
  let held = 0;
  const isSave = (request: string): boolean => photoIdHeld !== '' && /^POST \/[a-z0-9_]*photos$/.test(request);
  const recorder = await storeRecorder(t, couch, { hold: (request) => (isSave(request) ? (held++, gate) : undefined) });
  const { app, clock, logs } = await makeApp(t, recorder, { logLevel: 'debug' });
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 256 * 1024);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  const port = await listening(app);
  photoIdHeld = photoId;
  await cutUpload(port, putHead(photoId, record.id, amina.token, bytes.byteLength), bytes.subarray(0, 10_000));
  while (held === 0) await new Promise((r) => setTimeout(r, 10));
  const asked = uploadStatus(app, amina.token, photoId, record.id);
  // The save goes on once the status has answered (as it did before: at once, with 0) or says it waits.
  const waits = (async () => {
    while (!logs.text().includes('photo upload status waits for the upload in progress')) await new Promise((r) => setTimeout(r, 10));
  })();
  await Promise.race([asked, waits]);
  open();
  t.equal((await asked).received, 10_000, 'the status counts the bytes the broken request was saving');
  const rest = await upload(app, amina.token, photoId, record.id, bytes.subarray(10_000), 10_000);
  t.equal((rest.json() as PhotoUploadStatus).complete, true, 'the upload continues from there at the first try');
});

t.test('issue 5: a connection cut while the handler reads the body keeps every byte that arrived', async (t) => {
  const { app, clock, logs } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/png', 700 * 1024);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes, 'image/png');
  const port = await listening(app);
  // More than the server reads before authorising (64 KiB): the rest is read by the admitted
  // handler, so the cut (after the last byte) comes while it is reading.
  const sent = 300 * 1024 + 17;
  await cutUpload(port, putHead(photoId, record.id, amina.token, bytes.byteLength), bytes.subarray(0, sent));
  await partialLogged(logs, photoId);
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, sent, 'every byte that arrived was kept');
  // A second cut, resuming from there, moves the offset on again.
  const second = 200 * 1024;
  await cutUpload(port, putHead(photoId, record.id, amina.token, bytes.byteLength - sent, sent), bytes.subarray(sent, sent + second));
  await partialLogged(logs, photoId, 2);
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, sent + second);
  const rest = await upload(app, amina.token, photoId, record.id, bytes.subarray(sent + second), sent + second);
  t.same(rest.json(), { photoId, recordId: record.id, size: bytes.byteLength, sha256: sha256(bytes), received: bytes.byteLength, complete: true });
  const got = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(amina.token) });
  t.ok(got.rawPayload.equals(bytes), 'the photo is whole');
});

t.test('issue 5: a cut upload whose first bytes are not the image type is refused when it resumes', async (t) => {
  const { app, clock, logs } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = randomBytes(100_000); // no image signature
  const { record, photoId } = await recordWithPhoto(app, amina, bytes, 'image/jpeg');
  const port = await listening(app);
  await cutUpload(port, putHead(photoId, record.id, amina.token, bytes.byteLength), bytes.subarray(0, 6));
  await partialLogged(logs, photoId);
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, 6, 'too few bytes to tell the type: kept');
  const rest = await upload(app, amina.token, photoId, record.id, bytes.subarray(6, 50_000), 6);
  t.equal(json(rest)['code'], 'PHOTO_TYPE_UNSUPPORTED', 'the type is checked over the whole photo, across requests');
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, 0, 'and the partial upload is dropped');
});

t.test('issue 5: the final chunk sent twice stores the photo once and answers the same', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/webp', 120_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes, 'image/webp');
  await upload(app, amina.token, photoId, record.id, bytes.subarray(0, 70_000));
  const final = await upload(app, amina.token, photoId, record.id, bytes.subarray(70_000), 70_000);
  const again = await upload(app, amina.token, photoId, record.id, bytes.subarray(70_000), 70_000);
  t.equal(again.statusCode, 200);
  t.same(again.json(), final.json(), 'the answer to the lost response is the same');
  t.equal((again.json() as PhotoUploadStatus).complete, true);
  const garbage = await upload(app, amina.token, photoId, record.id, randomBytes(50_000), 70_000);
  t.equal((garbage.json() as PhotoUploadStatus).complete, true, 'once stored, a repeated body is not read at all');
  const got = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(amina.token) });
  t.ok(got.rawPayload.equals(bytes), 'the stored photo is the first one');
});

t.test('issue 5: a body at the wrong offset is refused with the server offset and changes nothing', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 90_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  await upload(app, amina.token, photoId, record.id, bytes.subarray(0, 30_000));
  for (const offset of [0, 29_999, 30_001, 89_999]) {
    const res = await upload(app, amina.token, photoId, record.id, bytes.subarray(offset), offset);
    t.equal(res.statusCode, 409, `offset ${offset}`);
    t.equal(json(res)['code'], 'PHOTO_OFFSET_MISMATCH');
  }
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).received, 30_000, 'the partial upload is unchanged');
  const done = await upload(app, amina.token, photoId, record.id, bytes.subarray(30_000), 30_000);
  t.equal((done.json() as PhotoUploadStatus).complete, true);
});

t.test('issue 5: a retry takes over from an upload stalled on a half-open connection', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 200_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  const port = await listening(app);
  // The stalled upload: part of the body, then nothing (the connection stays open).
  const stalled = connect(port, '127.0.0.1');
  const answer = new Promise<string>((resolve) => {
    let text = '';
    stalled.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    stalled.on('close', () => resolve(text));
  });
  t.teardown(() => void stalled.destroy());
  await new Promise<void>((resolve) => stalled.once('connect', resolve));
  stalled.write(putHead(photoId, record.id, amina.token, bytes.byteLength));
  stalled.write(bytes.subarray(0, 80_000));
  // The phone gave up on it and retries; whichever order the two meet in, the retry ends the photo.
  for (let round = 0; round < 4; round++) {
    const at = (await uploadStatus(app, amina.token, photoId, record.id)).received;
    const res = await upload(app, amina.token, photoId, record.id, bytes.subarray(at), at);
    if (res.statusCode === 200 && (res.json() as PhotoUploadStatus).complete) break;
    t.equal(json(res)['code'], 'PHOTO_OFFSET_MISMATCH', 'the only other answer: ask the offset again');
  }
  t.equal((await uploadStatus(app, amina.token, photoId, record.id)).complete, true, 'the photo is stored');
  const head = await answer;
  t.match(head, /^HTTP\/1\.1 (200|409) /, 'the stalled request was answered, not left hanging');
  const got = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(amina.token) });
  t.ok(got.rawPayload.equals(bytes));
});

t.test('a streamed body longer than the photo is refused with a readable error, not a reset', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bytes = image('image/jpeg', 64 * 1024);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${port}/v1/photos/${photoId}?record=${record.id}`;
  const headers = { authorization: `Bearer ${amina.token}`, 'content-type': 'application/octet-stream' };
  // No Content-Length (chunked): the server only learns the size while reading.
  const tooLong = Readable.toWeb(Readable.from([bytes, bytes])) as ReadableStream<Uint8Array>;
  const res = await fetch(url, { method: 'PUT', headers, body: tooLong, duplex: 'half' } as RequestInit);
  t.equal(res.status, 422);
  t.equal(((await res.json()) as { code: string }).code, 'PHOTO_DIGEST_MISMATCH');
  const ok = await fetch(url, { method: 'PUT', headers, body: Readable.toWeb(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)])) as ReadableStream<Uint8Array>, duplex: 'half' } as RequestInit);
  t.same(((await ok.json()) as PhotoUploadStatus).complete, true, 'a chunked upload of the right length completes');
});

t.test('photos outside what the caller may touch are refused', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const bilal = await phoneFor(app, admin, clock, 'bilal');
  const bytes = image('image/jpeg', 2_000);
  const { record, photoId } = await recordWithPhoto(app, amina, bytes);
  const other = await recordWithPhoto(app, amina, image('image/jpeg', 1_000));

  t.equal((await app.inject({ method: 'PUT', url: `/v1/photos/${photoId}?record=${record.id}`, payload: bytes, headers: { 'content-type': 'application/octet-stream' } })).statusCode, 401);
  t.equal((await app.inject({ method: 'GET', url: `/v1/photos/${photoId}` })).statusCode, 401);
  t.equal((await app.inject({ method: 'GET', url: `/v1/photos/${photoId}/upload?record=${record.id}` })).statusCode, 401);

  t.equal(json(await upload(app, amina.token, photoId, other.record.id, bytes))['code'], 'PHOTO_NOT_FOUND', 'the record does not reference this photo');
  t.equal(json(await upload(app, amina.token, photoId, randomUUID(), bytes))['code'], 'RECORD_NOT_FOUND', 'the record is not on the server');
  const badId = await app.inject({ method: 'GET', url: '/v1/photos/..%2F_design%2Ffieldvault', headers: bearer(amina.token) });
  t.equal(json(badId)['code'], 'INPUT_ID_INVALID');
  t.equal(json(await app.inject({ method: 'GET', url: `/v1/photos/${randomUUID()}`, headers: bearer(amina.token) }))['code'], 'PHOTO_NOT_FOUND');

  await upload(app, amina.token, photoId, record.id, bytes);
  t.equal((await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(bilal.token) })).statusCode, 200, 'readable by every verified user');
  const removed = removePhoto(record, photoId, { by: 'amina', ts: amina.clock.now() });
  await push(app, amina.token, [removed]);
  t.equal(json(await app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(bilal.token) }))['code'], 'PHOTO_NOT_FOUND', 'a removed photo is gone');

  await app.inject({ method: 'POST', url: `/v1/devices/${bilal.device.imei}/blacklist`, headers: bearer(admin), payload: {} });
  const blacklisted = await app.inject({ method: 'GET', url: `/v1/photos/${other.photoId}/upload?record=${other.record.id}`, headers: bearer(bilal.token) });
  t.equal(json(blacklisted)['code'], 'DEVICE_BLACKLISTED');
});
