// Races around a retired device's final sync (session 18, task I: paths the write-gate tests in
// sync.test.ts left untested). A real server process and real SDK devices on SQLCipher files; the
// race is set up only through what an app itself hands the SDK (its logger, its transport), never
// a hook inside the SDK.
import { join } from 'node:path';
import t from 'tap';
import type { Logger, Transport } from '@fieldvault/client';
import type { ServerProcess } from '@fieldvault/test-support';
import { SqlCipherStorage } from '../src/index.js';
import { NO_RATE_LIMITS, PASSWORD_B, filesUnder, jpegWithGps, newDevice, rejection, startServers } from './helpers.js';

const [R] = (await startServers(t, 'retirement-races', ['server-r'], [['bilal', PASSWORD_B]], NO_RATE_LIMITS)) as [ServerProcess];

/** A logger that resolves `retiredSyncEnded` when a sync reports the device retired: the sync's last step before its retirement check. */
function syncEndWatcher(): { logger: Logger; retiredSyncEnded: Promise<void>; release: () => void } {
  let release: () => void = () => undefined;
  const retiredSyncEnded = new Promise<void>((resolve) => (release = resolve));
  const quiet = (): void => undefined;
  const logger: Logger = {
    debug: quiet,
    info: (context, message) => {
      if (message === 'sync finished' && context['deviceStatus'] === 'retired') release();
    },
    warn: quiet,
    error: quiet,
  };
  return { logger, retiredSyncEnded, release };
}

t.test('a retired device: a login that replaces the session as its final sync ends is not wiped by that sync; the next sync of the new session checks and wipes', async (t) => {
  const watcher = syncEndWatcher();
  const p = await newDevice(t, { imei: '356938035644101', logger: watcher.logger });
  const old = await p.device.loginOnline('bilal', PASSWORD_B, { transport: R.transport() });
  const first = await old.createRecord({ name: 'Pushed by the final sync' });
  t.equal((await R.admin('POST', `/v1/devices/${p.device.imei}/retire`, { reason: 'replaced' })).status, 200);

  // The same user logs in again (as an app does after a token expired): the login takes the
  // device lock now and waits at its first request until the sync has ended, so it replaces the
  // session after the sync's last step and before the retirement check gets the lock. (The check
  // asks for the lock with no I/O after 'sync finished'; the login needs two more HTTP round trips.)
  const real = R.transport();
  const held: Transport = {
    ...real,
    challenge: async (body) => {
      await watcher.retiredSyncEnded;
      return real.challenge(body);
    },
  };
  const login = p.device.loginOnline('bilal', PASSWORD_B, { transport: held });
  // Released whatever happens, so a failing sync cannot leave the login waiting forever.
  const summary = await old.sync({ transport: R.transport() }).finally(watcher.release);
  const session = await login;

  t.match(summary, { deviceStatus: 'retired', wiped: false, pushed: 1, failed: [] }, 'the final sync pushed, and wiped nothing');
  t.equal(summary.retirementHold, undefined, 'no check ran: the session it was for was replaced before it could take the lock');
  t.notOk(old.active, 'the old session was closed by the login');
  t.equal((await rejection(old.createRecord({ name: 'late' }))).code, 'VAULT_LOCKED', 'logged out, not wiped');
  t.ok(session.active, 'the new session is open');
  t.equal((await session.getRecord(first.id)).id, first.id, 'and sees the device\'s data');
  const later = await session.createRecord({ name: 'Saved in the new session' });
  t.same(await session.pendingCounts('server-r'), { records: 1, photos: 0 }, 'its save is pending for the server');

  // The next sync makes the check for the session that is open: its save reaches the server first.
  const final = await session.sync({ transport: R.transport() });
  t.match(final, { deviceStatus: 'retired', wiped: true, pushed: 1, failed: [] });
  t.notOk(session.active);
  t.same(filesUnder(p.dir), [], 'wiped by the check of the session it belonged to');
  const onServer = await R.records();
  t.ok(onServer.some((r) => r.id === first.id) && onServer.some((r) => r.id === later.id), 'both records reached the server before the wipe');
});

t.test('a photo save whose input is still being read when the retirement wipe runs fails with VAULT_WIPED, not VAULT_LOCKED, and leaves no file', async (t) => {
  const dir = t.testdir();
  // The real adapter, observed: the retirement check's last step lists the databases (as in
  // sync.test.ts, `observedPhone`); the save starts there, before the wipe.
  let onList: (() => void) | undefined;
  const real = new SqlCipherStorage({ directory: join(dir, 'databases') });
  const storage = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'list') {
        return async () => {
          const names = await target.list();
          const hook = onList;
          onList = undefined;
          hook?.();
          return names;
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  const p = await newDevice(t, { imei: '356938035644102', storage }, dir);
  const session = await p.device.loginOnline('bilal', PASSWORD_B, { transport: R.transport() });
  const first = await session.createRecord({ name: 'Pushed by the final sync' });
  t.equal((await R.admin('POST', `/v1/devices/${p.device.imei}/retire`, { reason: 'replaced' })).status, 200);

  // An app streaming a photo from the camera: its last bytes come after the sync has ended.
  let syncEnded: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (syncEnded = resolve));
  const bytes = jpegWithGps('streamed', 3000);
  async function* camera(): AsyncGenerator<Uint8Array> {
    yield bytes.subarray(0, 100);
    await ended;
    yield bytes.subarray(100);
  }
  let save: Promise<unknown> | undefined;
  onList = () => {
    save = session.addPhoto(first.id, camera());
    save.catch(() => undefined);
  };
  const summary = await session.sync({ transport: R.transport() }).finally(syncEnded);
  t.match(summary, { deviceStatus: 'retired', wiped: true, pushed: 1 }, 'the check found nothing left and wiped');
  t.ok(save !== undefined, 'the save started during the check');
  t.equal((await rejection(save as Promise<unknown>)).code, 'VAULT_WIPED', 'the app is told the device was wiped, not to log in again');
  t.same(filesUnder(dir), [], 'no photo file left, nothing else either');
});
