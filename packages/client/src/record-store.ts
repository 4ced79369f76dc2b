import {
  DELETED_FIELD,
  FIELD_NAME_PATTERN,
  FieldvaultError,
  USERNAME_PATTERN,
  UUID_V4_PATTERN,
  applyEdit,
  createRecord,
  isDeleted,
  needsReview,
  resolveConflict,
  validateAgainstForm,
  visibleFields,
  type ChildRecord,
  type FieldValue,
  type FormDefinition,
  type FormProblem,
  type HlcClock,
  type RecordLimits,
  recordUpdatedAt,
} from '@fieldvault/protocol';
import type { SqlExecutor, SqlValue, StorageHandle } from './storage-adapter.js';
import { RECORD_COLUMNS, nextLocalSeq, writeMeta } from './vault-schema.js';

/** The boolean flags of a child record that local search can filter on. */
export const RECORD_FLAGS = ['flagged', 'reunited', 'investigated', 'duplicate', 'verified'] as const;
export type RecordFlag = (typeof RECORD_FLAGS)[number];

/** Local search over the database the session sees. Every criterion given must match. */
export interface RecordQuery {
  /** Part of the child's name, any case (compared after NFKC and lower-casing). */
  readonly name?: string;
  /** Part of the location, any case. */
  readonly location?: string;
  /** Smallest age, inclusive. */
  readonly ageMin?: number;
  /** Largest age, inclusive. */
  readonly ageMax?: number;
  /** Flags that must have exactly these values (an unset flag counts as false). */
  readonly flags?: Readonly<Partial<Record<RecordFlag, boolean>>>;
  /** Only records with (true) or without (false) an unresolved concurrent edit. */
  readonly needsReview?: boolean;
  /** Only records created by this user. */
  readonly createdBy?: string;
  /** Include deleted records; default false. */
  readonly includeDeleted?: boolean;
  /** Page size, 1 … 1000; default 100. Results are ordered newest first. */
  readonly limit?: number;
  /** Records to skip; default 0. */
  readonly offset?: number;
}

// A record of every key, so that the compiler fails when RecordQuery gains or loses one.
const queryKeys: Record<keyof RecordQuery, true> = {
  name: true,
  location: true,
  ageMin: true,
  ageMax: true,
  flags: true,
  needsReview: true,
  createdBy: true,
  includeDeleted: true,
  limit: true,
  offset: true,
};

/** Every key a `RecordQuery` may have: any other key is refused, so a typo cannot widen a search. */
export const RECORD_QUERY_KEYS: readonly (keyof RecordQuery)[] = Object.freeze(Object.keys(queryKeys) as (keyof RecordQuery)[]);

/** Throws INPUT_INVALID naming the first key of `value` that is not in `allowed` (with the allowed ones). */
function refuseUnknownKeys(value: object, allowed: readonly string[], what: string): void {
  const unknown = Object.keys(value).find((key) => !allowed.includes(key));
  if (unknown === undefined) return;
  const list = allowed.join(', ');
  // Cut so that an absurd key cannot make an absurd message.
  const field = unknown.length > 64 ? `${unknown.slice(0, 64)}…` : unknown;
  throw new FieldvaultError('INPUT_INVALID', { detail: `${JSON.stringify(field)}: ${what}; allowed: ${list}`, details: { field, allowed: list } });
}

/** Paging for `list`. */
export interface ListOptions {
  readonly limit?: number;
  readonly offset?: number;
  readonly includeDeleted?: boolean;
}

const listKeys: Record<keyof ListOptions, true> = { limit: true, offset: true, includeDeleted: true };
/** Every key `list` options may have (a typo such as `limt` would otherwise list 100). */
const LIST_OPTION_KEYS: readonly string[] = Object.freeze(Object.keys(listKeys));

export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;

export interface RecordStoreOptions {
  /** Who writes: `createdBy` and `by` of every version. */
  readonly username: string;
  /** The device IMEI: `device` of every version. */
  readonly device: string;
  /**
   * Limit every read and write to records created by `username`: the visibility rule of unverified
   * users (DESIGN.md §4). Applied in SQL, in every query this class runs.
   */
  readonly onlyOwn: boolean;
  readonly clock: HlcClock;
  readonly form: FormDefinition;
  readonly limits?: Partial<RecordLimits>;
}

function inputInvalid(field: string, why: string): FieldvaultError {
  return new FieldvaultError('INPUT_INVALID', { detail: `${field}: ${why}`, details: { field } });
}

function formError(problem: FormProblem, count: number): FieldvaultError {
  return new FieldvaultError('RECORD_INVALID', {
    detail: `${problem.field}: ${problem.message}`,
    details: { field: problem.field, problem: problem.problem, problems: count },
  });
}

function notFound(): FieldvaultError {
  return new FieldvaultError('VAULT_RECORD_NOT_FOUND');
}

/** NFKC + lower case: how names and locations are stored for search and how queries are compared. */
export function searchText(text: string): string {
  return text.normalize('NFKC').toLowerCase();
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** The column values of a record's row (see vault-schema.ts), in `RECORD_COLUMNS` order. */
export function recordRow(record: ChildRecord, localSeq: number, json = JSON.stringify(record)): SqlValue[] {
  const v = visibleFields(record);
  const text = (x: FieldValue | undefined): string | null => (typeof x === 'string' ? searchText(x) : null);
  const flag = (name: RecordFlag): number => (v[name] === true ? 1 : 0);
  return [
    record.id,
    record.createdBy,
    record.createdAt,
    recordUpdatedAt(record),
    isDeleted(record) ? 1 : 0,
    needsReview(record) ? 1 : 0,
    text(v['name']),
    text(v['location']),
    typeof v['age'] === 'number' ? v['age'] : null,
    flag('flagged'),
    flag('reunited'),
    flag('investigated'),
    flag('duplicate'),
    flag('verified'),
    localSeq,
    json,
  ];
}

const UPSERT_SQL = `INSERT INTO records (${RECORD_COLUMNS.join(', ')}) VALUES (${RECORD_COLUMNS.map(() => '?').join(', ')})
  ON CONFLICT (id) DO UPDATE SET ${RECORD_COLUMNS.filter((c) => c !== 'id')
    .map((c) => `${c} = excluded.${c}`)
    .join(', ')}`;

/**
 * Writes a record row (insert or replace), bumping the local write counter, and returns the row's
 * new `local_seq`. Call inside a transaction.
 */
export async function putRecord(tx: SqlExecutor, record: ChildRecord): Promise<number> {
  const seq = await nextLocalSeq(tx);
  await putRecordAt(tx, record, seq);
  return seq;
}

/**
 * Writes a record row at a `local_seq` the caller took from the counter (`takeLocalSeqs`), with
 * the record's JSON when the caller already made it. Call inside that transaction.
 */
export async function putRecordAt(tx: SqlExecutor, record: ChildRecord, localSeq: number, json?: string): Promise<void> {
  await tx.execute(UPSERT_SQL, recordRow(record, localSeq, json));
}

/** Every HLC timestamp a record carries (creation, versions, photo additions and removals). */
export function* recordTimestamps(record: ChildRecord): Iterable<string> {
  yield record.createdAt;
  for (const v of record.history) yield v.ts;
  for (const v of Object.values(record.fields)) yield v.ts;
  for (const p of Object.values(record.photos)) {
    yield p.addedAt;
    if (p.removedAt !== undefined) yield p.removedAt;
  }
}

/** Parses a stored `doc`. The database is ours and authenticated by SQLCipher, so the JSON is trusted. */
export function recordFromDoc(doc: SqlValue | undefined): ChildRecord {
  if (typeof doc !== 'string') throw new FieldvaultError('INTERNAL_ERROR', { detail: 'a record row has no document' });
  return JSON.parse(doc) as ChildRecord;
}

function checkPage(limit: unknown, offset: unknown): { limit: number; offset: number } {
  const l = limit ?? DEFAULT_PAGE_SIZE;
  const o = offset ?? 0;
  if (typeof l !== 'number' || !Number.isInteger(l) || l < 1 || l > MAX_PAGE_SIZE) throw inputInvalid('limit', `an integer in 1 … ${MAX_PAGE_SIZE}`);
  if (typeof o !== 'number' || !Number.isInteger(o) || o < 0) throw inputInvalid('offset', 'a non-negative integer');
  return { limit: l, offset: o };
}

/**
 * Records in one device database, seen by one user. Builds on the protocol's record model: client
 * UUIDs, per-field HLC timestamps from the device clock, append-only history, merge, form
 * validation on write. Every query carries the visibility rule (`onlyOwn`).
 */
export class RecordStore {
  readonly #db: StorageHandle;
  readonly #o: RecordStoreOptions;

  constructor(db: StorageHandle, options: RecordStoreOptions) {
    this.#db = db;
    this.#o = options;
  }

  /** A timestamp from the device clock newer than `after` (the version an edit replaces). */
  nextTimestamp(after?: string): string {
    const ts = this.#o.clock.now();
    // A version from another device may be ahead of our clock (within the allowed skew): receive
    // it so the edit is newer, as applyEdit requires.
    return after !== undefined && !(after < ts) ? this.#o.clock.receive(after) : ts;
  }

  /**
   * Takes in a timestamp received from a server (the newest of a pulled page) so that every later
   * local edit is newer than it (applyEdit's RECORD_EDIT_STALE rule). Persist with `saveClock`.
   * `reference`: the server's wall clock from the same answer (see HlcClock.receive).
   * @throws HLC_TOO_FAR_AHEAD when it is further ahead of this device's clock (and of `reference`) than the allowed skew.
   * @throws HLC_INVALID when it is malformed.
   */
  observe(ts: string, reference?: number): void {
    this.#o.clock.receive(ts, reference);
  }

  /** Runs `fn` in one write transaction on this store's database. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#db.transaction(fn);
  }

  /** Persists the device clock inside a transaction (with the writes that advanced it). */
  async saveClock(tx: SqlExecutor): Promise<void> {
    await writeMeta(tx, 'clock', this.#o.clock.last());
  }

  /** `AND created_by = ?` for unverified users, with its parameter. */
  #visibility(column = 'created_by'): { sql: string; params: SqlValue[] } {
    return this.#o.onlyOwn ? { sql: ` AND ${column} = ?`, params: [this.#o.username] } : { sql: '', params: [] };
  }

  /** The visible record `id` inside a transaction. @throws VAULT_RECORD_NOT_FOUND */
  async load(tx: SqlExecutor, id: string, includeDeleted = false): Promise<ChildRecord> {
    if (typeof id !== 'string' || !UUID_V4_PATTERN.test(id)) throw notFound();
    const vis = this.#visibility();
    const rows = await tx.query<{ doc: string }>(`SELECT doc FROM records WHERE id = ?${vis.sql}`, [id, ...vis.params]);
    const row = rows[0];
    if (row === undefined) throw notFound();
    const record = recordFromDoc(row.doc);
    if (!includeDeleted && isDeleted(record)) throw notFound();
    return record;
  }

  /** Stores `record` and the clock, inside a transaction. */
  async store(tx: SqlExecutor, record: ChildRecord): Promise<void> {
    await putRecord(tx, record);
    await writeMeta(tx, 'clock', this.#o.clock.last());
  }

  /**
   * Runs `change` on the visible, not deleted record `id` in one write transaction and stores what
   * it returns (nothing is written when it returns the same object).
   * @throws VAULT_RECORD_NOT_FOUND when no such record is visible.
   */
  async mutate(id: string, change: (record: ChildRecord, tx: SqlExecutor) => Promise<ChildRecord> | ChildRecord): Promise<ChildRecord> {
    return this.#db.transaction(async (tx) => {
      const current = await this.load(tx, id);
      const next = await change(current, tx);
      if (next !== current) await this.store(tx, next);
      return next;
    });
  }

  #checkValues(values: unknown, what: string): Record<string, FieldValue> {
    if (!isPlainObject(values)) throw inputInvalid(what, 'must be an object of field values');
    const given: Record<string, FieldValue> = {};
    for (const [name, value] of Object.entries(values)) {
      if (!FIELD_NAME_PATTERN.test(name)) throw inputInvalid(`${what}.${name}`, 'not a field name');
      // `{ age: maybeAge }` with nothing in maybeAge means "not given", as in JSON (s16 input audit
      // F9: it was refused with a message naming no field). `null` is how a field is cleared.
      if (value !== undefined) given[name] = value as FieldValue;
    }
    return given;
  }

  /**
   * Creates a record with a new client UUID; the values must fit the form.
   * @throws RECORD_INVALID when a value breaks the form (unknown field, wrong type, missing required
   * field …), naming the first problem in `details.field`.
   * @throws RECORD_TOO_LARGE when a value is too long.
   * @throws INPUT_INVALID when `fields` is not an object of field names.
   */
  async create(fields: Readonly<Record<string, FieldValue | undefined>>): Promise<ChildRecord> {
    const record = this.draft(fields);
    await this.#db.transaction(async (tx) => this.store(tx, record));
    return record;
  }

  /**
   * A new record checked against the form, not stored (`create`, and a record created with its
   * photos, which stores it itself with `store`).
   * @throws RECORD_INVALID, RECORD_TOO_LARGE, INPUT_INVALID as `create`.
   */
  draft(fields: Readonly<Record<string, FieldValue | undefined>>): ChildRecord {
    const values = this.#checkValues(fields, 'fields');
    const problems = validateAgainstForm(values, this.#o.form);
    if (problems[0] !== undefined) throw formError(problems[0], problems.length);
    return createRecord({
      id: globalThis.crypto.randomUUID(),
      createdBy: this.#o.username,
      device: this.#o.device,
      clockTs: this.#o.clock.now(),
      fields: values,
    });
  }

  /**
   * Sets fields of a visible record; each change becomes a new version with the device's next
   * timestamp, the replaced value stays in the history. `null` clears an optional field.
   * Setting a field to its current value changes nothing.
   * @throws VAULT_RECORD_NOT_FOUND when no such record is visible (or it is deleted).
   * @throws RECORD_INVALID when a changed value breaks the form.
   * @throws RECORD_TOO_LARGE when a value or the history exceeds its limit.
   * @throws INPUT_INVALID when `changes` is not an object of field names.
   */
  async update(id: string, changes: Readonly<Record<string, FieldValue | undefined>>): Promise<ChildRecord> {
    const values = this.#checkValues(changes, 'changes');
    return this.mutate(id, (current) => {
      const merged = { ...visibleFields(current), ...values };
      const problems = validateAgainstForm(merged, this.#o.form, { allowUnknown: true }).filter((p) => Object.hasOwn(values, p.field));
      const known = new Set(this.#o.form.fields.map((f) => f.name));
      for (const name of Object.keys(values).sort()) {
        if (!known.has(name)) problems.push({ field: name, problem: 'unknown', message: 'is not a field of this form' });
      }
      if (problems[0] !== undefined) throw formError(problems[0], problems.length);
      let next = current;
      for (const [field, value] of Object.entries(values)) {
        const prev = Object.hasOwn(next.fields, field) ? next.fields[field] : undefined;
        next = applyEdit(
          next,
          { field, value, by: this.#o.username, device: this.#o.device, ts: this.nextTimestamp(prev?.ts) },
          this.#o.limits,
        );
      }
      return next;
    });
  }

  /**
   * Marks a visible record deleted (a versioned `_deleted` field: it syncs and merges like any
   * edit, and the record stays in the history). A record someone else created is deleted only
   * when `mayDeleteOthers` (the server's rule: supervisors and admins), so a refused deletion
   * never reaches a server and fails there at every sync.
   * @throws VAULT_RECORD_NOT_FOUND when no such record is visible (or it is already deleted).
   * @throws RECORD_FORBIDDEN when the record was created by another user and `mayDeleteOthers` is false.
   */
  async remove(id: string, mayDeleteOthers = true): Promise<ChildRecord> {
    return this.mutate(id, (current) => {
      if (current.createdBy !== this.#o.username && !mayDeleteOthers) {
        throw new FieldvaultError('RECORD_FORBIDDEN', {
          detail: "_deleted: only supervisors delete others' records",
          details: { field: DELETED_FIELD },
        });
      }
      const prev = current.fields[DELETED_FIELD];
      return applyEdit(
        current,
        { field: DELETED_FIELD, value: true, by: this.#o.username, device: this.#o.device, ts: this.nextTimestamp(prev?.ts) },
        this.#o.limits,
      );
    });
  }

  /**
   * Marks conflict `conflictId` of a visible record resolved (see protocol `resolveConflict`),
   * stamped with this store's user, the device and the device clock's next timestamp: the author
   * lets a server accept the resolution when another user's phone relays it (issue 5).
   * @throws VAULT_RECORD_NOT_FOUND when no such record is visible.
   * @throws RECORD_CONFLICT_NOT_FOUND when the record has no such conflict.
   * @throws RECORD_TOO_LARGE when the record holds as many resolutions as its history limit.
   */
  async resolve(id: string, conflictId: string): Promise<ChildRecord> {
    if (typeof conflictId !== 'string') throw inputInvalid('conflictId', 'a conflict id from the record');
    return this.mutate(id, (current) =>
      resolveConflict(current, conflictId, { by: this.#o.username, device: this.#o.device, ts: this.nextTimestamp() }, this.#o.limits),
    );
  }

  /**
   * A visible record by id.
   * @throws VAULT_RECORD_NOT_FOUND when there is none (also when it exists but was created by
   * another user and this session may see only its own, or it is deleted and `includeDeleted` is not set).
   */
  async get(id: string, options: { readonly includeDeleted?: boolean } = {}): Promise<ChildRecord> {
    return this.load(this.#db, id, options.includeDeleted === true);
  }

  /**
   * Visible records, newest first.
   * @throws INPUT_INVALID when the paging options are out of range.
   */
  async list(options: ListOptions = {}): Promise<ChildRecord[]> {
    const given: unknown = options;
    if (!isPlainObject(given)) throw inputInvalid('options', 'must be an object');
    refuseUnknownKeys(given, LIST_OPTION_KEYS, 'not a list option');
    return this.search({
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.offset === undefined ? {} : { offset: options.offset }),
      ...(options.includeDeleted === undefined ? {} : { includeDeleted: options.includeDeleted }),
    });
  }

  /**
   * Local search over the visible records, newest first.
   * @throws INPUT_INVALID naming the first unknown key (with the allowed ones) or malformed criterion.
   */
  async search(query: RecordQuery = {}): Promise<ChildRecord[]> {
    const { where, params } = this.#filter(query);
    const { limit, offset } = checkPage(query.limit, query.offset);
    const sql = `SELECT doc FROM records${where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?`;
    const rows = await this.#db.query<{ doc: string }>(sql, [...params, limit, offset]);
    return rows.map((r) => recordFromDoc(r.doc));
  }

  /**
   * How many visible records match `query` on all pages (its `limit` and `offset` are checked and
   * ignored): one `count(*)`, so a caller telling "1–100 of 604" reads no record to count them.
   * @throws INPUT_INVALID as `search`.
   */
  async count(query: RecordQuery = {}): Promise<number> {
    const { where, params } = this.#filter(query);
    checkPage(query.limit, query.offset);
    const rows = await this.#db.query<{ n: number }>(`SELECT count(*) AS n FROM records${where}`, params);
    return rows[0]?.n ?? 0;
  }

  /** The WHERE clause (empty, or starting with a space) and its parameters for `query`, checked. */
  #filter(query: RecordQuery): { where: string; params: SqlValue[] } {
    if (!isPlainObject(query)) throw inputInvalid('query', 'must be an object');
    // An unknown key (a typo such as `nmae`) would otherwise be no criterion at all and match every record.
    refuseUnknownKeys(query, RECORD_QUERY_KEYS, 'not a search criterion');
    const where: string[] = [];
    const params: SqlValue[] = [];
    const vis = this.#visibility();
    if (vis.sql !== '') {
      where.push('created_by = ?');
      params.push(...vis.params);
    }
    if (query.includeDeleted !== undefined && typeof query.includeDeleted !== 'boolean') throw inputInvalid('includeDeleted', 'must be a boolean');
    if (query.includeDeleted !== true) where.push('deleted = 0');
    for (const key of ['name', 'location'] as const) {
      const value = query[key];
      if (value === undefined) continue;
      if (typeof value !== 'string' || value.length === 0 || value.length > 1000) throw inputInvalid(key, 'must be 1 … 1000 characters');
      where.push(`instr(${key}_search, ?) > 0`);
      params.push(searchText(value));
    }
    for (const [key, op] of [
      ['ageMin', '>='],
      ['ageMax', '<='],
    ] as const) {
      const value = query[key];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isFinite(value)) throw inputInvalid(key, 'must be a number');
      where.push(`age ${op} ?`);
      params.push(value);
    }
    if (query.flags !== undefined) {
      if (!isPlainObject(query.flags)) throw inputInvalid('flags', 'must be an object');
      for (const [flag, value] of Object.entries(query.flags)) {
        if (!(RECORD_FLAGS as readonly string[]).includes(flag)) throw inputInvalid(`flags.${flag}`, `not a flag; allowed: ${RECORD_FLAGS.join(', ')}`);
        if (typeof value !== 'boolean') throw inputInvalid(`flags.${flag}`, 'must be a boolean');
        // The column name comes from the fixed list above, never from input.
        where.push(`${flag} = ?`);
        params.push(value ? 1 : 0);
      }
    }
    if (query.needsReview !== undefined) {
      if (typeof query.needsReview !== 'boolean') throw inputInvalid('needsReview', 'must be a boolean');
      where.push('needs_review = ?');
      params.push(query.needsReview ? 1 : 0);
    }
    if (query.createdBy !== undefined) {
      if (typeof query.createdBy !== 'string' || !USERNAME_PATTERN.test(query.createdBy)) throw inputInvalid('createdBy', 'not a username');
      where.push('created_by = ?');
      params.push(query.createdBy);
    }
    return { where: where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`, params };
  }
}
