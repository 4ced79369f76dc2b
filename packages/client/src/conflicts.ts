import { conflictId, openConflicts, type ChildRecord, type Conflict, type FieldValue, type FieldVersion } from '@fieldvault/protocol';

/**
 * An unresolved concurrent edit of one field of a record, as a supervisor's review screen needs it
 * (audit H1): the id `Session.resolveConflict` takes, and both values with who wrote them.
 */
export interface OpenConflict {
  /** Pass to `Session.resolveConflict(recordId, id)`. */
  readonly id: string;
  readonly field: string;
  /** HLC timestamp of the winning version (the field's current value, unless it was edited since). */
  readonly winner: string;
  /** HLC timestamp of the version that lost the concurrent edit (it stays in the record's history). */
  readonly loser: string;
  /** The winning value; `null` when the winning edit cleared the field. */
  readonly winnerValue: FieldValue | null;
  readonly winnerBy: string | null;
  /** The losing value; `null` when the losing edit cleared the field. */
  readonly loserValue: FieldValue | null;
  readonly loserBy: string | null;
}

/** The version of `field` written at `ts`, from the record's current fields or its history. */
function versionAt(record: ChildRecord, field: string, ts: string): FieldVersion | undefined {
  const current = Object.hasOwn(record.fields, field) ? record.fields[field] : undefined;
  if (current?.ts === ts) return current;
  return record.history.find((v) => v.field === field && v.ts === ts);
}

function valueOf(v: FieldVersion | undefined): FieldValue | null {
  if (v === undefined || v.value === null) return null;
  return Array.isArray(v.value) ? [...v.value] : v.value;
}

/** One open conflict with its id and values. */
export function describeConflict(record: ChildRecord, c: Conflict): OpenConflict {
  const w = versionAt(record, c.field, c.winner);
  const l = versionAt(record, c.field, c.loser);
  return {
    id: conflictId(c),
    field: c.field,
    winner: c.winner,
    loser: c.loser,
    winnerValue: valueOf(w),
    winnerBy: w?.by ?? null,
    loserValue: valueOf(l),
    loserBy: l?.by ?? null,
  };
}

/**
 * The conflicts of `record` no supervisor has resolved yet, with their ids and both values. The
 * same list `openConflicts` of @fieldvault/protocol gives, in a form an app can act on.
 */
export function describeOpenConflicts(record: ChildRecord): OpenConflict[] {
  return openConflicts(record).map((c) => describeConflict(record, c));
}
