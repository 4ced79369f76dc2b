// A photo download the server answers with an error keeps the server's code, whatever the size
// the photo's ref declares: the transport caps a photo's body at that size, but an error answer
// (JSON, longer than a tiny photo) gets the transport's usual cap. A real server process and real
// SDK phones on SQLCipher files; the other user pushes through the raw protocol, as any phone may,
// a record naming a tiny photo nobody uploaded.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { addPhoto, createClock, createRecord } from '@fieldvault/protocol';
import { NO_RATE_LIMITS, PASSWORD_A, PASSWORD_B, newDevice, startServers } from './helpers.js';
import type { ServerProcess } from '@fieldvault/test-support';

const [A] = (await startServers(t, 'photo-download-errors', ['server-a'], [['amina', PASSWORD_A], ['bilal', PASSWORD_B]], NO_RATE_LIMITS)) as [ServerProcess];

t.test("a tiny photo the server lacks fails with the server's PHOTO_NOT_FOUND, not TRANSPORT_BAD_RESPONSE", async (t) => {
  const imei = '356938035644301';
  const login = await A.deviceLogin('bilal', PASSWORD_B, imei);
  t.equal(login.status, 200, 'bilal logs in');
  const clock = createClock({ node: imei });
  const photoId = randomUUID();
  // 10 bytes declared: far less than the server's 404 answer, which is JSON with a message and hint.
  const record = addPhoto(createRecord({ id: randomUUID(), createdBy: 'bilal', device: imei, clockTs: clock.now(), fields: { name: 'tiny photo' } }), photoId, {
    sha256: '0'.repeat(64),
    size: 10,
    type: 'image/jpeg',
    by: 'bilal',
    ts: clock.now(),
  });
  const pushed = await A.call('POST', '/v1/sync/push', { records: [record] }, { authorization: `Bearer ${String(login.body['token'])}` });
  t.match(pushed.body['results'], [{ id: record.id, status: 'ok' }], 'the record is on the server, its photo never uploaded');
  const notFound = await A.call('GET', `/v1/photos/${photoId}`, undefined, { authorization: `Bearer ${String(login.body['token'])}` });
  t.equal(notFound.status, 404);
  t.ok(JSON.stringify(notFound.body).length > 10, "the server's error answer is longer than the photo's declared size");

  const { device } = await newDevice(t, { imei: '356938035644302' });
  const amina = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  const summary = await amina.sync({ transport: A.transport() });
  t.same(summary.photos.failed, [{ photoId, code: 'PHOTO_NOT_FOUND' }], "the download reports the server's code");
});
