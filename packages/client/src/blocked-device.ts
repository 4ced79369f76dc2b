import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';
import { blockedError, readBlockedMark, removeBlockedMark, writeBlockedMark, type BlockedMark } from './blocked-mark.js';
import type { FileSystem } from './file-system.js';
import type { Logger } from './logger.js';

/*
 * A server's DEVICE_BLACKLISTED, on the phone: the device is marked blocked and wiped, other
 * servers are refused locally while the mark stands, and a login the blocking server accepts
 * lifts it (the mark's file format is in blocked-mark.ts).
 */

/** What handling a blacklisting needs of the device. */
export interface BlacklistContext {
  readonly imei: string;
  readonly fs: FileSystem;
  readonly logger: Logger;
  /** Wall clock in ms (the mark's date). */
  readonly now: () => number;
  /** Wipes the device; the caller holds the device lock. */
  readonly wipe: () => Promise<void>;
}

/**
 * DEVICE_BLACKLISTED from a server: mark the device blocked, wipe everything, then report it.
 * The mark is written before the wipe, so that a process killed (or a storage failing) halfway
 * through the wipe still leaves it; when that first write fails (a full disk), it is tried
 * again once the wipe has freed space. An existing mark is kept (its server and date stand).
 */
export async function wipeBlacklisted(ctx: BlacklistContext, serverId: string, reported: FieldvaultError): Promise<FieldvaultError> {
  ctx.logger.warn({ imei: ctx.imei, serverId }, 'the server reports this device as blacklisted: wiping it');
  const mark = async (): Promise<boolean> => {
    try {
      if ((await readBlockedMark(ctx.fs)) === null) await writeBlockedMark(ctx.fs, { serverId, at: new Date(ctx.now()).toISOString() });
      return true;
    } catch (err) {
      ctx.logger.error({ imei: ctx.imei, code: isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR' }, 'writing the blocked mark failed');
      return false;
    }
  };
  const marked = await mark();
  let wiped = true;
  try {
    await ctx.wipe();
  } catch (err) {
    wiped = false;
    ctx.logger.error({ imei: ctx.imei, code: isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR' }, 'wipe after blacklisting failed');
  }
  if (!marked) await mark();
  return new FieldvaultError('DEVICE_BLACKLISTED', {
    detail: wiped ? 'this device was wiped' : 'wiping this device failed; call wipe() again',
    details: { serverId, wiped },
    cause: reported,
  });
}

/** A server call that wipes the device first when the server reports it blacklisted. */
export async function wipeIfBlacklisted<T>(ctx: BlacklistContext, serverId: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isFieldvaultError(err) && err.code === 'DEVICE_BLACKLISTED') throw await wipeBlacklisted(ctx, serverId, err);
    throw err;
  }
}

/**
 * Refuses (DEVICE_BLACKLISTED, `details.local`) any server but the one that blocked this device,
 * before anything is sent. Returns the mark (or `null`) for the caller to lift on success.
 */
export async function assertNotBlocked(fs: FileSystem, serverId: string): Promise<BlockedMark | null> {
  const mark = await readBlockedMark(fs);
  if (mark !== null && mark.serverId !== serverId) throw blockedError(mark);
  return mark;
}

/** The blocking server accepted a login: it reinstated the device, so the mark goes. */
export async function liftBlockedMark(ctx: BlacklistContext, serverId: string): Promise<void> {
  try {
    await removeBlockedMark(ctx.fs);
    ctx.logger.info({ imei: ctx.imei, serverId }, 'the server that blocked this device accepted a login: block lifted');
  } catch (err) {
    // The session is open and valid; a mark left behind only means the next login to another
    // server is refused until a login to this one succeeds again.
    ctx.logger.error({ imei: ctx.imei, code: isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR' }, 'removing the blocked mark failed');
  }
}
