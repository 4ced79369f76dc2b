import { DELETED_FIELD, FieldvaultError, type ChildRecord } from '@fieldvault/protocol';
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
 *   bring in a record of someone else that is already deleted or resolved;
 * - nobody changes who created a record (`createdBy`, `createdAt`, `device`): merge keeps the
 *   oldest creation, so a forged older one would take a record over (RECORD_CREATOR_MISMATCH).
 */

const REVIEWERS: readonly Role[] = ['supervisor', 'admin'];

/** True when `auth` may read `record` (pull, search, photo download). */
export function canRead(_auth: AuthContext, _record: ChildRecord): boolean {
  return true;
}

/** True when `auth` may upload photos for `record` (the same rule as editing its fields). */
export function canAttachPhotos(auth: AuthContext, record: ChildRecord): boolean {
  return canRead(auth, record);
}

function deletions(record: ChildRecord | undefined): number {
  return record === undefined ? 0 : record.history.reduce((n, v) => (v.field === DELETED_FIELD ? n + 1 : n), 0);
}

function forbidden(field: string, why: string): FieldvaultError {
  return new FieldvaultError('RECORD_FORBIDDEN', { detail: `${field}: ${why}`, details: { field } });
}

/**
 * Checks that `auth` may turn `stored` (undefined: not on this server yet) into `merged`.
 *
 * @throws RECORD_CREATOR_MISMATCH when the creation fields of an existing record would change.
 * @throws RECORD_FORBIDDEN when the record is not readable, or a field worker resolves a
 *   conflict or deletes/restores a record someone else created.
 */
export function assertMayWrite(auth: AuthContext, stored: ChildRecord | undefined, merged: ChildRecord): void {
  const reviewer = REVIEWERS.includes(auth.role);
  if (stored !== undefined) {
    if (!canRead(auth, stored)) throw forbidden('id', 'not readable');
    if (merged.createdBy !== stored.createdBy || merged.createdAt !== stored.createdAt || merged.device !== stored.device) {
      throw new FieldvaultError('RECORD_CREATOR_MISMATCH', { detail: 'createdAt: the creation of a record never changes', details: { field: 'createdAt' } });
    }
  }
  if (reviewer) return;
  if (merged.resolved.length > (stored?.resolved.length ?? 0)) throw forbidden('resolved', 'only supervisors resolve conflicts');
  const creator = stored?.createdBy ?? merged.createdBy;
  if (creator !== auth.username && deletions(merged) > deletions(stored)) {
    throw forbidden(DELETED_FIELD, "only supervisors delete or restore others' records");
  }
}
