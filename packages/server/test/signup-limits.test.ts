// Security audit M3: `POST /v1/signups` needs no account, so what it may store is bounded: a
// smaller body limit than a push, new requests per address per hour, pending requests
// server-wide, and records/bytes each request holds in quarantine. Deciding a request frees room.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import nano from 'nano';
import { signDevice, toBase64 } from '@fieldvault/crypto';
import { createClock, createRecord, signupSignatureMessage, type ChildRecord, type FieldValue } from '@fieldvault/protocol';
import { recordBytes } from '../src/signups/limits.js';
import { bearer, fakeClock, getChallenge, makeApp, newDevice, setupAdmin, startStore, type Device, type FakeClock, type Overrides, type TestApp } from './helpers.js';

const couch = await startStore(t);
const PHONE_PASSWORD = 'the phone password chosen offline';

function records(device: Device, wall: FakeClock, username: string, count: number, notes = ''): ChildRecord[] {
  const clock = createClock({ node: device.imei, now: wall.now });
  return Array.from({ length: count }, (_, i) =>
    createRecord({
      id: randomUUID(),
      createdBy: username,
      device: device.imei,
      clockTs: clock.now(),
      fields: (notes === '' ? { name: `Child ${i}` } : { name: `Child ${i}`, notes }) as Record<string, FieldValue>,
    }),
  );
}

async function ask(app: FastifyInstance, device: Device, username: string, opts: { records?: readonly unknown[]; from?: string } = {}): Promise<LightMyRequestResponse> {
  const challenge = await getChallenge(app, device.imei);
  const signature = signDevice(device.keys.privateKey, signupSignatureMessage({ action: 'request', challenge, username, imei: device.imei }));
  return app.inject({
    method: 'POST',
    url: '/v1/signups',
    remoteAddress: opts.from ?? '192.0.2.10',
    payload: {
      username,
      imei: device.imei,
      devicePublicKey: device.publicKey,
      challenge,
      signature: toBase64(signature),
      password: PHONE_PASSWORD,
      ...(opts.records === undefined ? {} : { records: opts.records }),
    },
  });
}

const code = (res: LightMyRequestResponse): string | undefined => (res.json() as { code?: string }).code;

async function quarantineDocs(ta: TestApp): Promise<number> {
  const db = nano(couch.url).use(`${ta.config.couch.dbPrefix as string}pending`);
  return (await db.list()).rows.filter((r) => r.id.startsWith('qrec:')).length;
}

async function appWith(t: Parameters<typeof makeApp>[0], signups: NonNullable<Overrides['signups']>): Promise<TestApp> {
  return makeApp(t, couch, { signups });
}

t.test('more new sign-up requests from one address in an hour than allowed get SIGNUP_TOO_MANY_FROM_ADDRESS; other addresses and later hours are fine', async (t) => {
  const ta = await appWith(t, { perClientPerHour: 2 });
  const { app, clock } = ta;
  t.equal((await ask(app, newDevice(), 'ana')).statusCode, 200);
  t.equal((await ask(app, newDevice(), 'ben')).statusCode, 200);
  const third = await ask(app, newDevice(), 'cleo');
  t.equal(third.statusCode, 429);
  t.equal(code(third), 'SIGNUP_TOO_MANY_FROM_ADDRESS');
  t.ok(Number(third.headers['retry-after']) >= 1, 'with a Retry-After');
  t.equal(third.headers['connection'], 'close', 'a 429 closes its connection');
  t.equal((await ask(app, newDevice(), 'cleo', { from: '192.0.2.11' })).statusCode, 200, 'another address may still ask');
  clock.advance(3_600_001);
  t.equal((await ask(app, newDevice(), 'dora')).statusCode, 200, 'an hour later the address may ask again');
});

t.test('a renewal of a pending request from the same device does not count as a new request', async (t) => {
  const { app } = await appWith(t, { perClientPerHour: 1 });
  const phone = newDevice();
  t.equal((await ask(app, phone, 'ana')).statusCode, 200);
  t.equal((await ask(app, phone, 'ana')).statusCode, 200, 'renewed');
  t.equal(code(await ask(app, newDevice(), 'ben')), 'SIGNUP_TOO_MANY_FROM_ADDRESS');
});

t.test('beyond maxPending pending requests a new one gets SIGNUP_SERVER_FULL; rejecting one frees room', async (t) => {
  const { app } = await appWith(t, { maxPending: 2 });
  const { token } = await setupAdmin(app);
  t.equal((await ask(app, newDevice(), 'ana', { from: '192.0.2.1' })).statusCode, 200);
  t.equal((await ask(app, newDevice(), 'ben', { from: '192.0.2.2' })).statusCode, 200);
  const full = await ask(app, newDevice(), 'cleo', { from: '192.0.2.3' });
  t.equal(full.statusCode, 503);
  t.equal(code(full), 'SIGNUP_SERVER_FULL');
  const list = await app.inject({ method: 'GET', url: '/v1/signups?status=pending', headers: bearer(token) });
  t.same((list.json() as { signups: Array<{ username: string }> }).signups.map((s) => s.username), ['ana', 'ben'], 'nothing stored for the refused one');
  const rejected = await app.inject({ method: 'POST', url: '/v1/signups/ana/reject', headers: bearer(token), payload: {} });
  t.equal(rejected.statusCode, 200);
  t.equal((await ask(app, newDevice(), 'cleo', { from: '192.0.2.3' })).statusCode, 200, 'room again after an admin decided');
});

t.test('records beyond the quarantine quota of a request fail alone with SIGNUP_QUARANTINE_FULL, renewals included', async (t) => {
  const ta = await appWith(t, { quarantineMaxRecords: 3 });
  const { app, clock } = ta;
  const phone = newDevice();
  const first = await ask(app, phone, 'ana', { records: records(phone, clock, 'ana', 2) });
  t.equal(first.statusCode, 200);
  t.equal((first.json() as { quarantined: number }).quarantined, 2);
  const more = records(phone, clock, 'ana', 3);
  const second = await ask(app, phone, 'ana', { records: more });
  t.equal(second.statusCode, 200);
  const body = second.json() as { quarantined: number; results: Array<{ status: string; code?: string }> };
  t.same(body.results.map((r) => r.status), ['ok', 'error', 'error'], 'one more fits, the rest fail alone');
  t.same(body.results.slice(1).map((r) => r.code), ['SIGNUP_QUARANTINE_FULL', 'SIGNUP_QUARANTINE_FULL']);
  t.equal(body.quarantined, 3);
  t.equal(await quarantineDocs(ta), 3, 'the store holds 3 quarantined records');
});

t.test('the byte quota counts the records\' JSON', async (t) => {
  const phone = newDevice();
  const big = records(phone, fakeClock(), 'ana', 3, 'x'.repeat(1_200));
  // Room for the first two records, not for the third.
  const { app } = await appWith(t, { quarantineMaxBytes: recordBytes(big[0] as ChildRecord) + recordBytes(big[1] as ChildRecord) + 100 });
  const res = await ask(app, phone, 'ana', { records: big });
  t.equal(res.statusCode, 200);
  const body = res.json() as { quarantined: number; results: Array<{ status: string; code?: string }> };
  t.same(body.results.map((r) => r.code ?? r.status), ['ok', 'ok', 'SIGNUP_QUARANTINE_FULL']);
  t.equal(body.quarantined, 2);
});

t.test('a sign-up body over signups.maxBytes is refused with INPUT_TOO_LARGE and a connection close, before anything is stored', async (t) => {
  const ta = await appWith(t, { maxBytes: 4_096 });
  const { app, clock } = ta;
  const phone = newDevice();
  const res = await ask(app, phone, 'ana', { records: records(phone, clock, 'ana', 4, 'y'.repeat(1_500)) });
  t.equal(res.statusCode, 413);
  t.equal(code(res), 'INPUT_TOO_LARGE');
  t.equal(res.headers['connection'], 'close');
  t.equal(await quarantineDocs(ta), 0);
});
