/**
 * @fieldvault/client — the SDK core: a `Device` (keyring, verified/unverified/temporary encrypted
 * databases, offline sign-up and login, key succession, crash-safe migration), the records and
 * photos of a `Session`, the online login (`Device.loginOnline` over `createHttpTransport`), sync
 * with servers (`Session.sync`, per-server acknowledgements and checkpoints), and
 * the seams a platform fills in: `StorageAdapter` (an encrypted SQLite driver, e.g.
 * @fieldvault/storage-sqlcipher), `FileSystem`, `DeviceKeyStore`, `Transport`, `Logger`.
 */
// Re-exported so that an app needs only this package (audit L1): catch errors by `code`
// (`isFieldvaultError(err) && err.code === …`) and review conflicts without a second dependency.
export type { ErrorCode, ChildRecord, FieldValue, FieldVersion, PhotoRef, PhotoType, Conflict } from '@fieldvault/protocol';
export { FieldvaultError, isFieldvaultError, conflictId, openConflicts, needsReview } from '@fieldvault/protocol';
// Reading a record for display (docs/sdk.md, "A record's shape").
export { visibleFields, isDeleted, recordUpdatedAt } from '@fieldvault/protocol';
export type { OpenConflict } from './conflicts.js';
export { describeOpenConflicts } from './conflicts.js';
export type { SqlExecutor, SqlRow, SqlValue, StorageAdapter, StorageHandle, OpenOptions } from './storage-adapter.js';
export type { FileSystem } from './file-system.js';
export type { NodeFileSystemOptions } from './node-file-system.js';
export { DEFAULT_LOCK_STALE_MS, DEFAULT_LOCK_WAIT_MS, createNodeFileSystem } from './node-file-system.js';
export type { DeviceKeyStore } from './device-key-store.js';
export { DEVICE_KEY_FILE, createFileDeviceKeyStore } from './device-key-store.js';
export type { Logger } from './logger.js';
export { silentLogger } from './logger.js';
export type {
  Transport,
  TransportCallOptions,
  PullRequest,
  PhotoUpload,
  PhotoTransferOptions,
  PhotoUploadOptions,
  PhotoDownload,
  DownloadedPhoto,
} from './transport.js';
export type { HttpTransport, HttpTransportOptions, HttpTransportTls } from './http-transport.js';
export { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_SYNC_RESPONSE_BYTES, DEFAULT_TIMEOUT_MS, createHttpTransport } from './http-transport.js';
/** The form of a public-key pin `tls.pinSha256` takes (`sha256//…`). */
export { PUBLIC_KEY_PIN_PATTERN } from '@fieldvault/crypto';
export type { RetirementHold, SyncOptions, SyncProgress, SyncSummary, SyncFailure, SyncBatchOptions } from './sync-engine.js';
export { DEFAULT_PUSH_BYTES, DEFAULT_PUSH_RECORDS, MAX_INTERNAL_ERROR_BATCHES } from './sync-engine.js';
export type { RetryOptions } from './retry.js';
export { DEFAULT_RETRY } from './retry.js';
export type { PendingCounts } from './sync-state.js';
/** For query-plan tests of storage adapters. */
export { PENDING_PAGE_SQL } from './sync-state.js';
export type { ServerLogin } from './server-logins.js';
export type { KeyringContent, PendingMigration } from './keyring.js';
export { KEYRING_FILE, KEYRING_FORMAT, KEYRING_VERSION, parseKeyring, serializeKeyring } from './keyring.js';
export { SCHEMA_VERSION, ensureSchema } from './vault-schema.js';
export type { RecordQuery, ListOptions, RecordFlag, RecordStoreOptions } from './record-store.js';
export { RECORD_FLAGS, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE, RecordStore, searchText } from './record-store.js';
export type { StoredPhoto, PhotoContent, PhotoInput, CreatedPhoto, RecordWithPhotos } from './photo-store.js';
export { PHOTO_DIRECTORY, DEFAULT_PHOTO_MAX_BYTES, photoPath } from './photo-store.js';
export { detectPhotoType, stripImageMetadata } from './image-metadata.js';
export type { MigrationStep, MigrationEvent, MigrationListener, MigrationResult } from './migration.js';
export type { SetPasswordWithTokenInput, PasswordSet } from './password-token.js';
export { setPasswordWithToken } from './password-token.js';
export type { KnownServer } from './session.js';
export { Session } from './session.js';
export type { DeviceOptions, KdfCost } from './device-options.js';
export type { AdoptKeyInput, DeviceUser, OnlineLoginOptions } from './device.js';
export type { AccountRequestOptions, AccountRequestResult, AccountStatus } from './account-request.js';
export { Device, createDevice } from './device.js';
export type { BlockedMark } from './blocked-mark.js';
export { BLOCKED_MARK_FILE } from './blocked-mark.js';
