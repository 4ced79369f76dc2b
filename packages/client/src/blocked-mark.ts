import { FieldvaultError, NODE_ID_PATTERN } from '@fieldvault/protocol';
import type { FileSystem } from './file-system.js';

/**
 * The mark a device leaves after a server answered DEVICE_BLACKLISTED and the SDK wiped it: which
 * server blocked it, and when. Not secret and not a security boundary (whoever controls the
 * phone's files can delete it; the blacklist on each server is the boundary): it keeps the SDK
 * from logging in to the *other* servers the phone syncs with, which have never heard of the
 * blacklisting and would hand every record back (audit s11 H2).
 */
export interface BlockedMark {
  /** The server that blacklisted the device. */
  readonly serverId: string;
  /** When the device was wiped for it (ISO 8601). */
  readonly at: string;
}

export const BLOCKED_MARK_FILE = 'blocked.json';

/**
 * The mark, or `null` when there is none. A file that does not parse (edited by hand) still
 * blocks: it can only have been written after a blacklisting, and failing open would hand the
 * data back; the server id is then unknown, so only removing the file (or reinstalling) lifts it.
 */
export async function readBlockedMark(fs: FileSystem): Promise<BlockedMark | null> {
  const bytes = await fs.readFile(BLOCKED_MARK_FILE);
  if (bytes === undefined) return null;
  try {
    const o = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown> | null;
    const serverId = o?.['serverId'];
    const at = o?.['at'];
    if (typeof serverId === 'string' && NODE_ID_PATTERN.test(serverId) && typeof at === 'string') return { serverId, at };
  } catch {
    // Falls through to the unknown-server mark below.
  }
  return { serverId: 'unknown', at: 'unknown' };
}

/** Writes the mark atomically (mode 0600, like the other device files). */
export async function writeBlockedMark(fs: FileSystem, mark: BlockedMark): Promise<void> {
  await fs.writeFileAtomic(BLOCKED_MARK_FILE, new TextEncoder().encode(`${JSON.stringify(mark)}\n`), { mode: 0o600 });
}

export async function removeBlockedMark(fs: FileSystem): Promise<void> {
  await fs.remove(BLOCKED_MARK_FILE);
}

/** The local refusal of a blocked device: DEVICE_BLACKLISTED before anything is sent. */
export function blockedError(mark: BlockedMark): FieldvaultError {
  return new FieldvaultError('DEVICE_BLACKLISTED', {
    detail: `this phone was blocked by server ${mark.serverId} on ${mark.at}: ask an admin to reinstate it there, then log in online to ${mark.serverId}`,
    details: { serverId: mark.serverId, wiped: true, local: true },
  });
}
