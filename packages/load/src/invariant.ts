import { isDeleted, type ChildRecord } from '@fieldvault/protocol';
import type { PhoneOutcome } from './messages.js';

/** What the server holds compared with what the phones were told it holds. */
export interface HoldingCheck {
  /** Records every phone created and the server acknowledged. */
  readonly acknowledged: number;
  /** Acknowledged records the server does not hold (or holds with another name, or deleted): loss. */
  readonly missing: readonly string[];
  /** Records the server holds that no phone created: invention. */
  readonly unexpected: readonly string[];
  /** Ids the server returned more than once. */
  readonly duplicates: readonly string[];
  /** Acknowledged photos whose bytes the server does not hold complete. */
  readonly missingPhotos: readonly string[];
  readonly ok: boolean;
}

/**
 * The load test's invariant: the server holds exactly the acknowledged records — every record a
 * phone created and the server acknowledged is there with the phone's value, with its photo when
 * that upload was acknowledged (its bytes complete on the server), no record appears that no phone created, and none twice. Records
 * a phone created but the server refused (or a phone that failed before sync) may be absent, and
 * may be present only if the phone created them.
 */
export function checkHolding(server: readonly ChildRecord[], phones: readonly PhoneOutcome[], photosHeld: ReadonlySet<string>): HoldingCheck {
  const byId = new Map<string, ChildRecord>();
  const duplicates: string[] = [];
  for (const r of server) {
    if (byId.has(r.id)) duplicates.push(r.id);
    byId.set(r.id, r);
  }
  const createdIds = new Set<string>();
  const missing: string[] = [];
  const missingPhotos: string[] = [];
  let acknowledged = 0;
  for (const phone of phones) {
    const refused = new Set(phone.failed.map((f) => f.id));
    const photoRefused = new Set(phone.photosFailed.map((f) => f.photoId));
    // A phone that failed as a whole acknowledged nothing it can prove; a clean one has nothing pending.
    const clean = phone.error === undefined && phone.pending.records === refused.size;
    for (const c of phone.created) {
      createdIds.add(c.id);
      if (!clean || refused.has(c.id)) continue;
      acknowledged++;
      const held = byId.get(c.id);
      if (held === undefined || isDeleted(held) || held.fields['name']?.value !== c.name) {
        missing.push(c.id);
        continue;
      }
      if (c.photoId !== undefined && !photoRefused.has(c.photoId) && phone.pending.photos === 0) {
        if (held.photos[c.photoId] === undefined || !photosHeld.has(c.photoId)) missingPhotos.push(c.photoId);
      }
    }
  }
  const unexpected = [...byId.keys()].filter((id) => !createdIds.has(id));
  return {
    acknowledged,
    missing,
    unexpected,
    duplicates,
    missingPhotos,
    ok: missing.length === 0 && unexpected.length === 0 && duplicates.length === 0 && missingPhotos.length === 0,
  };
}
