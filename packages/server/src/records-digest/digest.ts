import { createHash, type Hash } from 'node:crypto';
import { canonicalJson, isDeleted, recordUpdatedAt, type ChildRecord } from '@fieldvault/protocol';

/*
 * The content digest of a server's records (multi-server audit M4). Two servers have converged
 * when they hold the same records with the same content, which is what the scenario harness
 * checks (packages/scenarios, invariants.ts, "servers-converged"): it reads every record through
 * the sync pull (the protocol's ChildRecord, without any server data) and compares their
 * canonical JSON (object keys sorted, arrays in their order) record by record. The digest is that
 * comparison made compact, so equal digests mean exactly what the harness calls converged:
 *
 *   recordDigest = hex SHA-256 of canonical JSON of the record (UTF-8)
 *   digest       = hex SHA-256 of "<id> <recordDigest>\n" for every record, in id order
 *
 * Only the ChildRecord is digested: id, fields, history, photos (ids, SHA-256, size, type, adds
 * and removals), conflicts, resolutions and the `_deleted` field. The envelope a server keeps
 * around it (pushedBy, pushedFrom, receivedAt, firstPushedBy…), store revisions and sequences
 * are server-local and never enter it, nor does the order in which records arrived.
 */

/** Hex SHA-256 of the record's canonical JSON. */
export function recordDigest(record: ChildRecord): string {
  return createHash('sha256').update(canonicalJson(record), 'utf8').digest('hex');
}

/** One record in the per-record list: enough to find which records differ between two servers. */
export interface RecordDigestEntry {
  readonly id: string;
  readonly digest: string;
  readonly deleted: boolean;
  /** The newest timestamp in the record (HLC): tells which copy has the later change. */
  readonly updatedAt: string;
}

export function digestEntry(record: ChildRecord): RecordDigestEntry {
  return { id: record.id, digest: recordDigest(record), deleted: isDeleted(record), updatedAt: recordUpdatedAt(record) };
}

/** Folds records, given in id order, into `{count, deleted, digest}` without keeping them. */
export class RecordsDigest {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;
  private deleted = 0;

  add(entry: Pick<RecordDigestEntry, 'id' | 'digest' | 'deleted'>): void {
    this.hash.update(`${entry.id} ${entry.digest}\n`, 'utf8');
    this.count += 1;
    if (entry.deleted) this.deleted += 1;
  }

  result(): { count: number; deleted: number; digest: string } {
    return { count: this.count, deleted: this.deleted, digest: this.hash.digest('hex') };
  }
}
