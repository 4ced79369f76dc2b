import { generateDbKey, keyId, openDbKey, sealDbKey } from '@fieldvault/crypto';
import { FieldvaultError, acceptKeyRecord, parseKeyRecord, type HlcClock, type KeyRecord } from '@fieldvault/protocol';
import type { StoredDeviceKey } from '../couch/records.js';

/** What happened to a device's key during a login or an admin action. */
export type KeyOutcome = 'issued' | 'adopted' | 'replaced' | 'kept' | 'rekeyed';

/** A key a device offers at login (flow 2/4): the record and the raw key it claims to match. */
export interface OfferedKey {
  readonly record: KeyRecord;
  readonly dbKey: Uint8Array;
}

export interface KeyDecision {
  /** What to store on the device record (the current value when nothing changed). */
  readonly stored: StoredDeviceKey;
  /** The winning key, to hand to the device. */
  readonly dbKey: Uint8Array;
  readonly outcome: KeyOutcome;
  /** Key id that was replaced, if any. */
  readonly previousKeyId: string | null;
}

export interface KeyAuthority {
  readonly kek: Uint8Array;
  readonly clock: HlcClock;
}

/**
 * Checks an offered key before anything is stored: a valid record for this IMEI whose key id
 * really is the id of the key sent with it.
 * @throws KEY_RECORD_INVALID, KEY_MISMATCH.
 */
export function checkOfferedKey(imei: string, record: unknown, dbKey: Uint8Array): OfferedKey {
  const parsed = parseKeyRecord(record);
  if (parsed.imei !== imei) throw new FieldvaultError('KEY_MISMATCH', { detail: 'the key record is for another device' });
  if (dbKey.byteLength !== 32 || keyId(dbKey) !== parsed.keyId) {
    throw new FieldvaultError('KEY_MISMATCH', { detail: 'the key does not match the key id of its record' });
  }
  return { record: parsed, dbKey };
}

function issue(authority: KeyAuthority, imei: string): { stored: StoredDeviceKey; dbKey: Uint8Array } {
  const dbKey = generateDbKey();
  const issuedAt = authority.clock.now();
  const record: KeyRecord = { imei, keyId: keyId(dbKey), issuedAt, issuer: authority.clock.node };
  return { stored: { record, sealed: sealDbKey(authority.kek, dbKey, { imei }) }, dbKey };
}

/** Opens the stored key of a device. @throws CRYPTO_ENVELOPE_INVALID with a different KEK. */
export function openStoredKey(authority: KeyAuthority, imei: string, stored: StoredDeviceKey): Uint8Array {
  return openDbKey(authority.kek, stored.sealed, { imei, keyId: stored.record.keyId });
}

/**
 * Reconciles the device's stored key with the one offered at login (DESIGN.md §2–3):
 * none + none → issue a new key stamped by this server's clock; offered + none → adopt;
 * both → newest wins by protocol's order. An offered timestamp too far ahead is refused before
 * anything is stored, and passing it through the clock makes every later key from here newer.
 * Pure apart from the clock and key generation, so it can run again after a `_rev` conflict.
 * @throws HLC_TOO_FAR_AHEAD, KEY_RECORD_INVALID, KEY_MISMATCH, CRYPTO_ENVELOPE_INVALID.
 */
export function decideDeviceKey(
  authority: KeyAuthority,
  imei: string,
  current: StoredDeviceKey | null,
  offered: OfferedKey | undefined,
): KeyDecision {
  if (offered !== undefined) {
    const accepted = acceptKeyRecord(authority.clock, offered.record, current?.record);
    if (accepted.changed) {
      return {
        stored: { record: accepted.record, sealed: sealDbKey(authority.kek, offered.dbKey, { imei }) },
        dbKey: offered.dbKey,
        outcome: current === null ? 'adopted' : 'replaced',
        previousKeyId: current?.record.keyId ?? null,
      };
    }
  }
  if (current !== null) {
    return { stored: current, dbKey: openStoredKey(authority, imei, current), outcome: 'kept', previousKeyId: null };
  }
  const fresh = issue(authority, imei);
  return { ...fresh, outcome: 'issued', previousKeyId: null };
}

/**
 * Issues a key newer than the current one (admin rekey): the current timestamp goes through the
 * clock first, so the new key wins against it on every server and device.
 */
export function rekey(authority: KeyAuthority, imei: string, current: StoredDeviceKey | null): KeyDecision {
  if (current !== null) authority.clock.receive(current.record.issuedAt);
  const fresh = issue(authority, imei);
  return { ...fresh, outcome: 'rekeyed', previousKeyId: current?.record.keyId ?? null };
}
