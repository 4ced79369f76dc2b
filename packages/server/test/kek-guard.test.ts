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

t.test('the KEK id is recorded at first start; once a key is sealed another KEK is refused naming both ids, never key bytes', async (t) => {
  const kek = newKek();
  const prefix = freshPrefix();
  const first = await makeApp(t, couch, { kek, couch: { dbPrefix: prefix } });
  t.equal(first.app.kekId, kekId(kek));
  await setupAdmin(first.app);
  await first.app.close();

  const other = newKek();
  const err = (await makeApp(t, couch, { kek: other, couch: { dbPrefix: prefix } }).then(
    () => t.fail('must not start'),
    (e: unknown) => e,
  )) as { code: string; message: string; details: Record<string, unknown> };
  t.equal(err.code, 'CONFIG_KEK_MISMATCH');
  t.same(err.details, { storeKekId: kekId(kek), kekId: kekId(other) });
  t.match(err.message, `the store expects KEK id ${kekId(kek)}`);
  t.match(err.message, 'or another server uses this prefix on this CouchDB: set FIELDVAULT_COUCHDB_PREFIX');
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

// Operator audit s10, item 1: a restore target started by mistake with its own new KEK has
// recorded that KEK's id, but holds nothing sealed; BACKUP_KEK_MISMATCH says to start it with the
// backed-up server's KEK, so that start must work.
t.test('a store with a marker but no users and no devices takes another KEK, moves the marker and warns naming both ids', async (t) => {
  const prefix = freshPrefix();
  const first = newKek();
  const a = await makeApp(t, couch, { kek: first, couch: { dbPrefix: prefix } });
  await a.app.close();
  const devices = nano(couch.url).use(`${prefix}devices`);

  const production = newKek();
  const b = await makeApp(t, couch, { kek: production, couch: { dbPrefix: prefix } });
  t.equal(b.app.kekId, kekId(production));
  t.equal(((await devices.get('_local/fieldvault-kek')) as unknown as { kekId: string }).kekId, kekId(production), 'the marker names the new KEK');
  const warning = b.logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string; storeKekId?: string; kekId?: string }).find((l) => l.msg.includes('holds nothing sealed'));
  t.ok(warning, 'a warning is logged');
  t.equal(warning?.level, 40);
  t.match(warning?.msg, `the store expected KEK id ${kekId(first)}`);
  t.match(warning?.msg, `it takes KEK id ${kekId(production)} now`);
  t.match(warning?.msg, 'FIELDVAULT_COUCHDB_PREFIX');
  t.match(warning, { storeKekId: kekId(first), kekId: kekId(production) });
  for (const k of [first, production]) t.notOk(b.logs.text().includes(Buffer.from(k).toString('base64')), 'no key bytes in the log');

  // Once something is sealed under it, the new KEK is the only one accepted.
  await setupAdmin(b.app);
  await b.app.close();
  await t.rejects(makeApp(t, couch, { kek: first, couch: { dbPrefix: prefix } }), {
    code: 'CONFIG_KEK_MISMATCH',
    details: { storeKekId: kekId(production), kekId: kekId(first) },
  });
  t.equal(((await devices.get('_local/fieldvault-kek')) as unknown as { kekId: string }).kekId, kekId(production), 'a refused start leaves the marker');
});

t.test('a store with only a device (a key sealed under the KEK) keeps refusing another KEK', async (t) => {
  const prefix = freshPrefix();
  const kek = newKek();
  const a = await makeApp(t, couch, { kek, couch: { dbPrefix: prefix } });
  const { token } = await setupAdmin(a.app);
  // Leave only the admin's device: the user documents go, the sealed device key stays.
  const users = nano(couch.url).use(`${prefix}users`);
  await a.app.close();
  for (const row of (await users.list()).rows.filter((r) => !r.id.startsWith('_design/'))) await users.destroy(row.id, row.value.rev);
  t.ok(token);
  await t.rejects(makeApp(t, couch, { kek: newKek(), couch: { dbPrefix: prefix } }), { code: 'CONFIG_KEK_MISMATCH', details: { storeKekId: kekId(kek) } });
});

// Operator audit s10, item 10: a second server started on the same prefix by mistake, before the
// first had any user, took the marker over (the store "held nothing sealed") while the first went on
// running under its own KEK. Only the server that recorded the marker may move it.
t.test('another server on the same prefix cannot take the marker, even before any user exists', async (t) => {
  const prefix = freshPrefix();
  const kek = newKek();
  const a = await makeApp(t, couch, { kek, serverId: 'server-a', couch: { dbPrefix: prefix } });
  const devices = nano(couch.url).use(`${prefix}devices`);
  t.match(await devices.get('_local/fieldvault-kek'), { kekId: kekId(kek), serverId: 'server-a' }, 'the marker names the server that recorded it');

  const other = newKek();
  const err = (await makeApp(t, couch, { kek: other, serverId: 'server-b', couch: { dbPrefix: prefix } }).then(
    () => t.fail('must not start'),
    (e: unknown) => e,
  )) as { code: string; message: string; details: Record<string, unknown> };
  t.equal(err.code, 'CONFIG_KEK_MISMATCH');
  t.same(err.details, { storeKekId: kekId(kek), kekId: kekId(other), recordedBy: 'server-a' });
  t.match(err.message, `recorded by server server-a; this is server server-b`);
  t.match(err.message, `same databases (prefix ${prefix}): give this one its own FIELDVAULT_COUCHDB_PREFIX`);
  t.match(await devices.get('_local/fieldvault-kek'), { kekId: kekId(kek), serverId: 'server-a' }, 'the marker is left as it was');

  // The first server goes on: its users are sealed under the KEK the store expects.
  await setupAdmin(a.app);
  await a.app.close();
  const again = await makeApp(t, couch, { kek, serverId: 'server-a', couch: { dbPrefix: prefix } });
  t.equal(again.app.kekId, kekId(kek));
  await again.app.close();
});
