import {
  DELETED_FIELD,
  FieldvaultError,
  UUID_V4_PATTERN,
  assertMatchesForm,
  checkRecordLimits,
  isFieldvaultError,
  mergeRecords,
  needsReview,
  openConflicts,
  parseRecord,
  visibleFields,
  type ChildRecord,
  type FormDefinition,
  type PushResult,
  type RecordLimits,
} from '@fieldvault/protocol';
import type { CouchRepository } from '../couch/couch-repository.js';
import type { RecordEnvelope, RecordWriteOutcome } from '../couch/records.js';
import { assertHistoryShare, assertMayWrite, assertSameCreation, withoutUnattributed } from '../records/access.js';
import type { AuthContext } from '../sessions/plugin.js';

/**
 * Keys a client may never send on a record: server metadata (kept in the envelope around the
 * record) and anything CouchDB would read as its own (`_id`, `_rev`, `_attachments`, …). The
 * record schema refuses them too; this names the reason.
 */
const SERVER_FIELDS = new Set(['pushedBy', 'receivedAt', 'seq', 'pushedFrom', 'firstPushedBy', 'firstReceivedAt']);

/** The item's id when it is a well-formed record id (never echo anything else a client sent). */
export function pushItemId(raw: unknown): string | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const id = (raw as { id?: unknown }).id;
  return typeof id === 'string' && UUID_V4_PATTERN.test(id) ? id : null;
}

/**
 * Validates one pushed item on its own.
 * @throws RECORD_FIELD_FORBIDDEN for server-only or CouchDB fields.
 * @throws RECORD_INVALID / RECORD_TOO_LARGE from `parseRecord` (ids must be UUID v4, so no
 *   `_design/…` or `_local/…` id gets through).
 */
export function parsePushItem(raw: unknown, limits: RecordLimits): ChildRecord {
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    for (const key of Object.keys(raw)) {
      if (SERVER_FIELDS.has(key) || key.startsWith('_')) {
        throw new FieldvaultError('RECORD_FIELD_FORBIDDEN', { detail: `${key}: set by the server only`, details: { field: key } });
      }
    }
  }
  return parseRecord(raw, limits);
}

/** Canonical JSON (sorted keys) so equality does not depend on the key order CouchDB returns. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .filter((k) => obj[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function sameRecord(a: ChildRecord, b: ChildRecord): boolean {
  return canonical(a) === canonical(b);
}

/** Every HLC timestamp the record carries (a resolution's `ts` orders nothing, so it is not among them). */
function* timestamps(record: ChildRecord): Iterable<string> {
  yield record.createdAt;
  for (const v of record.history) yield v.ts;
  for (const p of Object.values(record.photos)) {
    yield p.addedAt;
    if (p.removedAt !== undefined) yield p.removedAt;
  }
}

/**
 * A phone whose clock runs far ahead would win every later edit (newest wins): its versions are
 * refused, as for key records (DESIGN.md §2), until its clock is corrected.
 */
function assertNotAhead(record: ChildRecord, limitMs: number): void {
  for (const ts of timestamps(record)) {
    const wall = Number(ts.slice(0, 13));
    if (wall > limitMs) {
      throw new FieldvaultError('HLC_TOO_FAR_AHEAD', { detail: 'a version of this record is dated in the future', details: { aheadMs: wall - (limitMs) } });
    }
  }
}

export interface PushContext {
  readonly auth: AuthContext;
  readonly form: FormDefinition;
  readonly limits: RecordLimits;
  /** Server wall clock (ms). */
  readonly now: number;
  /** How far ahead of `now` a pushed timestamp may be. */
  readonly maxSkewMs: number;
  /** Authors of deletions and resolutions in the batch whom this server knows as supervisors or admins (see records/access.ts). */
  readonly reviewers: ReadonlySet<string>;
  /** Filled with the ids of records whose push relayed someone else's deletion (for the audit log). */
  readonly relayedDeletions: Set<string>;
  /** Filled with the ids of records whose push relayed a supervisor's resolution (for the audit log). */
  readonly relayedResolutions: Set<string>;
  /** Filled with the ids of records whose push relayed deletions or resolutions not applied here (records/access.ts). */
  readonly unappliedRelays: Set<string>;
  /** The owning record of each photo id the batch references ({@link claimPhotoIds}). */
  readonly photoOwners: ReadonlyMap<string, string>;
}

/**
 * The ids of the photos `record` carries that are not removed: the only refs photo-id ownership
 * looks at (security audit H2). A removed ref is inert: it can not be uploaded (`locateRef` in
 * photos/plugin.ts answers PHOTO_NOT_FOUND) and nothing is served for it, so letting one through
 * gives a squatter nothing. It is never refused either: otherwise a record whose photo id was
 * squatted on one server (a worker pushed a record of their own naming it there first) would be
 * refused there for good, even after its user removed the photo and added the image again under a
 * new id (the PHOTO_ID_TAKEN hint). And it never binds an id, so a removed ref never blocks a live
 * one. An id a record already owns stays its own once removed: owners are never released.
 */
export function livePhotoIds(record: ChildRecord): string[] {
  return Object.entries(record.photos).filter(([, ref]) => ref.removedAt === undefined).map(([id]) => id);
}

/** Every live photo id `records` reference ({@link livePhotoIds}): what one push asks the store about (records without photos add nothing). */
export function photoIdsOf(records: Iterable<ChildRecord>): string[] {
  const ids = new Set<string>();
  for (const r of records) for (const id of livePhotoIds(r)) ids.add(id);
  return [...ids];
}

/**
 * The owner of each photo id for one push (security audit H2): the stored owner
 * (`CouchRepository.photoOwners`), else the first record of the batch with a live ref to it
 * ({@link livePhotoIds}), so two new records of one batch cannot both take one new id.
 */
export function claimPhotoIds(stored: ReadonlyMap<string, string>, records: Iterable<ChildRecord>): Map<string, string> {
  const owners = new Map(stored);
  for (const r of records) for (const id of livePhotoIds(r)) if (!owners.has(id)) owners.set(id, r.id);
  return owners;
}

/**
 * The owners of the photo ids `records` reference, binding the unbound ones to the first record
 * of the batch naming them before any record is written (so of two concurrent pushes claiming one
 * id, the store's unique document id picks one). One read and at most one write per batch;
 * nothing for a batch without photos. An id bound to a record that then fails (say, invalid)
 * stays bound to it: only that record can carry it.
 */
export async function resolvePhotoOwners(
  repo: Pick<CouchRepository, 'photoOwners' | 'bindPhotoOwners'>,
  records: readonly ChildRecord[],
  now: number,
): Promise<Map<string, string>> {
  const ids = photoIdsOf(records);
  if (ids.length === 0) return new Map();
  const stored = await repo.photoOwners(ids);
  const owners = claimPhotoIds(stored, records);
  const claims = new Map([...owners].filter(([id]) => !stored.has(id)));
  for (const [id, owner] of await repo.bindPhotoOwners(claims, now)) owners.set(id, owner);
  return owners;
}

/**
 * A photo id belongs to the first record that referenced it live (security audit H2: otherwise
 * anyone who pulled a record before its photo was uploaded could claim the id from a record of
 * their own, upload other bytes first, and block the real upload for good). Only ids new to this
 * record are checked: the same record pushed again, relayed by another phone or merged keeps its
 * own ids. Removed refs are not checked ({@link livePhotoIds} says why).
 * @throws PHOTO_ID_TAKEN
 */
function assertOwnsNewPhotos(ctx: PushContext, current: ChildRecord | undefined, merged: ChildRecord): void {
  for (const photoId of livePhotoIds(merged)) {
    if (current !== undefined && Object.hasOwn(current.photos, photoId)) continue;
    const owner = ctx.photoOwners.get(photoId);
    if (owner !== undefined && owner !== merged.id) {
      throw new FieldvaultError('PHOTO_ID_TAKEN', { detail: `photo ${photoId} belongs to another record`, details: { field: photoField(photoId) } });
    }
  }
}

/** The parts of a photo ref fixed when it is added (all but the removal): what {@link assertPhotoRefsKept} compares. */
const PHOTO_BASE = ['sha256', 'size', 'type', 'addedAt', 'by'] as const;

/**
 * A photo's added part never changes once the stored record holds it: photo ids are random per
 * addition, so no phone makes two refs of one id, and only the removal fields may change. Merge
 * keeps the smaller added part (`mergePhoto`), so a pushed ref with another digest or an earlier
 * `addedAt` would otherwise replace the stored one: the photo's bytes would no longer match it
 * (nobody could download it), or a photo someone else uploads would show under the original
 * author's name. Checked against what was pushed, before the no-change shortcut, so a ref that
 * loses the merge is refused too rather than reported as stored.
 * @throws PHOTO_REF_CHANGED
 */
function assertPhotoRefsKept(current: ChildRecord | undefined, incoming: ChildRecord): void {
  if (current === undefined) return;
  for (const [photoId, ref] of Object.entries(incoming.photos)) {
    const held = Object.hasOwn(current.photos, photoId) ? current.photos[photoId] : undefined;
    if (held === undefined) continue;
    const changed = PHOTO_BASE.filter((k) => held[k] !== ref[k]);
    if (changed.length > 0) {
      throw new FieldvaultError('PHOTO_REF_CHANGED', { detail: `photo ${photoId}: ${changed.join(', ')}`, details: { field: photoField(photoId) } });
    }
  }
}

/**
 * The authors of `_deleted` versions and of resolutions in `records` other than `pusher`: the
 * names whose role the server must look up to judge a relayed deletion or resolution
 * (records/access.ts). Bare (authorless) conflict ids name nobody.
 */
export function relayAuthors(records: Iterable<ChildRecord>, pusher: string): Set<string> {
  const names = new Set<string>();
  for (const r of records) {
    for (const v of r.history) if (v.field === DELETED_FIELD && v.by !== pusher) names.add(v.by);
    for (const e of r.resolved) if (typeof e !== 'string' && e.by !== pusher) names.add(e.by);
  }
  return names;
}

/**
 * The new envelope for one pushed record merged into what the server holds, or undefined when
 * the merge changes nothing (idempotence: no new CouchDB revision). Pure: it runs again when a
 * concurrent push of the same record wins the `_rev` race.
 *
 * @throws RECORD_CREATOR_MISMATCH, RECORD_FORBIDDEN (rights), HLC_TOO_FAR_AHEAD,
 *   RECORD_HISTORY_RESERVED (records/access.ts), RECORD_TOO_LARGE (merged record over the
 *   limits), RECORD_INVALID (form), PHOTO_ID_TAKEN (a new photo id another record owns),
 *   PHOTO_REF_CHANGED (a stored photo's added part changed).
 */
export function mergePushed(ctx: PushContext, current: RecordEnvelope | undefined, incoming: ChildRecord): RecordEnvelope | undefined {
  assertSameCreation(current?.record, incoming);
  assertPhotoRefsKept(current?.record, incoming);
  const joined = current === undefined ? incoming : mergeRecords(current.record, incoming);
  const { record: merged, unapplied } = withoutUnattributed(ctx.auth, current?.record, joined, ctx.reviewers);
  if (unapplied > 0) ctx.unappliedRelays.add(merged.id);
  else ctx.unappliedRelays.delete(merged.id);
  if (current !== undefined && sameRecord(merged, current.record)) return undefined;
  const check = assertMayWrite(ctx.auth, current?.record, merged, ctx.reviewers);
  if (check.relayedDeletions > 0) ctx.relayedDeletions.add(merged.id);
  else ctx.relayedDeletions.delete(merged.id);
  if (check.relayedResolutions > 0) ctx.relayedResolutions.add(merged.id);
  else ctx.relayedResolutions.delete(merged.id);
  assertNotAhead(incoming, ctx.now + ctx.maxSkewMs);
  assertOwnsNewPhotos(ctx, current?.record, merged);
  assertHistoryShare(ctx.auth, current?.record, merged, ctx.limits);
  checkRecordLimits(merged, ctx.limits);
  assertMatchesForm(visibleFields(merged), ctx.form);
  return {
    record: merged,
    pushedBy: ctx.auth.username,
    pushedFrom: ctx.auth.imei,
    receivedAt: ctx.now,
    firstPushedBy: current?.firstPushedBy ?? ctx.auth.username,
    firstReceivedAt: current?.firstReceivedAt ?? ctx.now,
  };
}

/**
 * The `field` of a refusal about one photo of the pushed record (PHOTO_ID_TAKEN,
 * PHOTO_REF_CHANGED): `photos.<photoId>`, the path of the offending ref, so the user can act on that
 * photo alone. Only ever an id from the pushed record's own refs, never the other record holding
 * it (one the caller may not be allowed to read). In `field`, not a property of its own: SDKs up to
 * session 17 check push results strictly (no unknown properties), and a new property would make
 * them refuse the whole answer, so one squatted photo would stop every sync of such a phone.
 */
export function photoField(photoId: string): string {
  return `photos.${photoId}`;
}

/** The wire result of an error for one item (used by sync pushes and signup pushes alike). */
export function errorResult(id: string | null, err: unknown): PushResult {
  const e = isFieldvaultError(err) ? err : new FieldvaultError('INTERNAL_ERROR');
  const field = e.details?.['field'];
  return { id, status: 'error', code: e.code, ...(typeof field === 'string' ? { field: field.slice(0, 200) } : {}) };
}

/** The wire result of a stored record. */
export function outcomeResult(id: string, outcome: RecordWriteOutcome | undefined): PushResult {
  if (outcome === undefined) return errorResult(id, new FieldvaultError('INTERNAL_ERROR'));
  if (outcome.status === 'error') return errorResult(id, outcome.error);
  const record = outcome.envelope?.record;
  return { id, status: 'ok', changed: outcome.status === 'written', conflicts: record === undefined ? 0 : openConflicts(record).length };
}

/** True when a stored record has a concurrent edit waiting for review. */
export function isFlagged(outcome: RecordWriteOutcome | undefined): boolean {
  return outcome !== undefined && outcome.status !== 'error' && outcome.envelope !== undefined && needsReview(outcome.envelope.record);
}
