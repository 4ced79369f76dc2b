import { DELETED_FIELD, FieldvaultError, normalizeRecord, resolutionKey, type ChildRecord, type FieldVersion, type RecordLimits, type ResolvedEntry } from '@fieldvault/protocol';
import type { Role } from '../couch/records.js';
import type { AuthContext } from '../sessions/plugin.js';

/*
 * Who may read and write which record. Decided here only, from the session (user, role) and the
 * record as the server holds it: never from ids, names or roles a client sends.
 *
 * Read: every authenticated user of this server reads every record. A server-authenticated user
 * is a verified user, and verified users share the verified database of their phone (DESIGN.md
 * §3–4), so they pull and search all records of the server. Pull, search and photo download all
 * ask `canRead`, so narrowing it (per team, per region) later changes one function.
 *
 * Write (a push that changes something; a push that changes nothing needs no right):
 * - new record: any authenticated user may push it, whoever its `createdBy` names. A shared phone
 *   relays the records of all its verified users, and records it pulled from another server, to
 *   every server it syncs with (DESIGN.md §3 flows 2 and 4: "records from A reach B through the
 *   phone"). The claim stays attributable: the server stamps `firstPushedBy`, `pushedBy` and
 *   `pushedFrom` (user and IMEI) from the session, never from the record;
 * - existing record: anyone who can read it may edit its fields and photos — the verified
 *   database on a phone is shared, so a field worker edits what they see;
 * - but only supervisors and admins resolve conflicts (new `resolved` entries) and delete or
 *   restore (`_deleted`) records created by someone else (RECORD_FORBIDDEN); a field worker may
 *   delete or restore their own records. This holds for new records too: a field worker cannot
 *   bring in a record of someone else that is already resolved;
 * - relay of a deletion (issue 5): a phone carries records it pulled from another server, with
 *   their deletions. A field worker's push that adds `_deleted` versions to a record created by
 *   someone else is accepted when each added version was made by someone who may delete it —
 *   its creator, or a user this server knows as a supervisor or admin — and not by the pusher
 *   (whose own deletion is judged by their own rights above). A push whose merge changes nothing
 *   needs no right at all. The versions' authors are what the record says (as for every version
 *   of its history and for `createdBy`); the server stamps who relayed it (`pushedBy`,
 *   `pushedFrom`) and counts relayed deletions in the audit log;
 * - relay of a resolution (issue 5), by the same rule: a resolution names its author (`by`, with
 *   `ts` and `device`). A field worker's push that adds resolutions is accepted when each added
 *   one was made by a user this server knows as an enabled supervisor or admin, and not by the
 *   pusher (a field worker's own resolution is refused, as is one naming a field worker or an
 *   unknown user). A bare conflict id (written before resolutions had authors) names nobody, so
 *   only a supervisor or admin may bring it in newly, as before. Counted as `relayedResolutions`;
 * - what a relay carries that this server cannot attribute is not applied here, rather than
 *   refusing the record: deletions and resolutions made by someone else whom this server does not
 *   know as allowed to make them (a supervisor of another server only, a field worker who is not
 *   the creator, an unknown name, a bare conflict id) are left out of the stored record
 *   (`withoutUnattributed`), and the rest of the push (edits, photos) is stored. Refusing would
 *   block every later edit of that record to this server for good, with nothing the field worker
 *   could do; left out, the conflict stays open (or the record live) for this server's own
 *   supervisors, and the same push again changes nothing. Counted as `unappliedRelays`. The
 *   pusher's own deletion or resolution is still refused (RECORD_FORBIDDEN): that is their action;
 * - nobody changes who created a record (`createdBy`, `createdAt`, `device`): a pushed copy whose
 *   creation differs from the stored one in any way is refused (RECORD_CREATOR_MISMATCH), since
 *   merge keeps the oldest creation and a forged older one would take a record over;
 * - the last quarter of a record's history is kept for its creator, supervisors and admins
 *   (`assertHistoryShare`). History only grows and its versions' authors are unsigned, so one
 *   field worker's push could otherwise fill a record of someone else up to `maxHistory` with
 *   junk versions, after which nobody could edit it (security audit, s9 H3). Above three quarters,
 *   a push by anyone else that adds versions is refused (RECORD_HISTORY_RESERVED) and the stored
 *   record is unchanged; the people who can still edit it are the ones who can deal with it.
 */

/** Roles that delete or restore any record and resolve conflicts. */
export const REVIEWERS: readonly Role[] = ['supervisor', 'admin'];

/** True when `auth` may read `record` (pull, search, photo download). */
export function canRead(_auth: AuthContext, _record: ChildRecord): boolean {
  return true;
}

/** True when `auth` may upload photos for `record` (the same rule as editing its fields). */
export function canAttachPhotos(auth: AuthContext, record: ChildRecord): boolean {
  return canRead(auth, record);
}

function versionKey(v: FieldVersion): string {
  return JSON.stringify([v.ts, v.by, v.device, v.value]);
}

/** The entries of `merged.resolved` that `stored` does not have (every one, for a new record). */
export function addedResolutions(stored: ChildRecord | undefined, merged: ChildRecord): ResolvedEntry[] {
  const known = new Set((stored?.resolved ?? []).map(resolutionKey));
  return merged.resolved.filter((e) => !known.has(resolutionKey(e)));
}

/** The `_deleted` versions of `merged` that `stored` does not have (every one, for a new record). */
export function addedDeletions(stored: ChildRecord | undefined, merged: ChildRecord): FieldVersion[] {
  const known = new Set((stored?.history ?? []).filter((v) => v.field === DELETED_FIELD).map(versionKey));
  return merged.history.filter((v) => v.field === DELETED_FIELD && !known.has(versionKey(v)));
}

/**
 * `merged` without the resolutions and `_deleted` versions a field worker's push relays but this
 * server cannot attribute to someone allowed to make them (see the rules above), and how many
 * were left out. The pusher's own ones stay, for {@link assertMayWrite} to refuse. Supervisors'
 * and admins' pushes are taken whole.
 */
export function withoutUnattributed(auth: AuthContext, stored: ChildRecord | undefined, merged: ChildRecord, reviewers: ReadonlySet<string>): { record: ChildRecord; unapplied: number } {
  if (REVIEWERS.includes(auth.role)) return { record: merged, unapplied: 0 };
  const resolutions = addedResolutions(stored, merged).filter((e) => typeof e === 'string' || (e.by !== auth.username && !reviewers.has(e.by)));
  const creator = stored?.createdBy ?? merged.createdBy;
  const deletions =
    creator === auth.username ? [] : addedDeletions(stored, merged).filter((v) => v.by !== auth.username && v.by !== creator && !reviewers.has(v.by));
  if (resolutions.length === 0 && deletions.length === 0) return { record: merged, unapplied: 0 };
  const leftOutResolutions = new Set(resolutions.map(resolutionKey));
  const leftOutVersions = new Set(deletions.map(versionKey));
  const keep = (v: FieldVersion): boolean => v.field !== DELETED_FIELD || !leftOutVersions.has(versionKey(v));
  // `fields` and `conflicts` are derived from the history and `resolved` again by the rebuild.
  const record = normalizeRecord({
    ...merged,
    history: merged.history.filter(keep),
    fields: Object.fromEntries(Object.entries(merged.fields).filter(([, v]) => keep(v))),
    resolved: merged.resolved.filter((e) => !leftOutResolutions.has(resolutionKey(e))),
  });
  return { record, unapplied: resolutions.length + deletions.length };
}

function forbidden(field: string, why: string): FieldvaultError {
  return new FieldvaultError('RECORD_FORBIDDEN', { detail: `${field}: ${why}`, details: { field } });
}

/** The fields that say who created a record, in the order a mismatch names them. */
const CREATION_FIELDS = ['createdBy', 'createdAt', 'device'] as const;

/**
 * Refuses a pushed copy of a stored record whose creation differs in any way. Merge keeps the
 * oldest creation, so an older forged one would take the record over; a newer or merely different
 * one would be dropped by the merge, and the phone would never learn that its copy is wrong
 * (protocol audit s15, M4). Honest copies never differ: the creation is written once, on the
 * phone that made the record, and every copy carries it unchanged.
 * @throws RECORD_CREATOR_MISMATCH naming the first field that differs.
 */
export function assertSameCreation(stored: ChildRecord | undefined, incoming: ChildRecord): void {
  if (stored === undefined) return;
  const field = CREATION_FIELDS.find((f) => incoming[f] !== stored[f]);
  if (field === undefined) return;
  throw new FieldvaultError('RECORD_CREATOR_MISMATCH', { detail: `${field}: the creation of a record never changes`, details: { field } });
}

/** What a push changed that needs a right beyond editing. */
export interface WriteCheck {
  /** The push brought in deletions or restores made by someone else who may make them (a relay). */
  readonly relayedDeletions: number;
  /** The push brought in resolutions made by a supervisor or admin other than the pusher (a relay). */
  readonly relayedResolutions: number;
}

/**
 * Checks that `auth` may turn `stored` (undefined: not on this server yet) into `merged`.
 * `reviewers`: the users among the authors of added `_deleted` versions and resolutions whom this
 * server knows as enabled supervisors or admins (looked up by the caller; merge is pure).
 *
 * @throws RECORD_FORBIDDEN when the record is not readable, or a field worker resolves a
 *   conflict or deletes/restores a record someone else created, other than as a relay.
 */
export function assertMayWrite(auth: AuthContext, stored: ChildRecord | undefined, merged: ChildRecord, reviewers: ReadonlySet<string> = new Set()): WriteCheck {
  const reviewer = REVIEWERS.includes(auth.role);
  if (stored !== undefined && !canRead(auth, stored)) throw forbidden('id', 'not readable');
  if (reviewer) return { relayedDeletions: 0, relayedResolutions: 0 };
  const resolutions = addedResolutions(stored, merged);
  for (const e of resolutions) {
    const relay = typeof e !== 'string' && e.by !== auth.username && reviewers.has(e.by);
    if (!relay) throw forbidden('resolved', 'only supervisors resolve conflicts');
  }
  const relayedResolutions = resolutions.length;
  const creator = stored?.createdBy ?? merged.createdBy;
  if (creator === auth.username) return { relayedDeletions: 0, relayedResolutions };
  const added = addedDeletions(stored, merged);
  for (const v of added) {
    const mayDelete = v.by !== auth.username && (v.by === creator || reviewers.has(v.by));
    if (!mayDelete) throw forbidden(DELETED_FIELD, "only supervisors delete or restore others' records");
  }
  return { relayedDeletions: added.length, relayedResolutions };
}

/** The share of `maxHistory` that pushes by users other than a record's creator and reviewers may fill. */
export const SHARED_HISTORY_SHARE = 0.75;

/**
 * Refuses a push that adds versions to a record whose history would then be in its reserved last
 * quarter, unless the pusher created the record or is a supervisor or admin (see the rules above).
 * A push that adds no versions (a resolution, photos, the same record again) is not judged here.
 *
 * @throws RECORD_HISTORY_RESERVED
 */
export function assertHistoryShare(auth: AuthContext, stored: ChildRecord | undefined, merged: ChildRecord, limits: RecordLimits): void {
  if (REVIEWERS.includes(auth.role)) return;
  if ((stored?.createdBy ?? merged.createdBy) === auth.username) return;
  const shared = Math.floor(limits.maxHistory * SHARED_HISTORY_SHARE);
  const before = stored?.history.length ?? 0;
  if (merged.history.length <= shared || merged.history.length <= before) return;
  throw new FieldvaultError('RECORD_HISTORY_RESERVED', {
    detail: `history: ${merged.history.length} versions would be over the ${shared} that others than its creator and supervisors may fill (limit ${limits.maxHistory})`,
    details: { field: 'history' },
  });
}
