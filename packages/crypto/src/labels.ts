/**
 * Every fixed label fieldvault uses for domain separation, in one place so that no two purposes
 * share one (a test checks they are distinct). A raw key is only ever used as the key of an
 * HMAC/HKDF over one of these labels (and, for a DB key, as the SQLCipher key); each AES key is
 * derived for exactly one job. Changing a label changes every derived value: bump the version.
 */
export const labels = {
  /** HMAC input for the public key id of a DB key. */
  keyId: 'fieldvault/key-id/v1',
  /** HMAC input for the on-disk database file name. */
  dbName: 'fieldvault/db-name/v1',
  /** AAD domain of a keyring entry (DB key wrapped under a password-derived KEK). */
  keyWrapAad: 'fieldvault/key-wrap/v1',
  /** HKDF info for the sub-key that wraps a successor key under its predecessor. */
  successionKey: 'fieldvault/succession-key/v1',
  /** AAD domain of a key succession entry. */
  successionAad: 'fieldvault/succession/v1',
  /** HKDF info for the per-file key of an encrypted photo file. */
  fileKey: 'fieldvault/file/v1',
  /** HKDF info for the sub-key that names photo files. */
  photoNameKey: 'fieldvault/photo-name/v1',
  /** HMAC input for the public id of a server KEK. */
  kekId: 'fieldvault/kek-id/v1',
  /** HKDF info for the AES key of server envelopes. */
  envelopeKey: 'fieldvault/envelope-key/v1',
  /** AAD domain of a server envelope. */
  envelopeAad: 'fieldvault/envelope/v1',
  /** AAD domain of a DB key sealed for a device record on the server. */
  serverDbKeyAad: 'fieldvault/server-db-key/v1',
} as const;
