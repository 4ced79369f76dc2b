import type nano from 'nano';
import { FieldvaultError } from '@fieldvault/protocol';
import { DESIGN_NAME } from './design-docs.js';
import type { Page, QuarantinedRecord, SignupRecord, SignupState } from './records.js';
import { StoreEndpoint } from './endpoint.js';
import { statusOf, storeError } from './store-errors.js';

type Doc = Record<string, unknown> & { _id: string; _rev?: string };
type Db = nano.DocumentScope<Doc>;

/** How often a read-modify-write is retried on a `_rev` conflict before STORE_CONFLICT. */
const MAX_WRITE_ATTEMPTS = 12;
/** Rows read per `_all_docs` page while scanning. */
const SCAN_PAGE = 500;

/*
 * Document ids. Usernames never contain ':' (USERNAME_PATTERN), so `qrec:<username>:` is a prefix
 * of exactly one user's quarantined records and an `_all_docs` range lists them.
 */
const signupDocId = (username: string): string => `signup:${username}`;
const quarantinePrefix = (username: string): string => `qrec:${username}:`;
const quarantineDocId = (username: string, id: string): string => `${quarantinePrefix(username)}${id}`;

function strip<T>(doc: Doc): T {
  const { _id: _i, _rev: _r, type: _t, ...rest } = doc;
  return rest as T;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The quarantine database `<prefix>pending` (issue 7): sign-up requests (`signup:<username>`) and
 * the unverified records sent with them (`qrec:<username>:<uuid>`). It is a database of its own
 * so that nothing reading the records database — pull, search, photo rights — can ever see a
 * record an admin has not approved. The database itself is created by the repository's `init`
 * (it is one of `DATABASES`, so `admin setup` gives it `_security` like the others).
 */
export class CouchSignupStore {
  private readonly endpoint: StoreEndpoint;
  private readonly name: string;

  /** On `endpoint` (the app's `storeEndpoint`, so it follows the store when it moves), else on a connection of its own to `url`. */
  constructor(options: { readonly url: string; readonly dbPrefix: string; readonly endpoint?: StoreEndpoint }) {
    this.endpoint = options.endpoint ?? new StoreEndpoint(options.url);
    this.name = `${options.dbPrefix}pending`;
  }

  private get db(): Db {
    return this.endpoint.db(this.name);
  }

  private async getDoc(id: string, op: string): Promise<Doc | undefined> {
    try {
      return await this.db.get(id);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw storeError(err, op);
    }
  }

  async getSignup(username: string): Promise<SignupRecord | undefined> {
    const doc = await this.getDoc(signupDocId(username), 'signup.get');
    return doc === undefined || doc['type'] !== 'signup' ? undefined : strip<SignupRecord>(doc);
  }

  /**
   * Read-modify-write of one request under `_rev` concurrency (two admins deciding at once: one
   * wins, the other's `mutate` sees the decided request and refuses). Return undefined to write
   * nothing.
   * @throws STORE_CONFLICT after repeated conflicts.
   */
  async modifySignup(
    username: string,
    mutate: (current: SignupRecord | undefined) => SignupRecord | undefined | Promise<SignupRecord | undefined>,
  ): Promise<SignupRecord | undefined> {
    const id = signupDocId(username);
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
      const doc = await this.getDoc(id, 'signup.modify');
      const current = doc === undefined ? undefined : strip<SignupRecord>(doc);
      const next = await mutate(current);
      if (next === undefined) return current;
      const write: Doc = { ...next, type: 'signup', _id: id };
      if (doc?._rev !== undefined) write._rev = doc._rev;
      try {
        await this.db.insert(write);
        return next;
      } catch (err) {
        if (statusOf(err) !== 409) throw storeError(err, 'signup.modify');
        await sleep(Math.floor(Math.random() * 5 * (attempt + 1)));
      }
    }
    throw new FieldvaultError('STORE_CONFLICT', { details: { op: 'signup.modify' } });
  }

  /** Requests in username order, optionally only those of one status, `limit` at a time. */
  async listSignups(status: SignupState | undefined, limit: number, cursor: string | undefined): Promise<Page<SignupRecord>> {
    let rows: Array<{ id: string; doc?: Doc | null }>;
    try {
      if (status === undefined) {
        const startkey = cursor === undefined ? 'signup:' : signupDocId(cursor);
        rows = (await this.db.list({ startkey, endkey: 'signup:\ufff0', include_docs: true, limit: limit + 2 })).rows as typeof rows;
      } else {
        const startkey = [status, cursor ?? ''];
        rows = (await this.db.view<unknown>(DESIGN_NAME, 'signups_by_status', { startkey, endkey: [status, {}], include_docs: true, limit: limit + 2 })).rows;
      }
    } catch (err) {
      throw storeError(err, 'signup.list');
    }
    // The cursor row itself (if still there) is dropped by name, not with `skip`.
    const items = rows
      .flatMap((r) => (r.doc ? [strip<SignupRecord>(r.doc)] : []))
      .filter((s) => cursor === undefined || s.username !== cursor);
    const page = items.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page, nextCursor: items.length > limit && last !== undefined ? last.username : null };
  }

  /** Deletes the request document (tests and explicit clean-up; decisions keep it as an outcome). */
  async deleteSignup(username: string): Promise<void> {
    const doc = await this.getDoc(signupDocId(username), 'signup.delete');
    if (doc?._rev === undefined) return;
    try {
      await this.db.destroy(doc._id, doc._rev);
    } catch (err) {
      if (statusOf(err) !== 404 && statusOf(err) !== 409) throw storeError(err, 'signup.delete');
    }
  }

  /** The quarantined records of `username` in id order, after record id `after`, at most `limit`. */
  async listQuarantined(username: string, after: string | undefined, limit: number): Promise<QuarantinedRecord[]> {
    const prefix = quarantinePrefix(username);
    const startkey = after === undefined ? prefix : quarantineDocId(username, after);
    try {
      const res = await this.db.list({ startkey, endkey: `${prefix}\ufff0`, include_docs: true, limit: limit + 1 });
      return res.rows
        .filter((r) => after === undefined || r.id !== startkey)
        .slice(0, limit)
        .flatMap((r) => (r.doc && r.doc['type'] === 'qrec' ? [strip<QuarantinedRecord>(r.doc)] : []));
    } catch (err) {
      throw storeError(err, 'quarantine.list');
    }
  }

  /** How many records `username` has in quarantine. */
  async countQuarantined(username: string): Promise<number> {
    let n = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.listQuarantined(username, after, SCAN_PAGE);
      n += page.length;
      const last = page[page.length - 1];
      if (page.length < SCAN_PAGE || last === undefined) return n;
      after = last.record.id;
    }
  }

  /**
   * Read-modify-write of quarantined records of one user by record id: one `_all_docs` read and
   * one `_bulk_docs` write per round, conflicted ones again. `mutate` returns the new value or
   * undefined to leave a record as it is. Returns the ids written.
   * @throws STORE_CONFLICT when a record keeps conflicting.
   */
  async modifyQuarantined(
    username: string,
    ids: readonly string[],
    mutate: (id: string, current: QuarantinedRecord | undefined) => QuarantinedRecord | undefined,
  ): Promise<Set<string>> {
    const written = new Set<string>();
    let pending = [...new Set(ids)];
    for (let attempt = 0; pending.length > 0 && attempt < MAX_WRITE_ATTEMPTS; attempt += 1) {
      if (attempt > 0) await sleep(Math.floor(Math.random() * 5 * attempt));
      const docs = new Map<string, Doc>();
      try {
        const res = await this.db.fetch({ keys: pending.map((id) => quarantineDocId(username, id)) });
        for (const row of res.rows) if ('doc' in row && row.doc) docs.set(row.id, row.doc);
      } catch (err) {
        throw storeError(err, 'quarantine.fetch');
      }
      const writes: Doc[] = [];
      const writeIds: string[] = [];
      for (const id of pending) {
        const docId = quarantineDocId(username, id);
        const doc = docs.get(docId);
        const next = mutate(id, doc === undefined ? undefined : strip<QuarantinedRecord>(doc));
        if (next === undefined) continue;
        const write: Doc = { ...next, type: 'qrec', _id: docId };
        if (doc?._rev !== undefined) write._rev = doc._rev;
        writes.push(write);
        writeIds.push(id);
      }
      if (writes.length === 0) return written;
      let res: nano.DocumentBulkResponse[];
      try {
        res = await this.db.bulk({ docs: writes });
      } catch (err) {
        throw storeError(err, 'quarantine.write');
      }
      const conflicted: string[] = [];
      writeIds.forEach((id, i) => {
        const r = res[i];
        if (r !== undefined && r.error === undefined) written.add(id);
        else if (r?.error === 'conflict') conflicted.push(id);
        else throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'quarantine.write' } });
      });
      pending = conflicted;
    }
    if (pending.length > 0) throw new FieldvaultError('STORE_CONFLICT', { details: { op: 'quarantine.write' } });
    return written;
  }

  /** Deletes quarantined records of `username` by record id; returns how many were deleted. */
  async deleteQuarantined(username: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    try {
      const res = await this.db.fetch({ keys: ids.map((id) => quarantineDocId(username, id)) });
      const docs = res.rows.flatMap((row) => ('doc' in row && row.doc && row.doc._rev !== undefined ? [{ _id: row.id, _rev: row.doc._rev, _deleted: true }] : []));
      if (docs.length === 0) return 0;
      const out = await this.db.bulk({ docs });
      return out.filter((r) => r.error === undefined).length;
    } catch (err) {
      throw storeError(err, 'quarantine.delete');
    }
  }

  /** Deletes every quarantined record of `username`; returns how many. */
  async deleteAllQuarantined(username: string): Promise<number> {
    let total = 0;
    for (;;) {
      const page = await this.listQuarantined(username, undefined, SCAN_PAGE);
      if (page.length === 0) return total;
      const deleted = await this.deleteQuarantined(
        username,
        page.map((q) => q.record.id),
      );
      total += deleted;
      if (deleted === 0) return total;
    }
  }
}
