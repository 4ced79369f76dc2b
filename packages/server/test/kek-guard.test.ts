// The server refuses to start with a KEK other than the one its store's sealed material is under
// (operations audit, item 3): before, a missing KEK file was silently replaced by a new KEK and
// every login then failed CRYPTO_ENVELOPE_INVALID while new keys were sealed under the new KEK.
import { randomBytes } from 'node:crypto';
import nano from 'nano';
import t from 'tap';
import { kekId } from '@fieldvault/crypto';
import { freshPrefix, login, makeApp, newDevice, setupAdmin, ADMIN_PASSWORD, startStore } from './helpers.js';

const couch = await startStore(t);
const newKek = (): Uint8Array => new Uint8Array(randomBytes(32));

t.test('the KEK id is recorded at first start; another KEK is refused naming both ids, never key bytes', async (t) => {
  const kek = newKek();
  const prefix = freshPrefix();
  const first = await makeApp(t, couch, { kek, couch: { dbPrefix: prefix } });
  t.equal(first.app.kekId, kekId(kek));
  await first.app.close();

  const other = newKek();
  const err = (await makeApp(t, couch, { kek: other, couch: { dbPrefix: prefix } }).then(
    () => t.fail('must not start'),
    (e: unknown) => e,
  )) as { code: string; message: string; details: Record<string, unknown> };
  t.equal(err.code, 'CONFIG_KEK_MISMATCH');
  t.same(err.details, { storeKekId: kekId(kek), kekId: kekId(other) });
  t.match(err.message, kekId(kek));
  for (const k of [kek, other]) {
    t.notMatch(err.message, Buffer.from(k).toString('base64'));
    t.notMatch(err.message, Buffer.from(k).toString('hex'));
  }

  const again = await makeApp(t, couch, { kek, couch: { dbPrefix: prefix } });
  t.equal(again.app.kekId, kekId(kek), 'the right KEK still starts');
  await again.app.close();
  await nano(couch.url).db.list().then(async (dbs) => {
    for (const db of dbs.filter((d) => d.startsWith(prefix))) await nano(couch.url).db.destroy(db);
  });
});

t.test('a store made before the marker is recognised by the KEK id inside its sealed keys', async (t) => {
  const kek = newKek();
  const prefix = freshPrefix();
  const first = await makeApp(t, couch, { kek, couch: { dbPrefix: prefix } });
  await setupAdmin(first.app);
  await login(first.app, newDevice(), { username: 'admin', password: ADMIN_PASSWORD });
  await first.app.close();
  // As a store of an older server: sealed device keys, no marker.
  const devices = nano(couch.url).use(`${prefix}devices`);
  const marker = await devices.get('_local/fieldvault-kek');
  t.equal((marker as unknown as { kekId: string }).kekId, kekId(kek), 'the marker holds the id only');
  await devices.destroy('_local/fieldvault-kek', marker._rev);

  const other = newKek();
  await t.rejects(makeApp(t, couch, { kek: other, couch: { dbPrefix: prefix } }), { code: 'CONFIG_KEK_MISMATCH', details: { storeKekId: kekId(kek), kekId: kekId(other) } });
  const after = await devices.get('_local/fieldvault-kek').then(() => 200, (err: { statusCode?: number }) => err.statusCode);
  t.equal(after, 404, 'a refused start records nothing');

  const right = await makeApp(t, couch, { kek, couch: { dbPrefix: prefix } });
  t.equal(right.app.kekId, kekId(kek));
  t.equal(((await devices.get('_local/fieldvault-kek')) as unknown as { kekId: string }).kekId, kekId(kek), 'the marker is recorded now');
});

t.test('a store without marker and without sealed material takes the KEK it is started with', async (t) => {
  const prefix = freshPrefix();
  const first = await makeApp(t, couch, { kek: newKek(), couch: { dbPrefix: prefix } });
  await first.app.close();
  const devices = nano(couch.url).use(`${prefix}devices`);
  const marker = await devices.get('_local/fieldvault-kek');
  await devices.destroy('_local/fieldvault-kek', marker._rev);
  const kek = newKek();
  const second = await makeApp(t, couch, { kek, couch: { dbPrefix: prefix } });
  t.equal(second.app.kekId, kekId(kek));
});
