/**
 * @fieldvault/storage-sqlcipher — the SDK's `StorageAdapter` for Node: SQLCipher 4 database files
 * (raw 32-byte keys) through better-sqlite3-multiple-ciphers.
 */
export type { PageSize, SqlCipherStorageHandle, SqlCipherStorageOptions } from './sqlcipher-storage.js';
export { DEFAULT_PAGE_SIZE, SqlCipherStorage } from './sqlcipher-storage.js';
