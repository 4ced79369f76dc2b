/**
 * @fieldvault/crypto — key generation, Argon2id KDF, key wrapping, HKDF sub-keys, DB and photo
 * file names, chunked AEAD for files, envelope encryption for server-held keys, Ed25519 device
 * keys. Node only (node:crypto + argon2); Uint8Array in, Uint8Array out; no network, no storage.
 */
export { KEY_LENGTH, concatBytes } from './bytes.js';
export { toBase64, fromBase64, toBase64Url, fromBase64Url, toHex, fromHex, utf8 } from './encoding.js';
export { constantTimeEqual } from './constant-time.js';
export { labels } from './labels.js';
export { hkdf, hmacSha256, deriveSubkey, HKDF_MAX_LENGTH } from './hkdf.js';
export { DB_KEY_LENGTH, KEY_ID_PATTERN, generateDbKey, keyId, dbFileName } from './db-key.js';
export { normalizePassword } from './password.js';
export type { KdfParams, KdfParamsJson } from './kdf.js';
export {
  KDF_SALT_LENGTH,
  kdfBounds,
  kdfDefaults,
  defaultKdfParams,
  clampKdfParams,
  deriveKek,
  kdfParamsToJson,
  kdfParamsFromJson,
} from './kdf.js';
export type { DbKind } from './db-kind.js';
export { isDbKind } from './db-kind.js';
export type { KeyWrapContext, WrappedKey } from './key-wrap.js';
export { KEY_WRAP_VERSION, WRAPPED_KEY_LENGTH, wrapKey, unwrapKey } from './key-wrap.js';
export type { WrappedKeyEntry, WrapKeyForUserInput } from './keyring-entry.js';
export { wrapKeyForUser, unwrapKeyForUser } from './keyring-entry.js';
export type { SuccessionEntry } from './succession.js';
export { SUCCESSION_VERSION, wrapSuccessor, unwrapSuccessor } from './succession.js';
export {
  FILE_MAGIC,
  FILE_VERSION,
  FILE_SALT_LENGTH,
  FILE_HEADER_LENGTH,
  FILE_CHUNK_SIZE,
  encryptedFileSize,
  encryptBuffer,
  decryptBuffer,
  decryptToBuffer,
} from './file-format.js';
export { createEncryptStream, createDecryptStream } from './file-streams.js';
export { photoFileName } from './photo-name.js';
export { ENVELOPE_PREFIX, kekId, sealWithKek, openWithKek, sealDbKey, openDbKey } from './envelope.js';
export type { DeviceKeyPair } from './device-key.js';
export {
  DEVICE_PUBLIC_KEY_LENGTH,
  DEVICE_PRIVATE_KEY_LENGTH,
  DEVICE_SIGNATURE_LENGTH,
  generateDeviceKeyPair,
  devicePublicKey,
  signDevice,
  verifyDevice,
} from './device-key.js';
export {
  BACKUP_MAGIC,
  BACKUP_VERSION,
  BACKUP_HEADER_LENGTH,
  backupRecipientId,
  backupHeaderRecipientId,
  parseBackupRecipient,
  parseBackupIdentity,
  isEncryptedPem,
  createBackupEncryptStream,
  createBackupDecryptStream,
} from './backup-format.js';
export type { ArchiveHeader, ArchiveManifest, ArchiveAttachment, ArchiveDoc, ArchiveEntry, BackupDatabase } from './backup-archive.js';
export {
  BACKUP_ARCHIVE_FORMAT,
  BACKUP_ARCHIVE_VERSION,
  BACKUP_DATABASES,
  ArchiveDigest,
  ArchiveReader,
  archiveLine,
  archiveLines,
  checkArchiveDoc,
  documentDigest,
  manifestDifferences,
} from './backup-archive.js';
export { PUBLIC_KEY_PIN_PATTERN, publicKeyPin } from './key-pin.js';
