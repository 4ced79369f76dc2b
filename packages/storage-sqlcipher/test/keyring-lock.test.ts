// Keyring writes from several `Device` objects on one directory (SDK audit H3,
// /work/notes/s9/sdk-report.md, repro 10-keyring-race.mjs): in one process or in several, every
// read-modify-write of the keyring runs under a lock file in the device directory and is applied
// to the version on disk, so no user's key is lost; a lock left by a process killed with -9 goes
// stale and is taken over.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { createDevice, createNodeFileSystem, type Device } from '@fieldvault/client';
import { SqlCipherStorage } from '../src/index.js';
import { FAST_KDF, PASSWORD_A, PASSWORD_B, TS_LOADER, rejection } from './helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/keyring-child.ts', import.meta.url));
const IMEI = '356938035646001';

async function deviceOn(t: Test, dir: string, extra: { lockStaleMs?: number; lockWaitMs?: number } = {}): Promise<Device> {
  const device = await createDevice({
    directory: dir,
    imei: IMEI,
    storage: new SqlCipherStorage({ directory: join(dir, 'databases') }),
    kdf: FAST_KDF,
    ...(extra.lockStaleMs === undefined && extra.lockWaitMs === undefined ? {} : { fileSystem: createNodeFileSystem(dir, extra) }),
  });
  t.teardown(() => device.logout());
  return device;
}

/** Runs the fixture; resolves with the child once it printed `line` (fails the test if it exits first). */
function child(t: Test, args: readonly string[], line: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [...TS_LOADER, CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += String(d)));
  return new Promise((resolve, reject) => {
    proc.stdout?.on('data', (d: Buffer) => {
      out += String(d);
      if (out.split('\n').includes(line)) resolve(proc);
    });
    proc.on('exit', (code) => reject(new Error(`child exited (${code}) before "${line}": ${err}`)));
  });
}

function killed(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    proc.on('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

t.test('two Device objects on one directory signing up at once keep both users, round after round (10-keyring-race)', async (t) => {
  const root = t.testdir();
  for (let round = 0; round < 5; round += 1) {
    const dir = join(root, `phone${round}`);
    const [d1, d2] = [await deviceOn(t, dir), await deviceOn(t, dir)];
    await Promise.all([d1.signUpOffline('xavier', PASSWORD_A), d2.signUpOffline('yusuf', PASSWORD_B)]);
    const fresh = await deviceOn(t, dir);
    t.same((await fresh.users()).map((u) => u.username), ['xavier', 'yusuf'], `round ${round}: both users are in the keyring`);
    for (const [name, pw] of [['xavier', PASSWORD_A], ['yusuf', PASSWORD_B]] as const) {
      const s = await fresh.loginOffline(name, pw);
      await s.createRecord({ name: `child of ${name}` });
      await s.logout();
    }
    t.equal((await new SqlCipherStorage({ directory: join(dir, 'databases') }).list()).length, 2, `round ${round}: two databases, none orphaned`);
  }
});

t.test('two processes signing up users on one directory at once keep every user', async (t) => {
  const dir = t.testdir();
  await Promise.all([child(t, ['signup', dir, IMEI, 'p', '4'], 'done'), child(t, ['signup', dir, IMEI, 'q', '4'], 'done')]);
  const device = await deviceOn(t, dir);
  const names = (await device.users()).map((u) => u.username);
  t.same(names, ['p-0', 'p-1', 'p-2', 'p-3', 'q-0', 'q-1', 'q-2', 'q-3']);
  for (const name of names) {
    const s = await device.loginOffline(name, PASSWORD_A);
    t.same((await s.listRecords()).map((r) => r.fields['name']?.value), [`child of ${name}`], `${name} opens their database`);
    await s.logout();
  }
});

t.test('a live holder of the lock makes a write wait (VAULT_BUSY after the wait, nothing written); after a kill -9 the stale lock is taken over', async (t) => {
  const dir = t.testdir();
  const holder = await child(t, ['hold', dir, '2000'], 'locked');
  const impatient = await deviceOn(t, dir, { lockStaleMs: 2000, lockWaitMs: 300 });
  const err = await rejection(impatient.signUpOffline('xavier', PASSWORD_A));
  t.equal(err.code, 'VAULT_BUSY');
  t.notOk(existsSync(join(dir, 'keyring.json')), 'no keyring was written');
  t.same(await new SqlCipherStorage({ directory: join(dir, 'databases') }).list(), [], 'and no database left behind');

  await killed(holder);
  t.ok(existsSync(join(dir, 'keyring.json.lock')), 'the killed holder left its lock behind');
  const patient = await deviceOn(t, dir, { lockStaleMs: 2000 });
  await patient.signUpOffline('xavier', PASSWORD_A);
  t.same((await patient.users()).map((u) => u.username), ['xavier'], 'the stale lock did not block for ever');
  t.notOk(existsSync(join(dir, 'keyring.json.lock')), 'and the lock is released after the write');
});
