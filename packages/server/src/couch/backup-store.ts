import type nano from 'nano';
import { FieldvaultError } from '@fieldvault/protocol';
import type { ArchiveDoc, BackupDatabase } from '@fieldvault/crypto';
import { StoreEndpoint } from './endpoint.js';
import { statusOf, storeError } from './store-errors.js';

type Doc = Record<string, unknown> & { _id: string; _rev?: string };

const PAGE = 500;
/** Photos are read one document at a time with their bytes, so memory holds one photo, not a page. */
const PHOTO_PAGE = 50;
const DESIGN = '_design/';
/** Unfinished photo uploads: transient, never backed up (the phone uploads again). */
const UPLOAD_PREFIX = 'upload:';
/**
 * Photo-id bindings (`owner:<photoId>`, security audit H2): derived, not backed up, so the photo
 * count stays one per photo. After a restore an uploaded photo's id stays bound through its photo
 * document; the others are bound again by their record's next push or upload.
 */
const OWNER_PREFIX = 'owner:';

function skipped(db: BackupDatabase, id: string): boolean {
  return id.startsWith(DESIGN) || (db === 'photos' && (id.startsWith(UPLOAD_PREFIX) || id.startsWith(OWNER_PREFIX)));
}

/** A stored document as it goes into an archive: no `_rev`, attachments inline as `{content_type, data}`. */
function archived(doc: Doc): ArchiveDoc {
  const { _rev: _r, _attachments: atts, ...rest } = doc;
  if (atts === undefined || atts === null) return rest as ArchiveDoc;
  const out: Record<string, { content_type: string; data: string }> = {};
  for (const [name, att] of Object.entries(atts as Record<string, { content_type?: unknown; data?: unknown }>)) {
    if (typeof att.data !== 'string') throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'backup.attachment_stub' } });
    out[name] = { content_type: typeof att.content_type === 'string' ? att.content_type : 'application/octet-stream', data: att.data };
  }
  return { ...rest, _attachments: out } as ArchiveDoc;
}

/**
 * Whole-database access for backups and restores: every document of a database in `_all_docs`
 * order with its attachments, bulk writes of archived documents, and a wipe. Only this module and
 * the repository talk to CouchDB (DESIGN.md §1); it returns archive documents and throws
 * catalogued errors only.
 */
export class CouchBackupStore {
  private readonly endpoint: StoreEndpoint;
  private readonly prefix: string;

  /** On `endpoint` (the app's `storeEndpoint`, so it follows the store when it moves), else on a connection of its own to `url`. */
  constructor(options: { readonly url: string; readonly dbPrefix: string; readonly endpoint?: StoreEndpoint }) {
    this.endpoint = options.endpoint ?? new StoreEndpoint(options.url);
    this.prefix = options.dbPrefix;
  }

  private db(name: BackupDatabase): nano.DocumentScope<Doc> {
    return this.endpoint.db(`${this.prefix}${name}`);
  }

  /**
   * Every document of `name` except design documents and unfinished uploads, in id order, with
   * attachment bytes inline. Paged by id, so a live server gives a per-document consistent copy.
   * @throws STORE_UNAVAILABLE
   */
  async *documents(name: BackupDatabase): AsyncGenerator<ArchiveDoc> {
    const db = this.db(name);
    const limit = name === 'photos' ? PHOTO_PAGE : PAGE;
    let after: string | undefined;
    for (;;) {
      let rows: Array<{ id: string; doc?: Doc | null }>;
      try {
        const params: nano.DocumentListParams = { include_docs: true, limit: limit + 1 };
        if (after !== undefined) params.start_key = after;
        rows = (await db.list(params)).rows as Array<{ id: string; doc?: Doc | null }>;
      } catch (err) {
        throw storeError(err, 'backup.list');
      }
      const page = rows.filter((r) => r.id !== after).slice(0, limit);
      for (const row of page) {
        if (skipped(name, row.id) || row.doc === undefined || row.doc === null) continue;
        let doc = row.doc;
        if (doc['_attachments'] !== undefined) {
          try {
            doc = await db.get(row.id, { attachments: true });
          } catch (err) {
            if (statusOf(err) === 404) continue; // deleted since it was listed
            throw storeError(err, 'backup.get');
          }
        }
        yield archived(doc);
      }
      const last = page[page.length - 1];
      if (rows.length <= limit || last === undefined) return;
      after = last.id;
    }
  }

  /** The backup databases that hold any document (design documents aside). @throws STORE_UNAVAILABLE */
  async nonEmpty(names: readonly BackupDatabase[]): Promise<BackupDatabase[]> {
    const out: BackupDatabase[] = [];
    for (const name of names) {
      try {
        const res = await this.db(name).list({ limit: 20 });
        if (res.rows.some((r) => !r.id.startsWith(DESIGN))) out.push(name);
      } catch (err) {
        throw storeError(err, 'backup.empty_check');
      }
    }
    return out;
  }

  /**
   * Writes archived documents as new documents (with inline attachments) in one `_bulk_docs`.
   * @throws BACKUP_VERIFY_FAILED when CouchDB refuses any of them (e.g. the id exists already).
   * @throws STORE_UNAVAILABLE
   */
  async write(name: BackupDatabase, docs: readonly ArchiveDoc[]): Promise<void> {
    if (docs.length === 0) return;
    let res: nano.DocumentBulkResponse[];
    try {
      res = await this.db(name).bulk({ docs: docs as unknown as Doc[] });
    } catch (err) {
      throw storeError(err, 'restore.write');
    }
    const refused = res.filter((r) => r.error !== undefined);
    if (refused.length > 0 || res.length !== docs.length) {
      throw new FieldvaultError('BACKUP_VERIFY_FAILED', { detail: `${name}: ${refused.length || docs.length - res.length} documents refused by the store` });
    }
  }

  /** Deletes every document (design documents aside) of the given databases. @throws STORE_UNAVAILABLE */
  async wipe(names: readonly BackupDatabase[]): Promise<void> {
    for (const name of names) {
      const db = this.db(name);
      for (let round = 0; round < 100_000; round += 1) {
        let rows: Array<{ id: string; value: { rev: string } }>;
        try {
          rows = (await db.list({ limit: PAGE })).rows.filter((r) => !r.id.startsWith(DESIGN));
        } catch (err) {
          throw storeError(err, 'restore.wipe');
        }
        if (rows.length === 0) break;
        try {
          await db.bulk({ docs: rows.map((r) => ({ _id: r.id, _rev: r.value.rev, _deleted: true })) });
        } catch (err) {
          throw storeError(err, 'restore.wipe');
        }
      }
    }
  }
}
