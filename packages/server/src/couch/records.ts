import type { ChildRecord, FieldvaultError, KeyRecord, PhotoType } from '@fieldvault/protocol';
import { ROLES, type Role } from '@fieldvault/protocol';

/**
 * The server's stored entities, as the rest of the server sees them. The repository maps them to
 * CouchDB documents (adding `_id`, `_rev`, `type`); nothing outside `couch/` sees a document.
 * Times are milliseconds since the epoch.
 */

export { ROLES, type Role };

export interface UserRecord {
  readonly username: string;
  readonly role: Role;
  readonly disabled: boolean;
  /** Argon2id PHC string, or null until the user sets a password from an invitation. */
  readonly passwordHash: string | null;
  /**
   * Bumped on password set/reset and on disable: sessions and reset tokens carry the epoch they
   * were issued under and die when it moves, so revocation is one write to the user document.
   */
  readonly epoch: number;
  readonly createdAt: number;
  readonly createdBy: string;
  readonly updatedAt: number;
  readonly passwordChangedAt: number | null;
  /** Admin two-factor state (RFC 6238 TOTP); null until an enrolment starts. */
  readonly totp: TotpState | null;
}

/** An admin's TOTP enrolment. Nothing here is usable without the server KEK. */
export interface TotpState {
  /** The shared secret sealed with the server KEK (`sealWithKek`, AAD binds the username). */
  readonly sealed: string;
  /** When the first code was confirmed; null while the enrolment is pending (no login yet). */
  readonly confirmedAt: number | null;
  /** The last accepted time step: a code of this step or an older one is a replay. */
  readonly lastStep: number;
  /** HMAC-SHA-256 (key derived from the KEK) of each unused recovery code; used ones are removed. */
  readonly recoveryCodes: readonly string[];
}

export const DEVICE_STATUSES = ['active', 'blacklisted', 'retired'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/** A device DB key as stored: the public record plus the key sealed under the server KEK. */
export interface StoredDeviceKey {
  readonly record: KeyRecord;
  /** `sealWithKek` envelope; the AAD binds the IMEI and key id. */
  readonly sealed: string;
}

export interface DeviceRecord {
  readonly imei: string;
  readonly status: DeviceStatus;
  /** Enrolled Ed25519 public key (base64 of 32 raw bytes), or null when not (or no longer) bound. */
  readonly publicKey: string | null;
  readonly boundAt: number | null;
  readonly firstSeenAt: number;
  readonly lastSeenAt: number;
  /** Usernames that logged in on this device, oldest first, capped. */
  readonly usersSeen: readonly string[];
  readonly key: StoredDeviceKey | null;
  /** Bumped on blacklist and unbind; sessions of an older epoch are invalid. */
  readonly epoch: number;
  readonly statusChangedAt: number | null;
  readonly statusChangedBy: string | null;
  /** Last push or pull from this device (throttled: updated at most every few seconds). */
  readonly lastSyncAt?: number | null;
}

export type SessionRevocation = 'device_blacklisted';

export interface SessionRecord {
  /** SHA-256 (hex) of the bearer token; the token itself is never stored. */
  readonly tokenHash: string;
  readonly username: string;
  readonly imei: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly userEpoch: number;
  readonly deviceEpoch: number;
  /** Kept (not deleted) when a device is blacklisted, so the device is told to wipe. */
  readonly revoked: SessionRevocation | null;
  /**
   * `console`: an admin console session (password + TOTP, no device; `imei` is empty). It is
   * accepted by admin-only routes only. Absent on device sessions.
   */
  readonly kind?: 'console';
}

export interface ChallengeRecord {
  /** SHA-256 (hex) of the nonce. */
  readonly hash: string;
  readonly imei: string;
  readonly expiresAt: number;
}

export type ResetPurpose = 'invitation' | 'reset';

export interface ResetRecord {
  /** SHA-256 (hex) of the token. */
  readonly tokenHash: string;
  readonly username: string;
  readonly purpose: ResetPurpose;
  readonly expiresAt: number;
  /** The user's epoch when issued: a later reset or password change voids this token. */
  readonly userEpoch: number;
}

/** Consecutive login failures for one username (known or not, so both look the same). */
export interface ThrottleRecord {
  /** SHA-256 (hex) of the username. */
  readonly key: string;
  readonly failures: number;
  readonly lockedUntil: number | null;
  readonly lastFailureAt: number;
  /** When the sweep may drop it; null keeps it (a hard lock lasts until a password reset). */
  readonly expiresAt: number | null;
}

export const AUDIT_EVENTS = [
  'setup.admin_created',
  'login.ok',
  'login.failed',
  /** Console login step 1: the password was right, the second factor is asked next (nothing granted). */
  'login.code_required',
  'logout',
  'key.issued',
  'key.adopted',
  'key.replaced',
  'key.rekeyed',
  'device.enrolled',
  'device.binding_mismatch',
  'device.blacklisted',
  'device.retired',
  'device.reinstated',
  'device.unbound',
  'user.created',
  'user.updated',
  'user.password_reset',
  'user.password_set',
  'user.totp_enrolment_started',
  'user.totp_enrolled',
  'user.totp_reset',
  'user.recovery_code_used',
  'sync.push',
  'sync.pull',
  'backup.created',
  'backup.failed',
  'backup.restored',
  'signup.requested',
  'signup.approved',
  'signup.rejected',
] as const;
export type AuditEventType = (typeof AUDIT_EVENTS)[number];

/** Audit details are ids, codes and counts only: never keys, passwords, tokens or documents. */
export type AuditDetails = Readonly<Record<string, string | number | boolean | null>>;

export interface AuditEntry {
  readonly event: AuditEventType;
  /** Who did it (the authenticated user), null for unauthenticated requests. */
  readonly actor: string | null;
  /** The user it concerns. */
  readonly username: string | null;
  /** The device it concerns. */
  readonly imei: string | null;
  readonly ip: string | null;
  readonly requestId: string | null;
  readonly details: AuditDetails;
}

export interface AuditRecord extends AuditEntry {
  readonly id: string;
  readonly at: number;
}

export interface AuditQuery {
  readonly username?: string;
  readonly imei?: string;
  readonly event?: AuditEventType;
  /** Inclusive lower bound (ms). */
  readonly from?: number;
  /** Inclusive upper bound (ms). */
  readonly to?: number;
  readonly limit: number;
  /** Opaque cursor from a previous page. */
  readonly cursor?: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Pass back to get the next page; null on the last page. */
  readonly nextCursor: string | null;
}

/**
 * A child record as the server keeps it: the record itself (exactly the protocol's record, no
 * server data mixed in) wrapped with what the server stamped from the sessions that pushed it.
 */
export interface RecordEnvelope {
  readonly record: ChildRecord;
  /** Who pushed the last change (from the session, never from the record). */
  readonly pushedBy: string;
  /** When the last change arrived. */
  readonly receivedAt: number;
  /** Device (IMEI of the session) that pushed the last change. */
  readonly pushedFrom: string;
  /** Who pushed the record first, and when. */
  readonly firstPushedBy: string;
  readonly firstReceivedAt: number;
}

/** A stored photo (its bytes are an attachment of the same document). */
export interface PhotoRecord {
  readonly photoId: string;
  readonly recordId: string;
  readonly sha256: string;
  readonly size: number;
  readonly contentType: PhotoType;
  readonly uploadedBy: string;
  readonly uploadedAt: number;
}

/** An unfinished photo upload: the bytes `[0, received)` so far are its attachment. */
export interface UploadRecord {
  readonly photoId: string;
  readonly recordId: string;
  readonly sha256: string;
  readonly size: number;
  readonly contentType: PhotoType;
  readonly received: number;
  readonly startedBy: string;
  /** IMEI of the session that started it: that device (any user) or `startedBy` (any device) may continue it (security audit L7). */
  readonly startedFrom?: string;
  readonly updatedAt: number;
  /** When the sweep may drop it. */
  readonly expiresAt: number;
}

/** One row of the records changes feed: its opaque `seq`, and the record when it is one. */
export interface RecordChange {
  /** CouchDB's sequence of this change, opaque (a number in the stand-in, a string in CouchDB 3). */
  readonly seq: unknown;
  readonly envelope: RecordEnvelope | undefined;
}

/** One row of the records search index: its key (for paging), its value, and the record. */
export interface IndexRow {
  readonly key: readonly unknown[];
  readonly value: unknown;
  readonly envelope: RecordEnvelope | undefined;
}

/** The outcome of {@link RecordMutation} for one record. */
export type RecordWriteOutcome =
  | { readonly status: 'written'; readonly envelope: RecordEnvelope }
  | { readonly status: 'unchanged'; readonly envelope: RecordEnvelope | undefined }
  | { readonly status: 'error'; readonly error: FieldvaultError };

/**
 * Computes the next state of one record from the stored one (undefined: not stored yet). Return
 * undefined to write nothing; throw a FieldvaultError to refuse this record alone. Runs again on
 * a `_rev` conflict, so it must have no side effects.
 */
export type RecordMutation = (id: string, current: RecordEnvelope | undefined) => RecordEnvelope | undefined;

export const SIGNUP_STATES = ['pending', 'approved', 'rejected'] as const;
export type SignupState = (typeof SIGNUP_STATES)[number];

/**
 * A sign-up request of an unverified phone user (issue 7), kept in the `pending` database. Once
 * decided, only the outcome stays (no password hash, no records), so the phone can learn it.
 */
export interface SignupRecord {
  readonly username: string;
  readonly status: SignupState;
  /** Argon2id PHC string of the password chosen on the phone; null once decided. */
  readonly passwordHash: string | null;
  /** The asking device: only it may update the request or read its status. */
  readonly imei: string;
  readonly devicePublicKey: string;
  readonly requestedAt: number;
  readonly updatedAt: number;
  readonly decidedAt: number | null;
  readonly decidedBy: string | null;
  /** The role given at approval; null otherwise. */
  readonly role: Role | null;
}

/** A record sent with a sign-up request, kept apart from the records database until approval. */
export interface QuarantinedRecord {
  readonly username: string;
  readonly record: ChildRecord;
  readonly receivedAt: number;
  readonly pushedFrom: string;
}
