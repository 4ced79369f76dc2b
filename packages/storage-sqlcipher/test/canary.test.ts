import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PASSWORD_A, contains, filesUnder, jpegWithGps, newDevice, serverKey } from './helpers.js';

// Issue 4: a canary written in records and photos never appears in any file under the SDK
// directory (databases, -wal, -shm, journals, photos, keyring), while a session is open and after.
const CANARY = 'CANARYd41d8cd98f00b204';

function leaks(dir: string): string[] {
  return filesUnder(dir).filter((f) => contains(readFileSync(join(dir, f)), CANARY) || contains(readFileSync(join(dir, f)), PASSWORD_A));
}

t.test('a canary in records and photos never appears in any file under the SDK directory', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const s = await device.loginOffline('amina', PASSWORD_A);
  const record = await s.createRecord({ name: `${CANARY} name`, notes: `${CANARY} `.repeat(200), location: CANARY });
  await s.updateRecord(record.id, { caregiver: CANARY });
  // The canary sits in the EXIF (stripped) and, as the scan of this synthetic JPEG, in the pixels (encrypted).
  const photo = jpegWithGps(CANARY, 100);
  const withCanaryPixels = new Uint8Array([...photo.subarray(0, photo.length - 2 - 8 - CANARY.length), ...Buffer.from(CANARY), 0xff, 0xd9]);
  await s.addPhoto(record.id, withCanaryPixels);
  t.ok(filesUnder(dir).some((f) => f.endsWith('-wal')), 'a WAL file exists while the session is open');
  t.same(leaks(dir), [], 'no leak with the session open');
  await s.logout();
  t.same(leaks(dir), [], 'no leak after logout');

  const { key, record: keyRecord } = serverKey(Date.now(), 'server-a');
  const v = await device.adoptVerifiedKey({ username: 'amina', password: PASSWORD_A, serverId: 'server-a', keyRecord, key });
  t.equal((await v.searchRecords({ name: CANARY.toLowerCase() })).length, 1, 'the record moved');
  t.same(leaks(dir), [], 'no leak after the move to the verified database');
  await v.logout();
});
