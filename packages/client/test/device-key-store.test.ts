import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { verifyDevice } from '@fieldvault/crypto';
import { DEVICE_KEY_FILE, createFileDeviceKeyStore, createNodeFileSystem } from '../src/index.js';

t.test('the device key pair is created on first use in a 0600 file and kept across restarts', async (t) => {
  const dir = t.testdir();
  const store = createFileDeviceKeyStore(createNodeFileSystem(dir));
  const pub = await store.publicKey();
  t.equal(statSync(join(dir, DEVICE_KEY_FILE)).mode & 0o777, 0o600);
  const message = new TextEncoder().encode('login challenge');
  t.ok(verifyDevice(pub, message, await store.sign(message)));
  t.same(await createFileDeviceKeyStore(createNodeFileSystem(dir)).publicKey(), pub);
});

t.test('a device key file readable by others is refused with VAULT_DEVICE_KEY_INVALID', async (t) => {
  const dir = t.testdir();
  await createFileDeviceKeyStore(createNodeFileSystem(dir)).publicKey();
  chmodSync(join(dir, DEVICE_KEY_FILE), 0o644);
  await t.rejects(createFileDeviceKeyStore(createNodeFileSystem(dir)).publicKey(), { code: 'VAULT_DEVICE_KEY_INVALID' });
});

t.test('a malformed device key file is refused, not replaced', async (t) => {
  const dir = t.testdir();
  const path = join(dir, DEVICE_KEY_FILE);
  const content = '{"format":"fieldvault-device-key","v":1,"publicKey":"AAAA","privateKey":"AAAA"}';
  writeFileSync(path, content, { mode: 0o600 });
  await t.rejects(createFileDeviceKeyStore(createNodeFileSystem(dir)).sign(new Uint8Array(1)), { code: 'VAULT_DEVICE_KEY_INVALID' });
  t.equal(readFileSync(path, 'utf8'), content);
});

t.test('destroy deletes the key file', async (t) => {
  const dir = t.testdir();
  const store = createFileDeviceKeyStore(createNodeFileSystem(dir));
  await store.publicKey();
  await store.destroy();
  t.throws(() => statSync(join(dir, DEVICE_KEY_FILE)));
});
