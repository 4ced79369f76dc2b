/**
 * `GET /v1/admin/records/:id` on the wire (admin audit c-report F3): who pushed a record, from
 * which phone and when, and the state it is in, so that "who sent record X" (a bad edit, a
 * data-protection request) has an answer without reading the store. Record ids are not content;
 * field values are, so no value (and no photo bytes or digest) is part of the answer: only names,
 * devices, times and counts. Shared by the server (route schema) and the admin CLI. See
 * docs/protocol.md, "Admin API".
 */
import { Type, type Static } from '@sinclair/typebox';
import { HlcSchema } from '../hlc.js';
import { ImeiSchema, UsernameSchema, UuidSchema } from '../ids.js';
import { IsoTimeSchema } from './common.js';

export const AdminRecordParamsSchema = Type.Object({ id: UuidSchema }, { additionalProperties: false });
export type AdminRecordParams = Static<typeof AdminRecordParamsSchema>;

/** One version of the record's history, without its field or value. */
export const AdminRecordVersionSchema = Type.Object(
  { ts: HlcSchema, by: UsernameSchema, device: ImeiSchema },
  { additionalProperties: false },
);
export type AdminRecordVersion = Static<typeof AdminRecordVersionSchema>;

export const AdminRecordProvenanceSchema = Type.Object(
  {
    id: UuidSchema,
    deleted: Type.Boolean({ description: 'its _deleted field is true' }),
    createdBy: UsernameSchema,
    createdAt: HlcSchema,
    /** IMEI of the device the record was created on (what the record says). */
    createdFrom: ImeiSchema,
    versions: Type.Integer({ minimum: 0, description: 'versions in its history, every field and deletion included' }),
    /** The oldest and newest versions of its history (null only for a record without history). */
    firstVersion: Type.Union([AdminRecordVersionSchema, Type.Null()]),
    lastVersion: Type.Union([AdminRecordVersionSchema, Type.Null()]),
    /** Server-stamped from the pushing session, never from the record. */
    pushedBy: UsernameSchema,
    pushedFrom: ImeiSchema,
    receivedAt: IsoTimeSchema,
    firstPushedBy: UsernameSchema,
    firstReceivedAt: IsoTimeSchema,
    /** Concurrent edits no supervisor has resolved yet (`openConflicts`); `needsReview` is `openConflicts > 0`. */
    needsReview: Type.Boolean(),
    openConflicts: Type.Integer({ minimum: 0 }),
    resolvedConflicts: Type.Integer({ minimum: 0, description: 'entries of its resolved list' }),
    photos: Type.Integer({ minimum: 0, description: 'photo ids on the record, removed ones included' }),
    photosRemoved: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type AdminRecordProvenance = Static<typeof AdminRecordProvenanceSchema>;

export const AdminRecordResponseSchema = Type.Object({ record: AdminRecordProvenanceSchema }, { additionalProperties: false });
export type AdminRecordResponse = Static<typeof AdminRecordResponseSchema>;
