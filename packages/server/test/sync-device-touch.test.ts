// The sync routes' device bookkeeping (last seen / last sync) reads the device once per request
// between writes: the authentication's read decides. Checked by recording, through a relay in
// front of the real store, every request the server makes.
import t from 'tap';
import { DEVICE_TOUCH_INTERVAL_MS } from '../src/sync/plugin.js';
import { bearer, json, makeApp, setupAdmin, startStore, storeRecorder } from './helpers.js';
import { newRecord, phoneFor, pull, push, recordDoc } from './sync-helpers.js';

const couch = await startStore(t);

t.test('between device writes a push or pull reads the device once; when a write is due it is read, written and seen', async (t) => {
  const recorder = await storeRecorder(t, couch);
  const { app, clock } = await makeApp(t, recorder);
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  // Reads name the document; a write (nano's insert) posts it to the devices database.
  const deviceRequests = (from: number): string[] =>
    recorder.requests.slice(from).filter((r) => r.includes(`device:${amina.device.imei}`) || /^(POST|PUT) \/\w+_devices\/?$/.test(r));
  const deviceAdmin = async (): Promise<Record<string, unknown>> =>
    json(await app.inject({ method: 'GET', url: `/v1/devices/${amina.device.imei}`, headers: bearer(admin) }))['device'] as Record<string, unknown>;

  // First sync: never synced, so the write is due (read by the authentication, read and written by the touch).
  let mark = recorder.requests.length;
  await push(app, amina.token, [newRecord(amina, { name: 'One' })]);
  const first = deviceRequests(mark);
  t.equal(first.filter((r) => r.startsWith('GET ')).length, 2, `due: the authentication's read and the touch's (${first.join(' | ')})`);
  t.equal(first.filter((r) => r.startsWith('POST ')).length, 1, 'due: one write');
  const synced = await deviceAdmin();
  t.equal(synced['lastSyncAt'], new Date(clock.now()).toISOString());

  // Within the interval: only the authentication reads the device, nothing writes it.
  clock.advance(DEVICE_TOUCH_INTERVAL_MS - 1);
  mark = recorder.requests.length;
  const res = await push(app, amina.token, [newRecord(amina, { name: 'Two' })]);
  t.equal(res.deviceStatus, 'active');
  await pull(app, amina.token);
  t.strictSame(
    deviceRequests(mark).map((r) => r.split(' ')[0]),
    ['GET', 'GET'],
    'one read per request (push, pull), no write',
  );
  t.equal((await deviceAdmin())['lastSyncAt'], synced['lastSyncAt'], 'last sync unchanged within the interval');

  // Due again: read twice and written once, and the times move.
  clock.advance(1);
  mark = recorder.requests.length;
  await pull(app, amina.token);
  const due = deviceRequests(mark);
  t.equal(due.filter((r) => r.startsWith('GET ')).length, 2);
  t.equal(due.filter((r) => r.startsWith('POST ')).length, 1);
  const after = await deviceAdmin();
  t.equal(after['lastSyncAt'], new Date(clock.now()).toISOString());
  t.equal(after['lastSeenAt'], new Date(clock.now()).toISOString());
});

t.test('a device blacklisted between two pushes of one sync is refused at the next request, nothing written', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  await push(app, amina.token, [newRecord(amina, { name: 'Before' })]);
  // Within the touch interval: the device is not due for a write, so only the authentication reads it.
  clock.advance(1_000);
  const blacklisted = await app.inject({ method: 'POST', url: `/v1/devices/${amina.device.imei}/blacklist`, headers: bearer(admin), payload: {} });
  t.equal(blacklisted.statusCode, 200);
  const after = newRecord(amina, { name: 'After' });
  const res = await app.inject({ method: 'POST', url: '/v1/sync/push', headers: bearer(amina.token), payload: { records: [after] } });
  t.equal(res.statusCode, 403);
  t.equal(json(res)['code'], 'DEVICE_BLACKLISTED');
  const stored = await recordDoc(couch.url, ta, after.id).then(
    () => 'found',
    (err: { statusCode?: number }) => err.statusCode,
  );
  t.equal(stored, 404, 'the refused push stored nothing');
});
