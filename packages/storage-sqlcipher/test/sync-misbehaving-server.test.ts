// A server that misbehaves on one record or one photo must not cost the phone other data, nor
// block the rest of the sync. A local HTTPS front presenting the real server's own certificate
// (the pin holds, the session token is the real one) forwards every request to a real server
// process, except those a test answers itself: a pulled record naming another record's photo,
// two records naming one photo id, a wrong answer to one photo upload, a 500 for any push batch
// holding one chosen record.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { MAX_INTERNAL_ERROR_BATCHES, type Session } from '@fieldvault/client';
import { createClock, createRecord, type ChildRecord, type PhotoRef } from '@fieldvault/protocol';
import { PASSWORD_A, jpegWithGps, newDevice, rejection } from './helpers.js';
import { NO_RETRY, json, send, serverA, standIn, transportAs, type Answer } from './stand-in.js';

const { A, root } = await serverA(t, 'sync-misbehaving');

/** What a test answers itself; undefined forwards the request to A. */
type Intercept = (method: string, path: string, body: string) => Answer | undefined;

/**
 * A stand-in for A forwarding to A whatever `intercept` leaves alone. `replace`: for a forwarded
 * request, an answer sent instead of A's (A has acted on the request: its own answer is lost on
 * the way back).
 */
function front(t: Test, intercept: Intercept, replace?: (method: string, path: string) => Answer | undefined): Promise<string> {
  const target = new URL(A.url);
  return standIn(t, A, (req, body, res) => {
    const a = intercept(req.method ?? '', req.url ?? '', body.toString());
    if (a !== undefined) {
      send(res, a);
      return;
    }
    const upstream = httpsRequest(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host }, ca: A.certPem, checkServerIdentity: () => undefined },
      (answer) => {
        const instead = replace?.(req.method ?? '', req.url ?? '');
        if (instead !== undefined) {
          answer.resume();
          answer.on('end', () => send(res, instead));
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    upstream.end(body);
  });
}

/** A transport to the front at `url`, declared as A (see stand-in.ts). */
const transportTo = (url: string) => transportAs(A, url);

/** A logged-in phone in its own directory, everything synced with A. */
async function phoneAt(t: Test, imei: string): Promise<Session> {
  const { device } = await newDevice(t, { imei }, mkdtempSync(join(root, 'phone-')));
  const session = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  await session.createRecord({ name: 'Already synced' });
  await session.sync({ transport: A.transport() });
  return session;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A record of another user from another phone, with `photos`. */
function foreignRecord(name: string, photos: (ts: () => string) => Record<string, PhotoRef>): ChildRecord {
  const clock = createClock({ node: '356938035646999' });
  const record = createRecord({ id: globalThis.crypto.randomUUID(), createdBy: 'bilal', device: '356938035646999', clockTs: clock.now(), fields: { name } });
  return { ...record, photos: photos(() => clock.now()) };
}

function pullPage(records: readonly ChildRecord[]): Answer {
  return json({ records, checkpoint: 'abc.def', more: false, deviceStatus: 'active', serverTime: Date.now() });
}

const isPull = (method: string, path: string): boolean => method === 'GET' && path.startsWith('/v1/sync/pull');

/** A phone with a photo on a record A has not received yet, and a copy of that photo's bytes. */
async function phoneWithUnsentPhoto(t: Test, imei: string) {
  const session = await phoneAt(t, imei);
  const own = await session.createRecord({ name: 'Has the only copy of a photo' });
  const bytes = jpegWithGps('only copy');
  const added = await session.addPhoto(own.id, bytes);
  return { session, own, added };
}

t.test("a pulled record naming another record's photo as removed leaves that photo alone", async (t) => {
  const { session, own, added } = await phoneWithUnsentPhoto(t, '356938035646011');
  const stranger = foreignRecord('Names a photo it never had', (ts) => {
    const addedAt = ts();
    return { [added.photoId]: { sha256: added.sha256, size: added.size, type: added.type, addedAt, by: 'bilal', removedAt: ts(), removedBy: 'bilal' } };
  });
  // Push and photo uploads reach the real A; the pull page comes from the front.
  const url = await front(t, (method, path) => (isPull(method, path) ? pullPage([stranger]) : undefined));
  const summary = await session.sync({ transport: transportTo(url), retry: NO_RETRY });
  t.match(summary, { pushed: 1, pulled: 1, photos: { uploaded: 1, failed: [] } }, 'the photo was still there to upload after the pull');
  const back = await session.readPhoto(own.id, added.photoId);
  t.equal(sha256(back.bytes), added.sha256, "the record's photo reads back intact");
  t.ok((await session.getRecord(stranger.id)).photos[added.photoId]?.removedAt, "the stranger's tombstone is kept on the stranger");
});

t.test("removing a photo from a pulled record that names another record's photo leaves that photo alone", async (t) => {
  const { session, own, added } = await phoneWithUnsentPhoto(t, '356938035646012');
  const stranger = foreignRecord('Names a photo it never had', (ts) => ({ [added.photoId]: { sha256: added.sha256, size: added.size, type: added.type, addedAt: ts(), by: 'bilal' } }));
  const url = await front(t, (method, path) => (isPull(method, path) ? pullPage([stranger]) : undefined));
  await session.sync({ transport: transportTo(url), retry: NO_RETRY });
  t.equal((await rejection(session.readPhoto(stranger.id, added.photoId))).code, 'PHOTO_NOT_FOUND', 'the stranger does not get the photo');
  const removed = await session.removePhoto(stranger.id, added.photoId);
  t.ok(removed.photos[added.photoId]?.removedAt, 'the removal is a tombstone on the stranger');
  const back = await session.readPhoto(own.id, added.photoId);
  t.equal(sha256(back.bytes), added.sha256, "the record's photo and its file are intact");
});

t.test("two pulled records naming one photo id: the second never replaces the first's file", async (t) => {
  const session = await phoneAt(t, '356938035646013');
  const photoId = globalThis.crypto.randomUUID();
  const first = jpegWithGps('first photo', 64);
  const second = jpegWithGps('second photo', 96);
  const ref = (bytes: Uint8Array, addedAt: string): PhotoRef => ({ sha256: sha256(bytes), size: bytes.byteLength, type: 'image/jpeg', addedAt, by: 'bilal' });
  const one = foreignRecord('First holder', (ts) => ({ [photoId]: ref(first, ts()) }));
  const two = foreignRecord('Second holder', (ts) => ({ [photoId]: ref(second, ts()) }));
  let downloads = 0;
  const url = await front(t, (method, path) => {
    if (isPull(method, path)) return pullPage([one, two]);
    if (method === 'GET' && path === `/v1/photos/${photoId}`) {
      downloads += 1;
      return { type: 'image/jpeg', body: downloads === 1 ? first : second };
    }
    return undefined;
  });
  const summary = await session.sync({ transport: transportTo(url), retry: NO_RETRY });
  t.match(summary, { pulled: 2, photos: { downloaded: 1, failed: [] } });
  t.equal(downloads, 1, 'the second copy is not even fetched');
  t.equal(sha256((await session.readPhoto(one.id, photoId)).bytes), sha256(first), "the first record's photo reads back (not tampered)");
  t.equal((await rejection(session.readPhoto(two.id, photoId))).code, 'PHOTO_NOT_FOUND', 'the second record does not get it');
});

t.test('one photo upload answered wrongly fails alone: later uploads and the downloads go on', async (t) => {
  const session = await phoneAt(t, '356938035646015');
  // Another phone then leaves a photo on A for this one to download.
  const other = await phoneAt(t, '356938035646014');
  const theirs = await other.createRecord({ name: 'Photo to download' });
  const download = await other.addPhoto(theirs.id, jpegWithGps('to download'));
  await other.sync({ transport: A.transport() });

  for (const name of ['First photo', 'Second photo']) {
    const r = await session.createRecord({ name });
    await session.addPhoto(r.id, jpegWithGps(name));
  }
  let broken: string | undefined;
  const url = await front(t, (_method, path) => {
    const upload = /^\/v1\/photos\/([0-9a-f-]{36})\/upload/.exec(path)?.[1];
    if (upload === undefined) return undefined;
    broken ??= upload; // the first photo uploaded: its status answers are wrong
    return upload === broken ? json({ photoId: upload, hello: 'not an upload status' }) : undefined;
  });
  const summary = await session.sync({ transport: transportTo(url), retry: NO_RETRY });
  t.match(summary, { pushed: 2, photos: { uploaded: 1, downloaded: 1, failed: [{ photoId: broken, code: 'TRANSPORT_BAD_RESPONSE' }] } });
  t.equal(summary.photos.failed.length, 1);
  t.equal(sha256((await session.readPhoto(theirs.id, download.photoId)).bytes), download.sha256, 'the other phone’s photo was downloaded');
  t.same(await session.pendingCounts('server-a'), { records: 0, photos: 1 }, 'the refused photo is still pending');
});

// Field audit s15, F2: "photos N uploaded" counted photos the server already held, with no byte sent.
t.test('a photo the server already holds whole is counted as already on the server, not as sent', async (t) => {
  const { session, added } = await phoneWithUnsentPhoto(t, '356938035646021');
  // The upload reaches A and is stored there; its answer is lost on the way back (garbled).
  const url = await front(
    t,
    () => undefined,
    (method, path) => (method === 'PUT' && path.startsWith(`/v1/photos/${added.photoId}?`) ? { body: 'garbled' } : undefined),
  );
  const first = await session.sync({ transport: transportTo(url), retry: NO_RETRY });
  t.match(first, { pushed: 1, photos: { uploaded: 0, alreadyOnServer: 0, failed: [{ photoId: added.photoId, code: 'TRANSPORT_BAD_RESPONSE' }] } });
  const fresh = await session.createRecord({ name: 'A photo never sent' });
  await session.addPhoto(fresh.id, jpegWithGps('never sent'));
  const second = await session.sync({ transport: A.transport() });
  t.match(second, { photos: { uploaded: 2, alreadyOnServer: 1, failed: [] } }, 'the stored one is confirmed without sending it again; the new one is sent');
  t.same(await session.pendingCounts('server-a'), { records: 0, photos: 0 });
});

t.test('a record that makes the server fail its whole push batch (500) fails alone; the rest is pushed and pulled', async (t) => {
  const session = await phoneAt(t, '356938035646017');
  const other = await phoneAt(t, '356938035646016');
  const toPull = await other.createRecord({ name: 'To pull' });
  await other.sync({ transport: A.transport() });

  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push((await session.createRecord({ name: `Record ${i}` })).id);
  const poison = ids[1] as string;
  let refused = 0;
  const url = await front(t, (method, path, body) => {
    if (method !== 'POST' || path !== '/v1/sync/push' || !body.includes(poison)) return undefined;
    refused += 1;
    return { status: 500, body: JSON.stringify({ statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'merge failed' }) };
  });
  // Batches of 3: the poison's batch is halved while the next batch is already on its way.
  const summary = await session.sync({ transport: transportTo(url), retry: NO_RETRY, batch: { pushRecords: 3 } });
  t.match(summary, { pushed: 6, failed: [{ id: poison, code: 'INTERNAL_ERROR' }] });
  t.equal(summary.failed.length, 1);
  t.equal(refused, 3, 'the batch of 3, then its half of 2 holding the poison, then the poison alone');
  t.equal((await session.getRecord(toPull.id)).id, toPull.id, 'the pull ran');
  t.same(await session.pendingCounts('server-a'), { records: 1, photos: 0 }, 'the poison stays pending');
  t.equal((await session.sync({ transport: A.transport() })).pushed, 1, 'a server that takes it gets it next time');
});

t.test('a server that fails every push batch (500) is given up on after a bounded number of batches, not two per record', async (t) => {
  const session = await phoneAt(t, '356938035646018');
  for (let i = 0; i < 60; i++) await session.createRecord({ name: `Record ${i}` });
  let refused = 0;
  const url = await front(t, (method, path) => {
    if (method !== 'POST' || path !== '/v1/sync/push') return undefined;
    refused += 1;
    return { status: 500, body: JSON.stringify({ statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'merge failed' }) };
  });
  // Batches of 4: halving every one down to single records would take 7 requests a batch, 105 in all.
  const err = await rejection(session.sync({ transport: transportTo(url), retry: NO_RETRY, batch: { pushRecords: 4 } }));
  t.equal(err.code, 'INTERNAL_ERROR', 'the sync ends with the server error');
  t.ok(refused <= MAX_INTERNAL_ERROR_BATCHES + 2, `${refused} push requests answered 500 (at most ${MAX_INTERNAL_ERROR_BATCHES} failed batches are split, plus those already on their way)`);
  t.same(await session.pendingCounts('server-a'), { records: 60, photos: 0 }, 'nothing is marked as sent');
});
