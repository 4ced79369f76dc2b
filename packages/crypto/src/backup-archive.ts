import { createHash } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';
import { FieldvaultError } from '@fieldvault/protocol';

/*
 * The plaintext inside an encrypted backup: UTF-8 JSON lines (NDJSON), produced and consumed as
 * streams, so no side ever holds the whole archive:
 *
 *   {"type":"fieldvault-backup","version":1,"createdAt":…,"createdBy":…,"serverId":…,"kekId":…,"databases":[…]}
 *   {"db":"users","doc":{"_id":"user:amina",…}}                    one line per document, db by db
 *   {"db":"photos","doc":{"_id":"photo:…",…,"_attachments":{"photo":{"content_type":"image/jpeg","data":"<base64>"}}}}
 *   {"type":"manifest","counts":{…},"digests":{…},"attachments":{"count":…,"bytes":…}}   always last
 *
 * Documents carry no `_rev` (a restore writes them as new documents). The digest of a database is
 * SHA-256 over one line per document, in `_all_docs` order, of SHA-256(canonical JSON of the
 * document with each attachment replaced by its content type, length and SHA-256). The same
 * digest is computed from the archive (restore checks the file) and from a store (the server
 * checks what it wrote, and `inventory` shows a live server), so equal digests mean equal data.
 */

export const BACKUP_ARCHIVE_FORMAT = 'fieldvault-backup';
export const BACKUP_ARCHIVE_VERSION = 1;
/** What a backup holds. Sessions (sessions, challenges, reset tokens, throttles) are left out on purpose. */
export const BACKUP_DATABASES = ['users', 'devices', 'audit', 'records', 'photos', 'pending'] as const;
export type BackupDatabase = (typeof BACKUP_DATABASES)[number];

export interface ArchiveHeader {
  readonly type: typeof BACKUP_ARCHIVE_FORMAT;
  readonly version: typeof BACKUP_ARCHIVE_VERSION;
  readonly createdAt: string;
  readonly createdBy: string | null;
  readonly serverId: string;
  /** Public id of the KEK that seals the device keys and TOTP secrets inside. */
  readonly kekId: string;
  readonly databases: readonly BackupDatabase[];
}

export interface ArchiveManifest {
  readonly type: 'manifest';
  readonly counts: Readonly<Record<BackupDatabase, number>>;
  readonly digests: Readonly<Record<BackupDatabase, string>>;
  readonly attachments: { readonly count: number; readonly bytes: number };
}

export interface ArchiveAttachment {
  readonly content_type: string;
  /** Base64 of the bytes. */
  readonly data: string;
}

/** A document as it sits in the archive: `_id`, own fields, optional inline attachments, no `_rev`. */
export type ArchiveDoc = { readonly _id: string; readonly _attachments?: Readonly<Record<string, ArchiveAttachment>> } & Readonly<Record<string, unknown>>;

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DOC_ID = /^[^_][\s\S]{0,511}$/;

function invalid(detail: string): FieldvaultError {
  return new FieldvaultError('BACKUP_INVALID', { detail });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks one archived document: an object with a string `_id` that is not a design or local
 * document, no other underscore fields than `_attachments` (which must be inline base64).
 * @throws BACKUP_INVALID
 */
export function checkArchiveDoc(value: unknown): ArchiveDoc {
  if (!isRecord(value)) throw invalid('a document is not an object');
  const id = value['_id'];
  if (typeof id !== 'string' || !DOC_ID.test(id)) throw invalid('a document has no valid _id');
  for (const key of Object.keys(value)) {
    if (key.startsWith('_') && key !== '_id' && key !== '_attachments') throw invalid(`document ${id} has a reserved field ${key}`);
  }
  const atts = value['_attachments'];
  if (atts !== undefined) {
    if (!isRecord(atts)) throw invalid(`document ${id} has malformed attachments`);
    for (const [name, att] of Object.entries(atts)) {
      if (!isRecord(att) || typeof att['content_type'] !== 'string' || typeof att['data'] !== 'string' || !BASE64.test(att['data'])) {
        throw invalid(`attachment ${name} of ${id} is not inline base64`);
      }
      if (Object.keys(att).some((k) => k !== 'content_type' && k !== 'data')) throw invalid(`attachment ${name} of ${id} has extra fields`);
    }
  }
  return value as ArchiveDoc;
}

/**
 * Digest of one document (see the format above) and the attachment bytes it holds. Takes a
 * document as a store returns it too: `_rev` and attachment metadata (`digest`, `revpos`,
 * `length`, `stub`) are ignored; attachments must carry `data`.
 */
export function documentDigest(doc: Readonly<Record<string, unknown>>): { digest: string; attachments: number; bytes: number } {
  const { _rev: _r, _attachments: atts, ...rest } = doc;
  let attachments = 0;
  let bytes = 0;
  const normalised: Record<string, unknown> = { ...rest };
  if (isRecord(atts)) {
    const out: Record<string, unknown> = {};
    for (const [name, att] of Object.entries(atts)) {
      const a = isRecord(att) ? att : {};
      const data = Buffer.from(typeof a['data'] === 'string' ? a['data'] : '', 'base64');
      attachments += 1;
      bytes += data.byteLength;
      out[name] = { content_type: a['content_type'] ?? null, length: data.byteLength, sha256: sha256(data) };
    }
    normalised['_attachments'] = out;
  }
  return { digest: sha256(stringify(normalised) ?? ''), attachments, bytes };
}

/** Running counts and digests of the databases of a backup, fed one document at a time in order. */
export class ArchiveDigest {
  readonly #hashes = new Map<BackupDatabase, ReturnType<typeof createHash>>();
  readonly #counts = new Map<BackupDatabase, number>();
  #attachments = 0;
  #bytes = 0;

  constructor(readonly databases: readonly BackupDatabase[] = BACKUP_DATABASES) {
    for (const db of databases) {
      this.#hashes.set(db, createHash('sha256'));
      this.#counts.set(db, 0);
    }
  }

  add(db: BackupDatabase, doc: Readonly<Record<string, unknown>>): void {
    const hash = this.#hashes.get(db);
    if (hash === undefined) throw invalid(`database ${db} is not in this backup`);
    const d = documentDigest(doc);
    hash.update(`${d.digest}\n`);
    this.#counts.set(db, (this.#counts.get(db) ?? 0) + 1);
    this.#attachments += d.attachments;
    this.#bytes += d.bytes;
  }

  /** The manifest so far (call once, at the end: it finalises the hashes). */
  manifest(): ArchiveManifest {
    const counts: Partial<Record<BackupDatabase, number>> = {};
    const digests: Partial<Record<BackupDatabase, string>> = {};
    for (const db of this.databases) {
      counts[db] = this.#counts.get(db) ?? 0;
      digests[db] = this.#hashes.get(db)?.digest('hex') ?? '';
    }
    return {
      type: 'manifest',
      counts: counts as Record<BackupDatabase, number>,
      digests: digests as Record<BackupDatabase, string>,
      attachments: { count: this.#attachments, bytes: this.#bytes },
    };
  }
}

/** The databases where `a` and `b` differ (count or digest); empty when they agree. */
export function manifestDifferences(a: ArchiveManifest, b: ArchiveManifest): string[] {
  const out: string[] = [];
  for (const db of BACKUP_DATABASES) {
    if (a.counts[db] !== b.counts[db]) out.push(`${db}: ${String(a.counts[db])} documents, expected ${String(b.counts[db])}`);
    else if (a.digests[db] !== b.digests[db]) out.push(`${db}: digest differs`);
  }
  if (a.attachments.count !== b.attachments.count || a.attachments.bytes !== b.attachments.bytes) out.push('attachments differ');
  return out;
}

function checkHeader(value: Record<string, unknown>): ArchiveHeader {
  if (value['version'] !== BACKUP_ARCHIVE_VERSION) {
    throw new FieldvaultError('BACKUP_FORMAT_UNSUPPORTED', { detail: `archive version ${String(value['version'])}` });
  }
  const dbs = value['databases'];
  const ok =
    typeof value['createdAt'] === 'string' &&
    (value['createdBy'] === null || typeof value['createdBy'] === 'string') &&
    typeof value['serverId'] === 'string' &&
    typeof value['kekId'] === 'string' &&
    /^[0-9a-f]{32}$/.test(value['kekId']) &&
    Array.isArray(dbs) &&
    dbs.every((d) => (BACKUP_DATABASES as readonly unknown[]).includes(d)) &&
    new Set(dbs).size === dbs.length;
  if (!ok) throw invalid('the archive header is malformed');
  return value as unknown as ArchiveHeader;
}

function checkManifest(value: Record<string, unknown>, databases: readonly BackupDatabase[]): ArchiveManifest {
  const counts = value['counts'];
  const digests = value['digests'];
  const atts = value['attachments'];
  const ok =
    isRecord(counts) &&
    isRecord(digests) &&
    isRecord(atts) &&
    Number.isSafeInteger(atts['count']) &&
    Number.isSafeInteger(atts['bytes']) &&
    databases.every((db) => Number.isSafeInteger(counts[db]) && typeof digests[db] === 'string');
  if (!ok) throw invalid('the archive manifest is malformed');
  return value as unknown as ArchiveManifest;
}

export type ArchiveEntry =
  | { readonly kind: 'header'; readonly header: ArchiveHeader }
  | { readonly kind: 'doc'; readonly db: BackupDatabase; readonly doc: ArchiveDoc }
  | { readonly kind: 'manifest'; readonly manifest: ArchiveManifest };

/**
 * Reads an archive line by line (values already parsed from JSON): checks the order (header,
 * documents, manifest last), every document, and at the end that the documents match the
 * manifest's counts and digests.
 */
export class ArchiveReader {
  #header: ArchiveHeader | undefined;
  #manifest: ArchiveManifest | undefined;
  #digest: ArchiveDigest | undefined;

  get header(): ArchiveHeader | undefined {
    return this.#header;
  }

  /** @throws BACKUP_INVALID, BACKUP_FORMAT_UNSUPPORTED */
  accept(value: unknown): ArchiveEntry {
    if (!isRecord(value)) throw invalid('a line is not a JSON object');
    if (this.#manifest !== undefined) throw invalid('data after the manifest');
    if (this.#header === undefined) {
      if (value['type'] !== BACKUP_ARCHIVE_FORMAT) throw new FieldvaultError('BACKUP_FORMAT_UNSUPPORTED', { detail: 'no fieldvault backup header' });
      this.#header = checkHeader(value);
      this.#digest = new ArchiveDigest(this.#header.databases);
      return { kind: 'header', header: this.#header };
    }
    if (value['type'] === 'manifest') {
      this.#manifest = checkManifest(value, this.#header.databases);
      return { kind: 'manifest', manifest: this.#manifest };
    }
    const db = value['db'];
    if (typeof db !== 'string' || !this.#header.databases.includes(db as BackupDatabase)) throw invalid('a document names no database of this backup');
    if (Object.keys(value).length !== 2) throw invalid('a document line has extra fields');
    const doc = checkArchiveDoc(value['doc']);
    this.#digest?.add(db as BackupDatabase, doc);
    return { kind: 'doc', db: db as BackupDatabase, doc };
  }

  /**
   * Call after the last line.
   * @throws BACKUP_INVALID when the manifest is missing or the documents do not match it.
   */
  finish(): { header: ArchiveHeader; manifest: ArchiveManifest } {
    if (this.#header === undefined || this.#manifest === undefined || this.#digest === undefined) throw invalid('the archive has no manifest (cut short)');
    const differences = manifestDifferences(this.#digest.manifest(), this.#manifest);
    if (differences.length > 0) throw invalid(`the documents do not match the manifest: ${differences.join('; ')}`);
    return { header: this.#header, manifest: this.#manifest };
  }
}

/**
 * Splits a byte stream into UTF-8 lines without ever holding a line longer than `maxLineBytes`.
 * @throws BACKUP_INVALID when a line is longer, or the stream does not end with a newline.
 */
export async function* archiveLines(source: AsyncIterable<Uint8Array>, maxLineBytes: number): AsyncGenerator<string> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (;;) {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) break;
      if (size + nl > maxLineBytes) throw invalid('a line is longer than the limit');
      parts.push(buf.subarray(0, nl));
      yield Buffer.concat(parts).toString('utf8');
      parts = [];
      size = 0;
      buf = buf.subarray(nl + 1);
    }
    if (buf.byteLength > 0) {
      size += buf.byteLength;
      if (size > maxLineBytes) throw invalid('a line is longer than the limit');
      parts.push(Buffer.from(buf));
    }
  }
  if (size > 0) throw invalid('the archive does not end with a complete line (cut short)');
}

/** One archive line (with its newline). */
export function archiveLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}
