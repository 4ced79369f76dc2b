// A device directory opened with another IMEI than the one it was created with (SDK audit M4,
// /work/notes/s9/sdk-report.md): a distinct code at createDevice, saying to pass the right IMEI,
// with no hint to wipe; a damaged keyring is still not refused there (so that wipe() works).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createDevice, isFieldvaultError } from '@fieldvault/client';
import { SqlCipherStorage } from '../src/index.js';
import { FAST_KDF, IMEI, PASSWORD_A, newDevice, rejection, snapshot } from './helpers.js';

const OTHER_IMEI = '356938035643809';

t.test('createDevice on a directory of another IMEI is VAULT_DEVICE_MISMATCH, without a wipe hint, and changes nothing', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const before = snapshot(dir);
  const err = await rejection(createDevice({ directory: dir, imei: OTHER_IMEI, storage: new SqlCipherStorage({ directory: join(dir, 'databases') }), kdf: FAST_KDF }));
  t.equal(err.code, 'VAULT_DEVICE_MISMATCH');
  t.ok(isFieldvaultError(err));
  const text = isFieldvaultError(err) ? `${err.message} ${err.hint ?? ''}` : '';
  t.match(text, /pass the IMEI the directory was created with/);
  t.notMatch(text, /restore the keyring|starts over|damaged/, 'no hint to restore or wipe');
  t.notMatch(text, new RegExp(IMEI), 'the message does not carry the IMEI');
  t.same(snapshot(dir), before, 'nothing changed on disk');
  const again = await newDevice(t, {}, dir);
  t.same((await again.device.users()).map((u) => u.username), ['amina'], 'the right IMEI still opens it');
});

t.test('a damaged keyring does not stop createDevice (wipe still works); its calls report VAULT_KEYRING_CORRUPT', async (t) => {
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const file = join(dir, 'keyring.json');
  writeFileSync(file, readFileSync(file).subarray(0, 30));
  const damaged = await createDevice({ directory: dir, imei: OTHER_IMEI, storage: new SqlCipherStorage({ directory: join(dir, 'databases') }), kdf: FAST_KDF });
  t.equal((await rejection(damaged.users())).code, 'VAULT_KEYRING_CORRUPT');
  await damaged.wipe();
  t.same(await damaged.users(), []);
});
