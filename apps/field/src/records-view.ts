import type { Session } from '@fieldvault/client';
import {
  FieldvaultError,
  UUID_V4_PATTERN,
  isDeleted,
  needsReview,
  openConflicts,
  visibleFields,
  type ChildRecord,
  type FieldValue,
  type FieldVersion,
  recordUpdatedAt,
  resolvedConflictId,
} from '@fieldvault/protocol';
import { fieldError } from './errors.js';
import { labelOf, orderedFieldNames } from './fields.js';
import { bytes, isoOf, keyValues, showValue, table, timeOf } from './output.js';

/** Records as the CLI shows them: short ids, summaries, history with old → new, conflict markers. */

/** The first 8 characters of an id: enough to tell records apart on one phone; commands accept them. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}

function activePhotos(r: ChildRecord): [string, ChildRecord['photos'][string]][] {
  return Object.entries(r.photos).filter(([, p]) => p.removedAt === undefined);
}

export interface RecordSummary {
  readonly id: string;
  readonly fields: Record<string, FieldValue>;
  readonly photos: number;
  readonly needsReview: boolean;
  readonly deleted: boolean;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export function summaryOf(r: ChildRecord): RecordSummary {
  return {
    id: r.id,
    fields: visibleFields(r),
    photos: activePhotos(r).length,
    needsReview: needsReview(r),
    deleted: isDeleted(r),
    createdBy: r.createdBy,
    createdAt: isoOf(r.createdAt),
    updatedAt: isoOf(recordUpdatedAt(r)),
  };
}

/** The list/search table. */
export function recordTable(records: readonly ChildRecord[]): string {
  if (records.length === 0) return 'No records.';
  const rows = records.map(summaryOf);
  return table(rows, [
    { header: 'ID', value: (r) => shortId(r.id) },
    { header: 'NAME', value: (r) => showValue(r.fields['name']), max: 30 },
    { header: 'AGE', value: (r) => showValue(r.fields['age']) },
    { header: 'SEX', value: (r) => showValue(r.fields['sex']) },
    { header: 'LOCATION', value: (r) => showValue(r.fields['location']), max: 24 },
    { header: 'PHOTOS', value: (r) => String(r.photos) },
    { header: 'BY', value: (r) => r.createdBy },
    { header: 'UPDATED', value: (r) => timeOf(r.updatedAt) },
    { header: 'REVIEW', value: (r) => `${r.needsReview ? '! conflict' : ''}${r.deleted ? ' deleted' : ''}`.trim() },
  ]);
}

export interface HistoryEntry {
  readonly at: string;
  readonly by: string;
  readonly device: string;
  /** A field name, or "photo". */
  readonly field: string;
  readonly from: FieldValue | undefined;
  readonly to: FieldValue | undefined;
  /** For photo entries: what happened. */
  readonly photo?: { readonly id: string; readonly action: 'added' | 'removed' };
  /** True when this version lost a concurrent edit (its value stays here, the record needs review). */
  readonly lostConflict: boolean;
}

/** Every version of every field, once (`history` holds the current versions too). */
function versionsOf(r: ChildRecord): Map<string, FieldVersion> {
  return new Map([...r.history, ...Object.values(r.fields)].map((v) => [`${v.field}|${v.ts}`, v]));
}

/** Every change of the record in time order: field versions (old → new) and photo additions and removals. */
export function historyOf(r: ChildRecord): HistoryEntry[] {
  const byKey = versionsOf(r);
  const versions = [...byKey.values()];
  const losers = new Set(r.conflicts.map((c) => `${c.field}|${c.loser}`));
  const entries: (HistoryEntry & { ts: string })[] = versions.map((v) => ({
    ts: v.ts,
    at: isoOf(v.ts),
    by: v.by,
    device: v.device,
    field: v.field,
    from: v.base === undefined ? undefined : byKey.get(`${v.field}|${v.base}`)?.value,
    to: v.value,
    lostConflict: losers.has(`${v.field}|${v.ts}`),
  }));
  for (const [id, p] of Object.entries(r.photos)) {
    const photo = (action: 'added' | 'removed', ts: string, by: string): HistoryEntry & { ts: string } => ({
      ts,
      at: isoOf(ts),
      by,
      device: '',
      field: 'photo',
      from: undefined,
      to: undefined,
      photo: { id, action },
      lostConflict: false,
    });
    entries.push(photo('added', p.addedAt, p.by));
    if (p.removedAt !== undefined) entries.push(photo('removed', p.removedAt, p.removedBy ?? p.by));
  }
  return entries.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.field < b.field ? -1 : 1)).map(({ ts: _ts, ...e }) => e);
}

export interface ConflictView {
  readonly field: string;
  readonly kept: { readonly value: FieldValue | undefined; readonly by: string | undefined; readonly at: string };
  readonly lost: { readonly value: FieldValue | undefined; readonly by: string | undefined; readonly at: string };
}

/** The open (unreviewed) concurrent edits of a record, with both values. */
export function conflictsOf(r: ChildRecord): ConflictView[] {
  const versions = versionsOf(r);
  return openConflicts(r).map((c) => {
    const w = versions.get(`${c.field}|${c.winner}`);
    const l = versions.get(`${c.field}|${c.loser}`);
    return {
      field: c.field,
      kept: { value: w?.value, by: w?.by, at: isoOf(c.winner) },
      lost: { value: l?.value, by: l?.by, at: isoOf(c.loser) },
    };
  });
}

export interface ResolutionView {
  readonly field: string;
  /** When and by whom (on which device): unknown (null) for a resolution written before they were recorded. */
  readonly at: string | null;
  readonly by: string | null;
  readonly device: string | null;
  readonly kept: FieldValue | undefined;
  readonly lost: FieldValue | undefined;
}

/**
 * The conflicts of a record a supervisor marked reviewed: who did it and when, and the values the
 * concurrent edit was between (field audit F3: part of the case's audit trail, and on the phone).
 */
export function resolutionsOf(r: ChildRecord): ResolutionView[] {
  const versions = versionsOf(r);
  return r.resolved.map((entry) => {
    const id = resolvedConflictId(entry);
    // A conflict id is field:winner:loser; neither a field name nor an HLC timestamp holds a colon.
    const [field = '', winner = '', loser = ''] = id.split(':');
    const by = typeof entry === 'string' ? null : entry;
    return {
      field,
      at: by === null ? null : isoOf(by.ts),
      by: by?.by ?? null,
      device: by?.device ?? null,
      kept: versions.get(`${field}|${winner}`)?.value,
      lost: versions.get(`${field}|${loser}`)?.value,
    };
  });
}

/** `show ID` for humans. */
export function recordDetails(r: ChildRecord): string {
  const fields = visibleFields(r);
  const pairs: [string, string][] = [['id', r.id]];
  for (const name of orderedFieldNames(Object.keys(fields))) pairs.push([labelOf(name), showValue(fields[name])]);
  const photos = activePhotos(r);
  pairs.push(['photos', photos.length === 0 ? '—' : photos.map(([id, p]) => `${shortId(id)} ${p.type} ${bytes(p.size)}`).join('; ')]);
  pairs.push(['created', `${timeOf(r.createdAt)} by ${r.createdBy} on device ${r.device}`]);
  if (isDeleted(r)) pairs.push(['deleted', 'yes (the deletion syncs like any edit)']);
  const conflicts = conflictsOf(r);
  const resolutions = resolutionsOf(r);
  const reviewed = resolutions.length === 0 ? '' : `; ${resolutions.length} reviewed by ${[...new Set(resolutions.map((x) => x.by ?? '?'))].join(', ')} (see history)`;
  pairs.push(['review', `${conflicts.length === 0 ? 'no open conflicts' : `! NEEDS REVIEW: ${conflicts.length} concurrent edit(s)`}${reviewed}`]);
  const lines = [keyValues(pairs)];
  if (conflicts.length > 0) {
    lines.push('', 'Conflicts (concurrent edits; the newest value was kept, the other stays in history):');
    for (const c of conflicts) {
      lines.push(
        `  ${labelOf(c.field)}: kept ${JSON.stringify(c.kept.value ?? null)} (${c.kept.by ?? '?'}, ${timeOf(c.kept.at)}); ` +
          `lost ${JSON.stringify(c.lost.value ?? null)} (${c.lost.by ?? '?'}, ${timeOf(c.lost.at)})`,
      );
    }
  }
  // Reviews join the history in time order; one recorded without a time (older records) comes last.
  const rows: (HistoryEntry | (ResolutionView & { review: true }))[] = [...historyOf(r), ...resolutions.map((x) => ({ ...x, review: true as const }))];
  const sortKey = (h: (typeof rows)[number]): string => h.at ?? '\uffff';
  const history = rows.map((h, i) => ({ h, i })).sort((a, b) => (sortKey(a.h) < sortKey(b.h) ? -1 : sortKey(a.h) > sortKey(b.h) ? 1 : a.i - b.i)).map(({ h }) => h);
  lines.push('', 'History:');
  lines.push(
    table(history, [
      { header: 'WHEN', value: (h) => (h.at === null ? '—' : timeOf(h.at)) },
      { header: 'WHO', value: (h) => h.by ?? '?' },
      { header: 'FIELD', value: (h) => (h.field === 'photo' ? 'photo' : labelOf(h.field)) },
      {
        header: 'CHANGE',
        value: (h) =>
          'review' in h
            ? `conflict reviewed: kept ${showValue(h.kept)} (not ${showValue(h.lost)})`
            : h.photo !== undefined
              ? `${h.photo.action} ${shortId(h.photo.id)}`
              : `${h.from === undefined ? '' : `${showValue(h.from)} → `}${showValue(h.to)}${h.lostConflict ? '  (lost a concurrent edit)' : ''}`,
        max: 70,
      },
    ]),
  );
  return lines.join('\n');
}

/**
 * The record an id names: a full id, or the first characters of one (at least 4, as `list` shows
 * 8). @throws VAULT_RECORD_NOT_FOUND, FIELD_USAGE when a prefix matches several records.
 */
export async function findRecord(session: Session, idOrPrefix: string, options: { includeDeleted?: boolean } = {}): Promise<ChildRecord> {
  const id = idOrPrefix.toLowerCase();
  if (UUID_V4_PATTERN.test(id)) return session.getRecord(id, options);
  if (!/^[0-9a-f-]{4,35}$/.test(id)) throw new FieldvaultError('FIELD_USAGE', { detail: `"${idOrPrefix}" is not a record id: give it as "list" shows it (8 characters), or at least its first 4` });
  const matches: ChildRecord[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await session.listRecords({ limit: 1000, offset, includeDeleted: options.includeDeleted ?? false });
    matches.push(...page.filter((r) => r.id.startsWith(id)));
    if (page.length < 1000) break;
  }
  if (matches.length === 0) throw new FieldvaultError('VAULT_RECORD_NOT_FOUND', { detail: idOrPrefix });
  if (matches.length > 1) throw new FieldvaultError('FIELD_USAGE', { detail: `"${idOrPrefix}" matches ${matches.length} records: give more characters of the id` });
  return matches[0] as ChildRecord;
}

/**
 * The record an id names, for a command that changes it (edit, delete, photo add/remove, resolve).
 * A deleted record is found too, so that the user hears it is deleted rather than "no such
 * record" for a record `show` displays. @throws VAULT_RECORD_NOT_FOUND (worded "it is deleted"
 * for a deleted record), FIELD_USAGE
 */
export async function findRecordToChange(session: Session, idOrPrefix: string, change: string): Promise<ChildRecord> {
  const record = await findRecord(session, idOrPrefix, { includeDeleted: true });
  if (isDeleted(record)) {
    throw fieldError(
      'VAULT_RECORD_NOT_FOUND',
      `Record ${record.id} is deleted, so it cannot be ${change}. "fieldvault-field show ${shortId(record.id)}" still shows it with its history; ` +
        'a supervisor can tell you whether it should come back.',
    );
  }
  return record;
}
