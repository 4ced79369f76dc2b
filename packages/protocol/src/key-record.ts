import { Type, type Static } from '@sinclair/typebox';
import { FieldvaultError } from './errors.js';
import { HlcSchema, NodeIdSchema, parseHlc, type HlcClock } from './hlc.js';
import { ImeiSchema } from './ids.js';
import { checkSchema } from './validate.js';

/** A key id: 16 bytes in lowercase hex (a one-way id of the key, never the key). */
export const KEY_ID_PATTERN = /^[0-9a-f]{32}$/;

/**
 * Which database key a device (IMEI) uses, when and by whom it was issued. `issuer` is the node id
 * inside `issuedAt`: a key record is always stamped by the clock of the server that issued it.
 */
export const KeyRecordSchema = Type.Object(
  {
    imei: ImeiSchema,
    keyId: Type.String({ pattern: KEY_ID_PATTERN.source }),
    issuedAt: HlcSchema,
    issuer: NodeIdSchema,
  },
  { additionalProperties: false },
);
export type KeyRecord = Static<typeof KeyRecordSchema>;

/**
 * Validates an untrusted key record and returns a clean copy.
 *
 * @throws KEY_RECORD_INVALID naming the offending field in `detail` (and `details.field`), also
 *   when `issuer` differs from the node id inside `issuedAt`.
 */
export function parseKeyRecord(value: unknown): KeyRecord {
  const r = checkSchema(KeyRecordSchema, value, 'KEY_RECORD_INVALID');
  if (parseHlc(r.issuedAt).node !== r.issuer) {
    throw new FieldvaultError('KEY_RECORD_INVALID', {
      detail: 'issuer: must equal the node id inside issuedAt',
      details: { field: 'issuer' },
    });
  }
  return { imei: r.imei, keyId: r.keyId, issuedAt: r.issuedAt, issuer: r.issuer };
}

function cmp(a: string, b: string): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The "newest wins" order of DESIGN.md §2: by `issuedAt`, then `keyId`, compared as strings
 * (code units). `imei` and `issuer` break the remaining ties so the order is total over all valid
 * records. Positive when `a` is newer.
 *
 * @throws KEY_RECORD_INVALID when either record is malformed.
 */
export function compareKeyRecords(a: KeyRecord, b: KeyRecord): -1 | 0 | 1 {
  const x = parseKeyRecord(a);
  const y = parseKeyRecord(b);
  return cmp(x.issuedAt, y.issuedAt) || cmp(x.keyId, y.keyId) || cmp(x.imei, y.imei) || cmp(x.issuer, y.issuer);
}

/**
 * The winner of two key records for the same device. Every server and device applies exactly this
 * rule, so all of them converge on the same key. Commutative and idempotent; returns a copy.
 *
 * @throws KEY_RECORD_INVALID when either record is malformed.
 * @throws KEY_MISMATCH when the records are for different IMEIs.
 */
export function reconcile(a: KeyRecord, b: KeyRecord): KeyRecord {
  const x = parseKeyRecord(a);
  const y = parseKeyRecord(b);
  if (x.imei !== y.imei) throw new FieldvaultError('KEY_MISMATCH', { detail: 'the key records are for different devices' });
  return compareKeyRecords(x, y) >= 0 ? x : y;
}

export interface AcceptedKeyRecord {
  /** The record now in force for the IMEI (the winner). */
  readonly record: KeyRecord;
  /** True when `offered` won, i.e. the caller must store it (and hand its key to the device). */
  readonly changed: boolean;
}

/**
 * What a server (or device) does with a key record it is offered: validate it, pass its timestamp
 * through the local clock (so a timestamp too far ahead is rejected before anything is stored,
 * and every key issued later by this node is newer), then keep the winner against `current`.
 *
 * @throws KEY_RECORD_INVALID when `offered` or `current` is malformed.
 * @throws KEY_MISMATCH when `current` is for a different IMEI.
 * @throws HLC_TOO_FAR_AHEAD when `offered.issuedAt` is further ahead than the clock's allowed skew.
 */
export function acceptKeyRecord(clock: HlcClock, offered: unknown, current: KeyRecord | undefined): AcceptedKeyRecord {
  const record = parseKeyRecord(offered);
  const cur = current === undefined ? undefined : parseKeyRecord(current);
  if (cur !== undefined && cur.imei !== record.imei) {
    throw new FieldvaultError('KEY_MISMATCH', { detail: 'the key records are for different devices' });
  }
  clock.receive(record.issuedAt);
  if (cur === undefined) return { record, changed: true };
  const winner = reconcile(cur, record);
  return { record: winner, changed: compareKeyRecords(record, cur) > 0 };
}
