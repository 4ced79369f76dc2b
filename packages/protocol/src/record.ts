import { Type, type Static } from '@sinclair/typebox';
import { FieldvaultError } from './errors.js';
import { HLC_PATTERN, HlcSchema, isHlc } from './hlc.js';
import { IMEI_PATTERN, ImeiSchema, Sha256HexSchema, USERNAME_PATTERN, UUID_V4_PATTERN, UsernameSchema, UuidSchema } from './ids.js';
import { buildRecord, conflictId, normalizeRecord, resolvedConflictId } from './merge.js';
import { checkSchema } from './validate.js';

/** A form field name: lowercase snake case, 1–64 characters, starting with a letter. */
export const FIELD_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;
/** The LWW field that marks a record deleted (`true`) or restored (`false`); it merges like any field. */
export const DELETED_FIELD = '_deleted';
/** A key of `fields`: a form field name or {@link DELETED_FIELD}. */
export const RECORD_FIELD_PATTERN = /^(?:[a-z][a-z0-9_]{0,63}|_deleted)$/;
/** A conflict id (`conflictId`, and `conflict` of a resolution): `field:winnerTs:loserTs`. */
export const CONFLICT_ID_PATTERN = new RegExp(
  `^(?:[a-z][a-z0-9_]{0,63}|_deleted):${HLC_PATTERN.source.slice(1, -1)}:${HLC_PATTERN.source.slice(1, -1)}$`,
);

/** Longest string value, and longest total of a string list's items (characters). */
export const MAX_VALUE_LENGTH = 10_000;
/** Most items in a string-list value. */
export const MAX_LIST_ITEMS = 200;
/** Most entries in `fields` (including `_deleted`). */
export const MAX_FIELDS = 200;
/** Most photos (including removed ones) on one record. */
export const MAX_PHOTOS = 100;
/** Largest photo the protocol can describe (bytes); servers configure a lower upload cap. */
export const MAX_PHOTO_BYTES = 2 ** 31 - 1;
/** Hard ceiling of history / conflicts / resolved entries any configuration may allow. */
export const MAX_HISTORY_CEILING = 20_000;

export interface RecordLimits {
  /** Most versions in a record's history (≤ {@link MAX_HISTORY_CEILING}). */
  readonly maxHistory: number;
}
/**
 * Default limits. History is never trimmed: a record at the limit refuses further edits
 * (RECORD_TOO_LARGE) instead of silently forgetting old values.
 */
export const DEFAULT_RECORD_LIMITS: RecordLimits = Object.freeze({ maxHistory: 2_000 });

export const PHOTO_TYPES = ['image/jpeg', 'image/png', 'image/webp'] as const;
export type PhotoType = (typeof PHOTO_TYPES)[number];

export const FieldValueSchema = Type.Union([
  Type.String({ maxLength: MAX_VALUE_LENGTH }),
  Type.Number(),
  Type.Boolean(),
  Type.Null(),
  Type.Array(Type.String({ maxLength: MAX_VALUE_LENGTH }), { maxItems: MAX_LIST_ITEMS }),
]);
export type FieldValue = Static<typeof FieldValueSchema>;

/** One write of one field. `base` is the `ts` of the version the editor saw (absent for a first write). */
export const FieldVersionSchema = Type.Object(
  {
    field: Type.String({ pattern: RECORD_FIELD_PATTERN.source }),
    value: FieldValueSchema,
    ts: HlcSchema,
    by: UsernameSchema,
    device: ImeiSchema,
    base: Type.Optional(HlcSchema),
  },
  { additionalProperties: false },
);
export type FieldVersion = Static<typeof FieldVersionSchema>;

/** A photo attached to a record. Removal is a tombstone (`removedAt`, `removedBy`): the ref is never dropped. */
export const PhotoRefSchema = Type.Object(
  {
    sha256: Sha256HexSchema,
    size: Type.Integer({ minimum: 1, maximum: MAX_PHOTO_BYTES }),
    type: Type.Union(PHOTO_TYPES.map((t) => Type.Literal(t))),
    addedAt: HlcSchema,
    by: UsernameSchema,
    removedAt: Type.Optional(HlcSchema),
    removedBy: Type.Optional(UsernameSchema),
  },
  { additionalProperties: false },
);
export type PhotoRef = Static<typeof PhotoRefSchema>;

/**
 * A concurrent edit of `field`: version `loser` was written without seeing the winning branch and
 * lost to `winner` (the current version, or the version the conflict was resolved against). Its
 * value stays in `history`. Derived by merge, never trusted from input.
 */
export const ConflictSchema = Type.Object(
  { field: Type.String({ pattern: RECORD_FIELD_PATTERN.source }), winner: HlcSchema, loser: HlcSchema },
  { additionalProperties: false },
);
export type Conflict = Static<typeof ConflictSchema>;

/**
 * A supervisor's resolution of conflict `conflict` (a conflict id), with who made it, when and on
 * which device — as a field version carries `by`/`ts`/`device`. The author is what lets a server
 * accept a field worker's phone relaying a supervisor's resolution made elsewhere (issue 5, see
 * server records/access.ts). Like a version's author it is what the record says, not signed.
 */
export const ResolutionSchema = Type.Object(
  {
    conflict: Type.String({ pattern: CONFLICT_ID_PATTERN.source }),
    ts: HlcSchema,
    by: UsernameSchema,
    device: ImeiSchema,
  },
  { additionalProperties: false },
);
export type Resolution = Static<typeof ResolutionSchema>;

/**
 * An entry of `resolved`: a {@link Resolution}, or a bare conflict id as records written before
 * resolutions had authors hold them. A bare id still resolves its conflict everywhere, but names
 * nobody: a server accepts it newly only from a supervisor or admin (as before).
 */
export const ResolvedEntrySchema = Type.Union([Type.String({ pattern: CONFLICT_ID_PATTERN.source }), ResolutionSchema]);
export type ResolvedEntry = Static<typeof ResolvedEntrySchema>;

/**
 * A child record as stored and synced. Server-set data (`pushedBy`, `receivedAt`, `seq`) is not
 * part of it and is rejected if a client sends it.
 */
export const ChildRecordSchema = Type.Object(
  {
    id: UuidSchema,
    type: Type.Literal('child'),
    createdBy: UsernameSchema,
    createdAt: HlcSchema,
    device: ImeiSchema,
    fields: Type.Record(Type.String({ pattern: RECORD_FIELD_PATTERN.source }), FieldVersionSchema, {
      additionalProperties: false,
      maxProperties: MAX_FIELDS,
    }),
    history: Type.Array(FieldVersionSchema, { maxItems: MAX_HISTORY_CEILING }),
    photos: Type.Record(Type.String({ pattern: UUID_V4_PATTERN.source }), PhotoRefSchema, {
      additionalProperties: false,
      maxProperties: MAX_PHOTOS,
    }),
    conflicts: Type.Array(ConflictSchema, { maxItems: MAX_HISTORY_CEILING }),
    resolved: Type.Array(ResolvedEntrySchema, { maxItems: MAX_HISTORY_CEILING }),
  },
  { additionalProperties: false },
);
export type ChildRecord = Static<typeof ChildRecordSchema>;

function invalid(field: string, why: string): FieldvaultError {
  return new FieldvaultError('RECORD_INVALID', { detail: `${field}: ${why}`, details: { field } });
}

function tooLarge(field: string, why: string): FieldvaultError {
  return new FieldvaultError('RECORD_TOO_LARGE', { detail: `${field}: ${why}`, details: { field } });
}

/** True when a value is of a field-value shape but over a size limit. */
function isOversizedValue(value: unknown): boolean {
  if (typeof value === 'string') return value.length > MAX_VALUE_LENGTH;
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) {
    return value.length > MAX_LIST_ITEMS || value.some((s: string) => s.length > MAX_VALUE_LENGTH);
  }
  return false;
}

/** Rules the schema cannot state: list totals and the type of `_deleted`. */
function checkValue(field: string, value: FieldValue, where: string): void {
  if (Array.isArray(value) && value.reduce((n, s) => n + s.length, 0) > MAX_VALUE_LENGTH) {
    throw tooLarge(where, `the items together exceed ${MAX_VALUE_LENGTH} characters`);
  }
  if (field === DELETED_FIELD && typeof value !== 'boolean') throw invalid(where, '_deleted must be true or false');
}

function checkVersion(v: FieldVersion, where: string): void {
  checkValue(v.field, v.value, `${where}.value`);
  if (v.base !== undefined && !(v.base < v.ts)) throw invalid(`${where}.base`, 'must be older than ts');
}

function resolveLimits(limits: Partial<RecordLimits> | undefined): RecordLimits {
  const maxHistory = limits?.maxHistory ?? DEFAULT_RECORD_LIMITS.maxHistory;
  if (!Number.isInteger(maxHistory) || maxHistory < 1 || maxHistory > MAX_HISTORY_CEILING) {
    throw new FieldvaultError('INPUT_INVALID', {
      detail: `maxHistory: must be an integer in 1 … ${MAX_HISTORY_CEILING}`,
      details: { field: 'maxHistory' },
    });
  }
  return { maxHistory };
}

/**
 * Checks the size limits a stored record must meet. Call it on a merge result before storing:
 * merging two records within the limits can exceed them.
 *
 * @throws RECORD_TOO_LARGE when the history or the number of fields or photos is over the limit.
 * @throws INPUT_INVALID when `limits` is out of range.
 */
export function checkRecordLimits(record: ChildRecord, limits?: Partial<RecordLimits>): void {
  const { maxHistory } = resolveLimits(limits);
  if (record.history.length > maxHistory) throw tooLarge('history', `more than ${maxHistory} versions`);
  if (Object.keys(record.fields).length > MAX_FIELDS) throw tooLarge('fields', `more than ${MAX_FIELDS} fields`);
  if (Object.keys(record.photos).length > MAX_PHOTOS) throw tooLarge('photos', `more than ${MAX_PHOTOS} photos`);
  // Resolutions grow with every supervisor who resolves (each keeps its author), so they get the
  // history's bound rather than only the schema's ceiling.
  if (record.resolved.length > maxHistory) throw tooLarge('resolved', `more than ${maxHistory} resolutions`);
}

/**
 * Validates an untrusted record (HTTP body, server response, a row read back) and returns its
 * canonical form: history deduplicated and sorted, `fields` and `conflicts` recomputed from the
 * history (stored `conflicts` are derived data, never trusted).
 *
 * @throws RECORD_INVALID naming the first offending field in `detail` (and `details.field`).
 * @throws RECORD_TOO_LARGE when a value, the history, the fields or the photos exceed a limit.
 */
export function parseRecord(value: unknown, limits?: Partial<RecordLimits>): ChildRecord {
  const resolvedLimits = resolveLimits(limits);
  const r = checkSchema(ChildRecordSchema, value, 'RECORD_INVALID', {
    tooLarge: { code: 'RECORD_TOO_LARGE', isOversized: isOversizedValue },
  });
  for (const [name, v] of Object.entries(r.fields)) {
    if (v.field !== name) throw invalid(`fields.${name}.field`, 'must equal its key');
    checkVersion(v, `fields.${name}`);
  }
  r.history.forEach((v, i) => checkVersion(v, `history.${i}`));
  for (const [id, p] of Object.entries(r.photos)) {
    if ((p.removedAt === undefined) !== (p.removedBy === undefined)) {
      throw invalid(`photos.${id}.removedBy`, 'removedAt and removedBy go together');
    }
  }
  const record = normalizeRecord(r);
  checkRecordLimits(record, resolvedLimits);
  return record;
}

function checkVersionInput(v: FieldVersion, where: string): void {
  checkSchema(FieldVersionSchema, v, 'RECORD_INVALID', {
    tooLarge: { code: 'RECORD_TOO_LARGE', isOversized: isOversizedValue },
  });
  checkVersion(v, where);
}

export interface NewRecord {
  /** Client-generated lowercase UUID v4. */
  readonly id: string;
  readonly createdBy: string;
  /** IMEI of the device the record is created on. */
  readonly device: string;
  /** A fresh timestamp from the device clock; becomes `createdAt` and the `ts` of every initial field. */
  readonly clockTs: string;
  readonly fields: Readonly<Record<string, FieldValue>>;
}

/**
 * A new record with its initial field values (first writes, no `base`).
 *
 * @throws RECORD_INVALID when the id, user, device, timestamp, a field name or a value is malformed.
 * @throws RECORD_TOO_LARGE when a value or the number of fields exceeds a limit.
 */
export function createRecord(input: NewRecord): ChildRecord {
  if (typeof input.id !== 'string' || !UUID_V4_PATTERN.test(input.id)) throw invalid('id', 'must be a lowercase UUID v4');
  if (typeof input.createdBy !== 'string' || !USERNAME_PATTERN.test(input.createdBy)) throw invalid('createdBy', 'not a valid username');
  if (typeof input.device !== 'string' || !IMEI_PATTERN.test(input.device)) throw invalid('device', 'must be a 15-digit IMEI');
  if (!isHlc(input.clockTs)) throw invalid('clockTs', 'not a valid HLC timestamp');
  const names = Object.keys(input.fields);
  if (names.length > MAX_FIELDS) throw tooLarge('fields', `more than ${MAX_FIELDS} fields`);
  const versions: FieldVersion[] = names.map((field) => {
    const v: FieldVersion = {
      field,
      value: input.fields[field] as FieldValue,
      ts: input.clockTs,
      by: input.createdBy,
      device: input.device,
    };
    checkVersionInput(v, `fields.${field}`);
    return v;
  });
  return buildRecord({
    id: input.id,
    createdBy: input.createdBy,
    createdAt: input.clockTs,
    device: input.device,
    versions,
    photos: [],
    resolved: [],
  });
}

export interface Edit {
  readonly field: string;
  readonly value: FieldValue;
  readonly by: string;
  /** IMEI of the device the edit is made on. */
  readonly device: string;
  /** A fresh timestamp from the device clock, newer than the current version of the field. */
  readonly ts: string;
}

function sameValue(a: FieldValue, b: FieldValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((s, i) => s === b[i]);
  }
  return a === b;
}

/**
 * The record with one field set. The new version's `base` is the `ts` of the version it replaces,
 * which is how merge tells a later edit from a concurrent one. Setting a field to its current
 * value returns the record unchanged. Use `field: '_deleted'` with `true`/`false` to delete or restore.
 *
 * @throws RECORD_INVALID when the field name, value, user, device or timestamp is malformed.
 * @throws RECORD_TOO_LARGE when the value is too long or the record is at its field or history limit.
 * @throws RECORD_EDIT_STALE when `ts` is not newer than the field's current version.
 */
export function applyEdit(record: ChildRecord, edit: Edit, limits?: Partial<RecordLimits>): ChildRecord {
  const { maxHistory } = resolveLimits(limits);
  const current = Object.hasOwn(record.fields, edit.field) ? record.fields[edit.field] : undefined;
  const v: FieldVersion = { field: edit.field, value: edit.value, ts: edit.ts, by: edit.by, device: edit.device };
  if (current !== undefined) v.base = current.ts;
  if (current !== undefined && isHlc(edit.ts) && !(current.ts < edit.ts)) {
    throw new FieldvaultError('RECORD_EDIT_STALE', { detail: `field ${edit.field}`, details: { field: edit.field } });
  }
  checkVersionInput(v, edit.field);
  if (current !== undefined && sameValue(current.value, edit.value)) return record;
  if (current === undefined && Object.keys(record.fields).length >= MAX_FIELDS) {
    throw tooLarge('fields', `more than ${MAX_FIELDS} fields`);
  }
  if (record.history.length >= maxHistory) throw tooLarge('history', `more than ${maxHistory} versions`);
  return buildRecord({
    id: record.id,
    createdBy: record.createdBy,
    createdAt: record.createdAt,
    device: record.device,
    versions: [...record.history, ...Object.values(record.fields), v],
    photos: Object.entries(record.photos),
    resolved: record.resolved,
  });
}

export interface NewPhoto {
  readonly sha256: string;
  readonly size: number;
  readonly type: PhotoType;
  readonly by: string;
  /** A fresh timestamp from the device clock; becomes `addedAt`. */
  readonly ts: string;
}

function withPhoto(record: ChildRecord, photoId: string, ref: PhotoRef): ChildRecord {
  return buildRecord({
    id: record.id,
    createdBy: record.createdBy,
    createdAt: record.createdAt,
    device: record.device,
    versions: record.history,
    photos: [...Object.entries(record.photos).filter(([id]) => id !== photoId), [photoId, ref]],
    resolved: record.resolved,
  });
}

/**
 * The record with a photo attached under `photoId` (a client-generated lowercase UUID v4).
 * Adding the same photo again is a no-op.
 *
 * @throws RECORD_INVALID when the id or the photo data is malformed, or `photoId` is taken by another photo.
 * @throws RECORD_TOO_LARGE when the record already has the maximum number of photos.
 */
export function addPhoto(record: ChildRecord, photoId: string, photo: NewPhoto): ChildRecord {
  if (typeof photoId !== 'string' || !UUID_V4_PATTERN.test(photoId)) throw invalid('photoId', 'must be a lowercase UUID v4');
  const ref: PhotoRef = { sha256: photo.sha256, size: photo.size, type: photo.type, addedAt: photo.ts, by: photo.by };
  checkSchema(PhotoRefSchema, ref, 'RECORD_INVALID');
  const existing = Object.hasOwn(record.photos, photoId) ? record.photos[photoId] : undefined;
  if (existing !== undefined) {
    const same = existing.sha256 === ref.sha256 && existing.size === ref.size && existing.type === ref.type;
    if (same) return record;
    throw invalid('photoId', 'already used by another photo');
  }
  if (Object.keys(record.photos).length >= MAX_PHOTOS) throw tooLarge('photos', `more than ${MAX_PHOTOS} photos`);
  return withPhoto(record, photoId, ref);
}

/**
 * The record with a photo marked removed (a tombstone: the ref stays, so merge never brings the
 * photo back and nothing is lost). Removing a removed photo is a no-op.
 *
 * @throws RECORD_INVALID when the record has no photo `photoId`, or `by`/`ts` are malformed.
 */
export function removePhoto(record: ChildRecord, photoId: string, removal: { readonly by: string; readonly ts: string }): ChildRecord {
  const existing = Object.hasOwn(record.photos, photoId) ? record.photos[photoId] : undefined;
  if (existing === undefined) throw invalid('photoId', 'no such photo on this record');
  if (typeof removal.by !== 'string' || !USERNAME_PATTERN.test(removal.by)) throw invalid('by', 'not a valid username');
  if (!isHlc(removal.ts)) throw invalid('ts', 'not a valid HLC timestamp');
  if (existing.removedAt !== undefined) return record;
  return withPhoto(record, photoId, { ...existing, removedAt: removal.ts, removedBy: removal.by });
}

/** The conflicts a supervisor has not resolved yet. */
export function openConflicts(record: ChildRecord): Conflict[] {
  const done = new Set(record.resolved.map(resolvedConflictId));
  return record.conflicts.filter((c) => !done.has(conflictId(c)));
}

/** True when the record has a concurrent edit no supervisor has resolved. */
export function needsReview(record: ChildRecord): boolean {
  return openConflicts(record).length > 0;
}

/** Who resolves a conflict: the logged-in user, the device, and a fresh timestamp from its clock. */
export interface ResolutionStamp {
  readonly by: string;
  /** IMEI of the device the resolution is made on. */
  readonly device: string;
  /** A fresh timestamp from the device clock. */
  readonly ts: string;
}

/**
 * The record with conflict `id` marked resolved by `stamp.by` (a {@link Resolution} in
 * `resolved`; grow-only: merge never un-resolves it). To keep the losing value instead,
 * `applyEdit` it first, then resolve. Resolving a conflict that is already resolved (by anyone)
 * is a no-op.
 *
 * @throws RECORD_CONFLICT_NOT_FOUND when the record has no conflict with that id.
 * @throws RECORD_INVALID when `stamp` has a malformed user, device or timestamp.
 * @throws RECORD_TOO_LARGE when the record already holds as many resolutions as `maxHistory` allows.
 */
export function resolveConflict(record: ChildRecord, id: string, stamp: ResolutionStamp, limits?: Partial<RecordLimits>): ChildRecord {
  const { maxHistory } = resolveLimits(limits);
  if (typeof stamp.by !== 'string' || !USERNAME_PATTERN.test(stamp.by)) throw invalid('by', 'not a valid username');
  if (typeof stamp.device !== 'string' || !IMEI_PATTERN.test(stamp.device)) throw invalid('device', 'must be a 15-digit IMEI');
  if (!isHlc(stamp.ts)) throw invalid('ts', 'not a valid HLC timestamp');
  if (!record.conflicts.some((c) => conflictId(c) === id)) throw new FieldvaultError('RECORD_CONFLICT_NOT_FOUND');
  if (record.resolved.some((e) => resolvedConflictId(e) === id)) return record;
  if (record.resolved.length >= maxHistory) throw tooLarge('resolved', `more than ${maxHistory} resolutions`);
  const resolution: Resolution = { conflict: id, ts: stamp.ts, by: stamp.by, device: stamp.device };
  return normalizeRecord({ ...record, resolved: [...record.resolved, resolution] });
}

/** True when the record's `_deleted` field is currently `true`. */
export function isDeleted(record: ChildRecord): boolean {
  return Object.hasOwn(record.fields, DELETED_FIELD) && record.fields[DELETED_FIELD]?.value === true;
}

/** The current value of every field (without `_deleted`), as a plain map for display and search. */
export function visibleFields(record: ChildRecord): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const [name, v] of Object.entries(record.fields)) {
    if (name === DELETED_FIELD) continue;
    out[name] = Array.isArray(v.value) ? [...v.value] : v.value;
  }
  return out;
}

/** The newest timestamp anywhere in the record (fields, photo additions and removals). */
export function recordUpdatedAt(record: ChildRecord): string {
  let newest = record.createdAt;
  for (const v of Object.values(record.fields)) if (v.ts > newest) newest = v.ts;
  for (const p of Object.values(record.photos)) {
    if (p.addedAt > newest) newest = p.addedAt;
    if (p.removedAt !== undefined && p.removedAt > newest) newest = p.removedAt;
  }
  return newest;
}
