import { dbFileName, keyId, unwrapSuccessor, wrapSuccessor } from '@fieldvault/crypto';
import type { FileSystem } from './file-system.js';
import { withPending, withoutEntries, withoutPending, type KeyringContent, type KeyringFile, type PendingMigration } from './keyring.js';
import type { Logger } from './logger.js';
import { countRecords, migrateData, type MigrationListener, type MigrationResult } from './migration.js';
import { openDatabase } from './open-database.js';
import type { StorageAdapter, StorageHandle } from './storage-adapter.js';

/*
 * The keyring side of a migration (DESIGN.md §3; the data steps are in migration.ts): the
 * migration is journaled in the keyring before it runs, run to the end, and its journal entry
 * cleared; a journal entry a crash left is resumed by the next login that holds its target key.
 */

/** What running a journaled migration needs of the device. */
export interface MigrationContext {
  readonly storage: StorageAdapter;
  readonly fs: FileSystem;
  readonly keyring: KeyringFile;
  readonly logger: Logger;
  /** Wall clock in ms (the journal's `startedAt`). */
  readonly now: () => number;
  readonly onMigrationStep: MigrationListener | undefined;
}

/** Tells the device's migration listener that a journal step is done. */
export async function reportStep(
  ctx: MigrationContext,
  op: 'merge' | 'move',
  step: 'journal-written' | 'journal-cleared',
  p: { fromKeyId: string; toKeyId: string },
): Promise<void> {
  await ctx.onMigrationStep?.({ op, step, fromKeyId: p.fromKeyId, toKeyId: p.toKeyId });
}

/**
 * Runs one journaled migration to the end and clears its journal entry. `target`, when given,
 * is an open handle on the target database (an open session's).
 */
export async function runMigration(
  ctx: MigrationContext,
  k: KeyringContent,
  op: PendingMigration,
  fromKey: Uint8Array,
  toKey: Uint8Array,
  target?: StorageHandle,
): Promise<{ keyring: KeyringContent; result: MigrationResult }> {
  const storage = ctx.storage;
  const fromName = dbFileName(fromKey);
  let result: MigrationResult = { records: 0, photos: 0 };
  const started = Date.now();
  if (await storage.exists(fromName)) {
    const handle = target ?? (await openDatabase(storage, toKey, true));
    try {
      result = await migrateData({ storage, fs: ctx.fs, logger: ctx.logger, onStep: ctx.onMigrationStep }, handle, {
        op: op.op,
        fromKeyId: op.fromKeyId,
        toKeyId: op.toKeyId,
        fromKey,
        toKey,
        fromName,
        ...(op.username === undefined ? {} : { username: op.username }),
      });
    } finally {
      if (target === undefined) await handle.close();
    }
  }
  let next = withoutPending(k, op);
  if (op.op === 'move' && op.username !== undefined) {
    const mover = op.username;
    next = withoutEntries(next, (e) => e.username === mover && e.kind === 'unverified' && e.keyId === op.fromKeyId);
    // The emptied unverified database goes once no other entry can open it.
    if (!next.entries.some((e) => e.keyId === op.fromKeyId) && (await storage.exists(fromName))) {
      const source = await openDatabase(storage, fromKey, false);
      const left = await countRecords(source).finally(() => source.close());
      if (left === 0) {
        await storage.remove(fromName);
        await ctx.onMigrationStep?.({ op: op.op, step: 'source-deleted', fromKeyId: op.fromKeyId, toKeyId: op.toKeyId });
      }
    }
  }
  next = await ctx.keyring.save(next);
  await reportStep(ctx, op.op, 'journal-cleared', op);
  ctx.logger.info(
    { op: op.op, fromKeyId: op.fromKeyId, toKeyId: op.toKeyId, records: result.records, photos: result.photos, ms: Date.now() - started },
    'migration finished',
  );
  return { keyring: next, result };
}

/** Finishes every journaled migration whose target key is in `keys` (resume after a crash). */
export async function resumePending(ctx: MigrationContext, k: KeyringContent, keys: ReadonlyMap<string, Uint8Array>): Promise<KeyringContent> {
  let current = k;
  for (const op of k.pending) {
    const toKey = keys.get(op.toKeyId);
    if (toKey === undefined) continue;
    const fromKey = unwrapSuccessor(toKey, op.sourceKey);
    try {
      current = (await runMigration(ctx, current, op, fromKey, toKey)).keyring;
    } finally {
      fromKey.fill(0);
    }
  }
  return current;
}

/** The open database an unverified user's records move into: a session's. */
export interface MoveTarget {
  readonly username: string;
  readonly keyId: string;
  readonly key: Uint8Array;
  readonly db: StorageHandle;
}

/**
 * Flow 1's move of the unverified database under `fromKey` into the session's database: the
 * journal goes into the keyring (`k`) first, so a crash at any step is resumed by the next login.
 */
export async function journaledMove(ctx: MigrationContext, k: KeyringContent, into: MoveTarget, fromKey: Uint8Array): Promise<MigrationResult> {
  const op: PendingMigration = {
    op: 'move',
    username: into.username,
    fromKeyId: keyId(fromKey),
    toKeyId: into.keyId,
    sourceKey: wrapSuccessor(into.key, fromKey),
    startedAt: new Date(ctx.now()).toISOString(),
  };
  const saved = await ctx.keyring.save(withPending(k, op));
  await reportStep(ctx, 'move', 'journal-written', op);
  return (await runMigration(ctx, saved, op, fromKey, into.key, into.db)).result;
}
