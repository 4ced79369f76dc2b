// A phone step in its own process, so that it can be killed with a real kill -9 (SIGKILL, no
// cleanup): an online login (which may adopt a key and migrate databases) and optionally a sync,
// on an existing phone directory. Reads its arguments as JSON on stdin (they hold a password) and
// prints one line per milestone on stdout. Run by `Phone.runProcess`.
import { join } from 'node:path';
import { createDevice, type MigrationStep } from '@fieldvault/client';
import { kdfBounds } from '@fieldvault/crypto';
import { SqlCipherStorage } from '@fieldvault/storage-sqlcipher';
import { childPhoneTransport, killSelf, readChildPhoneArgs, sayLine as say, type ChildPhoneArgs } from '@fieldvault/test-support';

/** Where the child kills itself. */
export type PhoneProcessKill =
  /** When a migration (during the login's key adoption) reaches this step. */
  | { readonly migration: MigrationStep }
  /** When the sync's push has committed `records` acknowledged records (or more). */
  | { readonly pushed: number }
  /** When the sync's pull has committed `records` records (or more). */
  | { readonly pulled: number };

export interface PhoneProcessArgs extends ChildPhoneArgs {
  readonly sync: boolean;
  /** Records to register (these names) after the login and before the sync; each id is printed as `created <id>`. */
  readonly create?: readonly string[];
  /** The phone's clock offset (the same as its in-process `Device`). */
  readonly clockOffsetMs: number;
  readonly kill?: PhoneProcessKill;
}

const die = (why: string): never => {
  say(`killed ${why}`);
  return killSelf();
};

const args = await readChildPhoneArgs<PhoneProcessArgs>();
const kill = args.kill;
const device = await createDevice({
  directory: args.dir,
  imei: args.imei,
  storage: new SqlCipherStorage({ directory: join(args.dir, 'databases') }),
  kdf: { m: kdfBounds.m.min, t: kdfBounds.t.min, p: 1 },
  now: () => Date.now() + args.clockOffsetMs,
  onMigrationStep: (e) => {
    say(`migration ${e.op} ${e.step}`);
    if (kill !== undefined && 'migration' in kill && kill.migration === e.step) die(`at migration step ${e.step}`);
  },
});
const transport = childPhoneTransport(args);
const session = await device.loginOnline(args.username, args.password, { transport });
say(`logged-in ${session.kind} ${session.keyId}`);
for (const name of args.create ?? []) say(`created ${(await session.createRecord({ name })).id}`);
if (args.sync) {
  const summary = await session.sync({
    transport,
    // Small batches, so that a kill after the first committed one leaves work for the next sync.
    batch: { pushRecords: 2, pullRecords: 2 },
    onProgress: (e) => {
      if (e.recordsDone === 0) return;
      if (e.phase === 'push' && kill !== undefined && 'pushed' in kill && e.recordsDone >= kill.pushed) die(`after pushing ${e.recordsDone}`);
      if (e.phase === 'pull' && kill !== undefined && 'pulled' in kill && e.recordsDone >= kill.pulled) die(`after pulling ${e.recordsDone}`);
    },
  });
  say(`synced pushed=${summary.pushed} pulled=${summary.pulled}`);
}
await session.logout();
say('completed');
