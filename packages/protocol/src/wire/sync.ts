/**
 * The sync API on the wire: `POST /v1/sync/push`, `GET /v1/sync/pull`, photo upload and download
 * (`/v1/photos/...`), `GET /v1/records/search` and `GET /v1/forms/child`. Shared by the server
 * (route schemas) and the SDK (request building and response validation). See docs/protocol.md.
 */
import { Type, type Static } from '@sinclair/typebox';
import { errorCatalogue } from '../errors.js';
import { Sha256HexSchema, UUID_V4_PATTERN, UsernameSchema, UuidSchema } from '../ids.js';
import { HLC_MAX_WALL } from '../hlc.js';
import { ChildRecordSchema, MAX_PHOTO_BYTES, PHOTO_TYPES, type ChildRecord } from '../record.js';

/** Hard ceiling of records in one push, whatever a server configures (default 500). */
export const PUSH_MAX_RECORDS_CEILING = 10_000;
/** Most records one pull page may ask for. */
export const PULL_MAX_LIMIT = 1_000;
/** Records in a pull page when `limit` is not given. */
export const PULL_DEFAULT_LIMIT = 500;
/** Most records one search page may ask for. */
export const SEARCH_MAX_LIMIT = 100;

/** Device state as the sync routes report it: a retired device gets its last sync, then wipes. */
export const SyncDeviceStatusSchema = Type.Union([Type.Literal('active'), Type.Literal('retired')]);
export type SyncDeviceStatus = Static<typeof SyncDeviceStatusSchema>;

/** An opaque, server-signed position (pull checkpoint or search cursor): base64url segments joined by '.'. */
export const OpaqueTokenSchema = Type.String({ minLength: 1, maxLength: 4096, pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$' });

const ErrorCodeSchema = Type.Union(Object.keys(errorCatalogue).map((c) => Type.Literal(c)));

// ---------------------------------------------------------------------------------------------
// Push

/**
 * `POST /v1/sync/push` body. Each item is validated by the server on its own (`parseRecord`,
 * the form, the caller's rights), so one malformed record fails alone: the body schema only
 * requires a list. Send records as {@link ChildRecord}s ({@link PushRequest}).
 *
 * `unacknowledged` (optional) lists the indexes in `records` of the records this
 * server has never acknowledged to the phone. It is a hint, never trusted: the server writes
 * those as new documents without reading first, and a record it does hold after all (pushed by
 * another phone, or a lost answer) makes that write fail and takes the usual read-merge-write
 * path. A wrong hint costs one more store round trip, never a wrong merge. Servers that predate
 * the field refuse it (`INPUT_INVALID`); the SDK then sends the batch again without it.
 */
export const PushBodySchema = Type.Object(
  {
    records: Type.Array(Type.Unknown(), { maxItems: PUSH_MAX_RECORDS_CEILING }),
    unacknowledged: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: PUSH_MAX_RECORDS_CEILING - 1 }), { maxItems: PUSH_MAX_RECORDS_CEILING })),
  },
  { additionalProperties: false },
);
/** What the SDK sends. */
export interface PushRequest {
  readonly records: readonly ChildRecord[];
  /** Indexes in `records` of the records this server never acknowledged (see {@link PushBodySchema}). */
  readonly unacknowledged?: readonly number[];
}

/**
 * The outcome for one pushed record, in the order sent. `ok`: the server holds the merge of its
 * copy and this one (`changed` says whether that wrote anything new; `conflicts` counts the
 * record's open conflicts). `error`: nothing of this record was stored; `code` says why and
 * `field` names the offending field when there is one: for PHOTO_ID_TAKEN and PHOTO_REF_CHANGED
 * the pushed record's photo at fault, `photos.<photoId>` ({@link photoIdOfField}), so the user can
 * act on that photo alone (never the other record holding the id, which the caller may not read).
 * No property may be added here: SDKs up to session 17 refuse a result with an unknown one.
 */
export const PushResultSchema = Type.Object(
  {
    /** The record id, or null when the item had no valid id. */
    id: Type.Union([UuidSchema, Type.Null()]),
    status: Type.Union([Type.Literal('ok'), Type.Literal('error')]),
    changed: Type.Optional(Type.Boolean()),
    conflicts: Type.Optional(Type.Integer({ minimum: 0 })),
    code: Type.Optional(ErrorCodeSchema),
    field: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type PushResult = Static<typeof PushResultSchema>;

/** The photo id a push result's `field` names (`photos.<photoId>`), if it names one. */
export function photoIdOfField(field: string | undefined): string | undefined {
  if (field === undefined || !field.startsWith('photos.')) return undefined;
  const id = field.slice('photos.'.length);
  return UUID_V4_PATTERN.test(id) ? id : undefined;
}

export const PushResponseSchema = Type.Object(
  {
    results: Type.Array(PushResultSchema, { maxItems: PUSH_MAX_RECORDS_CEILING }),
    deviceStatus: SyncDeviceStatusSchema,
  },
  { additionalProperties: false },
);
export type PushResponse = Static<typeof PushResponseSchema>;

// ---------------------------------------------------------------------------------------------
// Pull

export const PullQuerySchema = Type.Object(
  {
    /** The checkpoint of the previous page; absent to start from the beginning. */
    since: Type.Optional(OpaqueTokenSchema),
    limit: Type.Integer({ minimum: 1, maximum: PULL_MAX_LIMIT, default: PULL_DEFAULT_LIMIT }),
  },
  { additionalProperties: false },
);
export type PullQuery = Static<typeof PullQuerySchema>;

/**
 * A page of records changed after `since`, each at its current state. Deleted records are
 * records too (their `_deleted` field is true), so the phone merges them like any other.
 * Store `checkpoint` (per server) only after the page is committed locally; ask again with it
 * while `more` is true.
 */
export const PullResponseSchema = Type.Object(
  {
    records: Type.Array(ChildRecordSchema, { maxItems: PULL_MAX_LIMIT }),
    checkpoint: OpaqueTokenSchema,
    more: Type.Boolean(),
    deviceStatus: SyncDeviceStatusSchema,
    /**
     * The server's wall clock (ms) when it answered. A phone whose clock runs behind takes in the
     * page's timestamps relative to it (issue 5: HLC receive with a reference) instead of failing.
     */
    serverTime: Type.Integer({ minimum: 0, maximum: HLC_MAX_WALL }),
    /**
     * About how many changes of the feed come after this page, when the store says (CouchDB's
     * `pending`): for a progress bar only. An upper bound of the records still to come — it counts
     * changes this user may not read and, on the embedded store, every update rather than every
     * document — so it can shrink by more than a page brings. Absent when the store does not say.
     */
    remaining: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  },
  { additionalProperties: false },
);
export type PullResponse = Static<typeof PullResponseSchema>;

/**
 * {@link PullResponseSchema} with the records left unchecked, for a receiver that checks each
 * record itself with `parseRecord` (the SDK): every pulled record is then checked once, not twice.
 */
export const PullPageSchema = Type.Object(
  { ...PullResponseSchema.properties, records: Type.Array(Type.Unknown(), { maxItems: PULL_MAX_LIMIT }) },
  { additionalProperties: false },
);

// ---------------------------------------------------------------------------------------------
// Photos

/** Content types a photo upload may declare; the server checks the bytes (magic numbers) anyway. */
export const PHOTO_UPLOAD_CONTENT_TYPES = ['application/octet-stream', ...PHOTO_TYPES] as const;

export const PhotoParamsSchema = Type.Object({ photoId: UuidSchema }, { additionalProperties: false });
export type PhotoParams = Static<typeof PhotoParamsSchema>;

/** `PUT /v1/photos/:photoId?record=…&offset=…` and `GET /v1/photos/:photoId/upload?record=…`. */
export const PhotoUploadQuerySchema = Type.Object(
  {
    /** The record whose `photos` map references the photo. */
    record: UuidSchema,
    /** Where the body's bytes start in the photo (the `received` of the upload status). */
    offset: Type.Integer({ minimum: 0, maximum: MAX_PHOTO_BYTES, default: 0 }),
  },
  { additionalProperties: false },
);
export type PhotoUploadQuery = Static<typeof PhotoUploadQuerySchema>;

export const PhotoStatusQuerySchema = Type.Object({ record: UuidSchema }, { additionalProperties: false });

/** Where an upload stands: `received` bytes are on the server; `complete` once verified and stored. */
export const PhotoUploadStatusSchema = Type.Object(
  {
    photoId: UuidSchema,
    recordId: UuidSchema,
    size: Type.Integer({ minimum: 1, maximum: MAX_PHOTO_BYTES }),
    sha256: Sha256HexSchema,
    received: Type.Integer({ minimum: 0 }),
    complete: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type PhotoUploadStatus = Static<typeof PhotoUploadStatusSchema>;

// ---------------------------------------------------------------------------------------------
// Search

const SearchTextSchema = Type.String({ minLength: 1, maxLength: 200 });

/**
 * `GET /v1/records/search`. Every criterion is optional and they combine with AND. `name` and
 * `location` match words by prefix, case-insensitively ("ami yus" finds "Amina Yusuf"); ages are
 * inclusive; a flag `true` matches records with the flag set, `false` those without it.
 */
export const RecordSearchQuerySchema = Type.Object(
  {
    name: Type.Optional(SearchTextSchema),
    location: Type.Optional(SearchTextSchema),
    sex: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    ageMin: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000 })),
    ageMax: Type.Optional(Type.Number({ minimum: 0, maximum: 1_000 })),
    flagged: Type.Optional(Type.Boolean()),
    reunited: Type.Optional(Type.Boolean()),
    investigated: Type.Optional(Type.Boolean()),
    duplicate: Type.Optional(Type.Boolean()),
    verified: Type.Optional(Type.Boolean()),
    createdBy: Type.Optional(UsernameSchema),
    /** Only records with a concurrent edit no supervisor has resolved yet. */
    needsReview: Type.Optional(Type.Boolean()),
    /** Include deleted records (default: not). */
    includeDeleted: Type.Boolean({ default: false }),
    limit: Type.Integer({ minimum: 1, maximum: SEARCH_MAX_LIMIT, default: 20 }),
    cursor: Type.Optional(OpaqueTokenSchema),
  },
  { additionalProperties: false },
);
export type RecordSearchQuery = Static<typeof RecordSearchQuerySchema>;

/**
 * A page of matches. `nextCursor` is null on the last page; a page may hold fewer than `limit`
 * records (even none) while `nextCursor` is set, when the server capped the work of one request.
 */
export const RecordSearchResponseSchema = Type.Object(
  {
    records: Type.Array(ChildRecordSchema, { maxItems: SEARCH_MAX_LIMIT }),
    nextCursor: Type.Union([OpaqueTokenSchema, Type.Null()]),
  },
  { additionalProperties: false },
);
export type RecordSearchResponse = Static<typeof RecordSearchResponseSchema>;

/** {@link RecordSearchResponseSchema} with the records left to `parseRecord` (see {@link PullPageSchema}). */
export const RecordSearchPageSchema = Type.Object(
  { ...RecordSearchResponseSchema.properties, records: Type.Array(Type.Unknown(), { maxItems: SEARCH_MAX_LIMIT }) },
  { additionalProperties: false },
);
