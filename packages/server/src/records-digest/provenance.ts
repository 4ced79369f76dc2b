import { isDeleted, openConflicts, type AdminRecordProvenance, type AdminRecordVersion, type FieldVersion } from '@fieldvault/protocol';
import type { RecordEnvelope } from '../couch/records.js';
import { iso } from '../http/schemas.js';

/*
 * Who pushed a record, from which phone and when (admin audit c-report F3;
 * `GET /v1/admin/records/:id`). Built field by field from the stored envelope, never by copying
 * the record: record ids, usernames, IMEIs, times and counts are what an admin may read, field
 * values are not (they are the children's data), so nothing here may carry a value, a field name
 * or a photo digest.
 */

function versionOf(v: FieldVersion | undefined): AdminRecordVersion | null {
  return v === undefined ? null : { ts: v.ts, by: v.by, device: v.device };
}

export function provenanceView(envelope: RecordEnvelope): AdminRecordProvenance {
  const { record } = envelope;
  const photos = Object.values(record.photos);
  const open = openConflicts(record).length;
  return {
    id: record.id,
    deleted: isDeleted(record),
    createdBy: record.createdBy,
    createdAt: record.createdAt,
    createdFrom: record.device,
    versions: record.history.length,
    // The history is kept in merge order, oldest timestamp first (protocol merge.ts).
    firstVersion: versionOf(record.history[0]),
    lastVersion: versionOf(record.history[record.history.length - 1]),
    pushedBy: envelope.pushedBy,
    pushedFrom: envelope.pushedFrom,
    receivedAt: iso(envelope.receivedAt),
    firstPushedBy: envelope.firstPushedBy,
    firstReceivedAt: iso(envelope.firstReceivedAt),
    needsReview: open > 0,
    openConflicts: open,
    resolvedConflicts: record.resolved.length,
    photos: photos.length,
    photosRemoved: photos.filter((p) => p.removedAt !== undefined).length,
  };
}
