// Records stranded by two passwords (field audit, item 1): a user signs up offline with a phone
// password, records children, then sets another password on the server with her invitation token
// and logs in online with that one. The flow-1 move needs the unverified key, which only the phone
// password opens, so the login must say that records were left behind (`unverifiedRecordsLocked`),
// and `claimUnverifiedRecords(oldPassword)` must move them — refusing a wrong password without
// changing a byte, surviving kill -9 at every step, and leaving no unverified database behind.
// Real server process, real SQLCipher files.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { KEYRING_FILE, parseKeyring, setPasswordWithToken } from '@fieldvault/client';
import type { ServerProcess } from '@fieldvault/test-support';
import { IMEI, PASSWORD_A, PASSWORD_B, TS_LOADER, jpegWithGps, newDevice, rejection, serverKey, snapshot, startServers } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/claim-child.ts', import.meta.url));
/** The password carol chose on the phone at sign-up. */
const PHONE_PASSWORD = PASSWORD_A;
/** The password carol set on the server with her invitation token. */
const SERVER_PASSWORD = PASSWORD_B;

const [A] = (await startServers(t, 'claim', ['server-a'], [])) as [ServerProcess];

/** Creates `username` on A and returns the invitation token the admin is given. */
async function invite(username: string): Promise<string> {
  const made = await A.admin('POST', '/v1/users', { username, role: 'field_worker' });
  if (made.status !== 201) throw new Error(JSON.stringify(made.body));
  return (made.body['invitation'] as { token: string }).token;
}

function keyringKinds(dir: string, username: string): string[] {
  return parseKeyring(readFileSync(join(dir, KEYRING_FILE)), IMEI)
    .entries.filter((e) => e.username === username)
    .map((e) => e.kind)
    .sort();
}

t.test('an online login with the server password reports the unverified records it left behind; the old phone password moves them and the next sync sends them', async (t) => {
  const { dir, device, storage } = await newDevice(t);
  await setPasswordWithToken({ transport: A.transport(), token: await invite('carol'), password: SERVER_PASSWORD, username: 'carol' });

  await device.signUpOffline('carol', PHONE_PASSWORD);
  const offline = await device.loginOffline('carol', PHONE_PASSWORD);
  t.equal(offline.unverifiedRecordsLocked, false, 'an unverified session has nothing locked away');
  const grace = await offline.createRecord({ name: 'Grace Atim', age: 4 });
  await offline.addPhoto(grace.id, jpegWithGps('grace'));
  const second = await offline.createRecord({ name: 'Second child' });
  await offline.logout();

  const online = await device.loginOnline('carol', SERVER_PASSWORD, { transport: A.transport() });
  t.equal(online.kind, 'verified');
  t.equal(online.unverifiedRecordsLocked, true, 'the login says an unverified database was left behind');
  t.same(await online.listRecords(), [], 'her records are not in the verified database');
  await online.sync({ transport: A.transport() });
  t.same(await A.records(), [], 'and nothing reached the server');
  await online.logout();
  t.same(keyringKinds(dir, 'carol'), ['unverified', 'verified']);
  t.equal((await storage.list()).length, 2, 'verified + unverified database files');

  // The next session (offline, with the server password) says so too.
  const verified = await device.loginOffline('carol', SERVER_PASSWORD);
  t.equal(verified.unverifiedRecordsLocked, true);
  const before = snapshot(dir);
  const wrong = await rejection(verified.claimUnverifiedRecords('not the password chosen on this phone'));
  t.equal(wrong.code, 'VAULT_WRONG_PASSWORD');
  t.same(snapshot(dir), before, 'a wrong old password changes nothing on disk');
  t.equal(verified.unverifiedRecordsLocked, true);

  const moved = await verified.claimUnverifiedRecords(PHONE_PASSWORD);
  t.same(moved, { records: 2, photos: 1 });
  t.equal(verified.unverifiedRecordsLocked, false);
  t.same((await verified.listRecords()).map((r) => r.id).sort(), [grace.id, second.id].sort(), 'same ids, in the verified database');
  const photoIds = Object.keys((await verified.getRecord(grace.id)).photos);
  t.equal(photoIds.length, 1);
  t.equal((await verified.readPhoto(grace.id, photoIds[0] as string)).bytes.byteLength > 0, true, 'the photo was re-encrypted and reads back');
  t.same(await verified.claimUnverifiedRecords(PHONE_PASSWORD), { records: 0, photos: 0 }, 'a second claim has nothing left to move');
  await verified.logout();
  t.same(keyringKinds(dir, 'carol'), ['verified'], 'the unverified keyring entry is gone');
  t.equal((await storage.list()).length, 1, 'and so is the emptied unverified database');

  // As in flow 1: the next sync pushes them.
  const again = await device.loginOnline('carol', SERVER_PASSWORD, { transport: A.transport() });
  t.equal(again.unverifiedRecordsLocked, false);
  const summary = await again.sync({ transport: A.transport() });
  t.equal(summary.failed.length, 0);
  t.same((await A.records()).map((r) => r.id).sort(), [grace.id, second.id].sort(), 'the server holds both, once each');
  await again.logout();
  t.equal((await rejection(device.loginOffline('carol', PHONE_PASSWORD))).code, 'VAULT_WRONG_PASSWORD', 'the phone password opens nothing any more');
});

t.test('a login whose password opens the unverified database moves the records itself and reports nothing locked (flow 1 unchanged)', async (t) => {
  const { device, storage } = await newDevice(t, { imei: '356938035643819' });
  await setPasswordWithToken({ transport: A.transport(), token: await invite('dina'), password: PHONE_PASSWORD, username: 'dina' });
  await device.signUpOffline('dina', PHONE_PASSWORD);
  const offline = await device.loginOffline('dina', PHONE_PASSWORD);
  await offline.createRecord({ name: 'Moved by the login' });
  await offline.logout();
  const online = await device.loginOnline('dina', PHONE_PASSWORD, { transport: A.transport() });
  t.equal(online.unverifiedRecordsLocked, false);
  t.equal((await online.listRecords()).length, 1);
  await online.logout();
  t.equal((await storage.list()).length, 1);
});

t.test('an unverified session cannot claim (there is nowhere to move to)', async (t) => {
  const { device } = await newDevice(t);
  await device.signUpOffline('erin', PHONE_PASSWORD);
  const s = await device.loginOffline('erin', PHONE_PASSWORD);
  t.equal((await rejection(s.claimUnverifiedRecords(PHONE_PASSWORD))).code, 'VAULT_FORBIDDEN');
  t.equal((await rejection(s.claimUnverifiedRecords(42 as unknown as string))).code, 'INPUT_INVALID');
});

/** Runs the claim in a child process that kill -9s itself at `step`. */
function runChild(dir: string, step: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TS_LOADER, CHILD, dir, 'carol', SERVER_PASSWORD, PHONE_PASSWORD, step], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

for (const step of ['journal-written', 'photos-copied', 'records-copied', 'source-photos-deleted', 'source-records-deleted', 'source-deleted', 'journal-cleared']) {
  t.test(`kill -9 at "${step}" of a claim: the next login finishes it, every record once, no unverified database left`, async (t) => {
    const { dir, device, storage } = await newDevice(t);
    await device.signUpOffline('carol', PHONE_PASSWORD);
    const offline = await device.loginOffline('carol', PHONE_PASSWORD);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await offline.createRecord({ name: `Child ${i}`, age: i })).id);
    await offline.addPhoto(ids[0] as string, jpegWithGps(`photo ${step}`));
    await offline.logout();
    // The online login with the server password, through its public hook (no server needed here).
    const { key, record } = serverKey(Date.now(), 'server-a');
    await (await device.adoptVerifiedKey({ username: 'carol', password: SERVER_PASSWORD, serverId: 'server-a', keyRecord: record, key })).logout();

    const child = await runChild(dir, step);
    t.equal(child.signal, 'SIGKILL', child.out);
    const s = await device.loginOffline('carol', SERVER_PASSWORD);
    const after = (await s.listRecords()).map((r) => r.id);
    t.same([...after].sort(), [...ids].sort(), 'every record exactly once in the verified database');
    t.equal(Object.keys((await s.getRecord(ids[0] as string)).photos).length, 1);
    t.equal(s.unverifiedRecordsLocked, false, 'nothing left behind');
    await s.logout();
    t.same(keyringKinds(dir, 'carol'), ['verified']);
    t.equal((await storage.list()).length, 1, 'the unverified database is gone');
  });
}
