// Multi-server photo-id squat (security audit H2): a worker who pulled a record from one server
// names its photo id from a junk record of their own on another server first; there the real
// record is refused (PHOTO_ID_TAKEN) until its user follows the hint: remove the photo and add the
// image again (a new id). Two REAL server processes, the built CLI on real SQLCipher homes; the
// squatter uses the protocol directly, as a tampered phone would.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { addPhoto, createClock, createRecord, type ChildRecord } from '@fieldvault/protocol';
import { PASSWORD_A, PASSWORD_B, cli, cliWith, json, png, startFileServer, startServer, type CliResult } from './helpers.js';

const { root, server: one } = await startFileServer(t, 'photo-squat');
const two = await startServer(join(root, 'server-two'), 'server-two');
t.teardown(() => two.stop());
for (const s of [one, two]) {
  await s.createUser('amina', PASSWORD_A);
  await s.createUser('mallory', PASSWORD_B);
}

interface SyncJson {
  failed: Array<{ id: string; code: string; photoId?: string; message: string }>;
  photos: { uploaded: number; failed: Array<{ photoId: string; code: string }> };
}

async function run(t: Test, r: Promise<CliResult>, what: string): Promise<CliResult> {
  const done = await r;
  t.equal(done.code, 0, `${what}: ${done.stderr}`);
  return done;
}

/** Mallory's device session on `server` (the raw protocol: a phone of her own, any build). */
async function session(server: typeof one, imei: string): Promise<Record<string, string>> {
  const login = await server.deviceLogin('mallory', PASSWORD_B, imei);
  if (login.status !== 200) throw new Error(`mallory's login failed: ${JSON.stringify(login.body)}`);
  return { authorization: `Bearer ${String(login.body['token'])}` };
}

t.test("a squatted photo id costs the record's user one re-added photo on that server, not the record", async (t) => {
  const home = t.testdir({ 'child.png': png('the real photo') });
  await run(t, cli(home, ['servers', 'add', 'one', one.url, '--server-id', one.serverId, '--pin', one.fingerprint]), 'servers add one');
  await run(t, cli(home, ['servers', 'add', 'two', two.url, '--server-id', two.serverId, '--pin', two.fingerprint]), 'servers add two');
  await run(t, cliWith(home, PASSWORD_A, ['--user', 'amina', 'login', 'one']), 'login');
  const reg = json<{ record: { id: string }; photos: Array<{ photoId: string }> }>(
    await run(t, cliWith(home, PASSWORD_A, ['--json', 'register', '--name', 'Kofi', '--photo', join(home, 'child.png')]), 'register'),
  );
  const R = reg.record.id;
  const P = reg.photos[0]!.photoId;
  await run(t, cliWith(home, PASSWORD_A, ['sync', 'one']), 'sync one');

  // Mallory pulls R from server one, then pushes a junk record naming R's photo id to server two.
  const imei = '356938035644021';
  const pulled = await one.call('GET', '/v1/sync/pull', undefined, await session(one, imei));
  const seen = (pulled.body['records'] as ChildRecord[]).find((r) => r.id === R);
  t.ok(seen !== undefined && Object.hasOwn(seen.photos, P), "mallory's pull holds R and its photo id");
  const clock = createClock({ node: imei });
  const junk = addPhoto(createRecord({ id: randomUUID(), createdBy: 'mallory', device: imei, clockTs: clock.now(), fields: { name: 'junk' } }), P, {
    sha256: '0'.repeat(64), size: 5_000, type: 'image/png', by: 'mallory', ts: clock.now(),
  });
  const squat = await two.call('POST', '/v1/sync/push', { records: [junk] }, await session(two, imei));
  t.match(squat.body['results'], [{ id: junk.id, status: 'ok' }], 'the junk record takes the id on server two');

  const refused = json<SyncJson>(await cliWith(home, PASSWORD_A, ['--json', 'sync', 'two']));
  t.match(refused.failed, [{ id: R, code: 'PHOTO_ID_TAKEN', photoId: P }], 'server two refuses R, naming the photo');
  // The text says which photo and the commands that replace it, with the short ids "show" prints.
  const [r, p] = [R.slice(0, 8), P.slice(0, 8)];
  const line = (await cliWith(home, PASSWORD_A, ['sync', 'two'])).stdout.split('\n').find((l) => l.includes(`record ${r} (PHOTO_ID_TAKEN)`));
  t.equal(
    line?.trim(),
    `record ${r} (PHOTO_ID_TAKEN): photo ${p} is taken on this server by another record, so the record was not stored there (it stays on this phone). ` +
      `Keep a copy ("fieldvault-field photo save ${r} ${p} --out FILE"), remove it ("fieldvault-field photo remove ${r} ${p}"), ` +
      `add it again ("fieldvault-field photo add ${r} FILE"): it gets a new id. Then sync.`,
    'the failure line tells exactly what to do',
  );

  // The hint: remove the photo and add the image again (a copy saved from the phone will do).
  const copy = join(home, 'copy.png');
  await run(t, cliWith(home, PASSWORD_A, ['photo', 'save', R, P, '--out', copy]), 'photo save');
  await run(t, cliWith(home, PASSWORD_A, ['photo', 'remove', R, P]), 'photo remove');
  const added = json<{ photos: Array<{ photoId: string }> }>(await run(t, cliWith(home, PASSWORD_A, ['--json', 'photo', 'add', R, copy]), 'photo add'));
  const P2 = added.photos[0]!.photoId;
  const synced = json<SyncJson>(await cliWith(home, PASSWORD_A, ['--json', 'sync', 'two']));
  t.same([synced.failed, synced.photos.uploaded], [[], 1], 'R is stored and its new photo uploaded');
  // Its file gone from the phone with the removal, the id now names only the junk record's photo,
  // which nobody uploaded: that download fails, as for any photo a server lacks.
  t.same(synced.photos.failed.map((f) => [f.photoId, f.code]), [[P, 'PHOTO_NOT_FOUND']], "only the junk record's photo fails");
  const onTwo = (await two.records()).find((r) => r.id === R);
  t.ok(onTwo?.photos[P]?.removedAt !== undefined && onTwo.photos[P2]?.removedAt === undefined, 'server two holds R with the old photo removed and the new one');
  const status = await two.call('GET', `/v1/photos/${P2}/upload?record=${R}`, undefined, await session(two, imei));
  t.match(status.body, { complete: true }, "the new photo's bytes are on server two");
});
