/**
 * The one error catalogue of fieldvault. Every error a user, an app or an admin can hit has a
 * code here with an HTTP status, a message saying what happened and a hint saying what to do.
 * Callers match on `code`, never on message text or `instanceof` across package copies.
 *
 * `docs/errors.md` is generated from this table (`renderErrorCatalogueMarkdown`) and a test keeps
 * the two in step.
 */

export interface ErrorSpec {
  /** HTTP status used when the error crosses the wire. */
  readonly status: number;
  /** What happened, one sentence, no secrets, no internal names. */
  readonly message: string;
  /** What the reader should do about it. */
  readonly hint: string;
}

/** Areas group the catalogue in the docs; the prefix of every code names its area. */
export const errorAreas = {
  INPUT: 'Input validation (any route, any SDK call)',
  HLC: 'Hybrid logical clock timestamps',
  KEY: 'Device database keys and key records',
  RECORD: 'Records and merge',
  SYNC: 'Sync between phones and a server (push, pull, checkpoints)',
  CRYPTO: 'Cryptography (keys, KDF, files, envelopes)',
  VAULT: 'The encrypted device vault (keyring, databases)',
  PHOTO: 'Photos (on the device and on the server)',
  DEVICE: 'Device binding and device state',
  AUTH: 'Logins, first-admin setup and password resets',
  SESSION: 'Session tokens',
  TRANSPORT: 'The connection from the SDK to a server (TLS, responses)',
  USER: 'User accounts and roles (admin API)',
  SIGNUP: 'Pending sign-ups (unverified phone users asking a server for an account)',
  PASSWORD: 'Password policy (NIST SP 800-63B-4)',
  RATE: 'Rate limits',
  STORE: 'The CouchDB store behind the server',
  BACKUP: 'Encrypted backups and restores (admin CLI and server)',
  CONFIG: 'Server configuration and secret files',
  FIELD: 'The field-worker CLI (apps/field): what only a command line can get wrong',
  ADMIN: 'The admin CLI (apps/admin): what only a command line can get wrong',
  INTERNAL: 'Unexpected failures',
} as const;

export const errorCatalogue = {
  // Input
  INPUT_INVALID: {
    status: 400,
    message: 'The request or argument does not match the expected schema.',
    hint: 'Check the field named in the message against docs/protocol.md and send it again.',
  },
  INPUT_HOST_UNKNOWN: {
    status: 400,
    message: 'The Host header of this plain-HTTP request does not name this server.',
    hint: 'Use the server\'s own address over https:// (the name an admin configured in FIELDVAULT_PUBLIC_HOST, or one of the machine\'s addresses).',
  },
  INPUT_TOO_LARGE: {
    status: 413,
    message: 'The request body or value is larger than the configured limit.',
    hint: 'Split the data into smaller batches or raise the limit in the server configuration.',
  },
  INPUT_MALFORMED_JSON: {
    status: 400,
    message: 'The request body is not valid JSON, or repeats a key, or uses a forbidden key such as "__proto__".',
    hint: 'Send a well-formed JSON object with each key at most once.',
  },
  INPUT_ID_INVALID: {
    status: 400,
    message: 'An identifier does not match its strict pattern.',
    hint: 'Use identifiers exactly as the API returned or generated them.',
  },
  INPUT_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'The request body has a content type this route does not accept.',
    hint: 'Send the content type the route documents (docs/protocol.md): "application/json" (UTF-8) for API calls, the photo\'s image type or "application/octet-stream" for a photo upload, "application/x-ndjson" for a restore.',
  },
  INPUT_MALFORMED_REQUEST: {
    status: 400,
    message: 'The request is not well-formed HTTP/1.1 (its request line, a header, or the framing of its body), or its body was cut short.',
    hint: 'Send a well-formed HTTP/1.1 request with a body framed by Content-Length or chunked encoding, never both; if a proxy sits in between, check what it sends. The server closed the connection: open a new one.',
  },
  INPUT_HEADERS_TOO_LARGE: {
    status: 431,
    message: 'The request line and headers together are larger than the server accepts.',
    hint: 'Send a shorter URL or fewer and smaller headers: the session token goes in the "authorization" header, never in the URL; if a proxy adds headers, make it add fewer.',
  },
  INPUT_REQUEST_TIMEOUT: {
    status: 408,
    message: 'The request did not arrive whole within the server\'s request time limit.',
    hint: 'Send it again over a steadier connection (a photo upload resumes where it stopped); an operator can raise FIELDVAULT_REQUEST_TIMEOUT.',
  },
  INPUT_ROUTE_NOT_FOUND: {
    status: 404,
    message: 'There is no such route on this server.',
    hint: 'Check the method and path against docs/protocol.md (all routes start with /v1/).',
  },

  // Hybrid logical clock
  HLC_INVALID: {
    status: 400,
    message: 'A timestamp is not a valid hybrid logical clock value.',
    hint: 'Send timestamps exactly as produced by the fieldvault clock (see docs/protocol.md).',
  },
  HLC_TOO_FAR_AHEAD: {
    status: 400,
    message: 'A timestamp is further ahead of this clock than the allowed skew.',
    hint: "Correct the sending device's clock, then retry; the default allowed skew is 5 minutes.",
  },
  HLC_COUNTER_OVERFLOW: {
    status: 500,
    message: 'Too many clock events happened within one millisecond.',
    hint: 'Retry after a moment; if it persists, report it with the request id.',
  },

  // Keys
  KEY_RECORD_INVALID: {
    status: 400,
    message: 'A database key record is malformed.',
    hint: 'Send key records as returned by a fieldvault server: { imei, keyId, issuedAt, issuer }.',
  },
  KEY_MISMATCH: {
    status: 400,
    message: 'The key material does not match its key id, or key records for different devices were compared.',
    hint: 'Send the key together with the key record it was issued with.',
  },
  KEY_ROLLBACK_REJECTED: {
    status: 409,
    message: 'An older database key was offered where a newer one is already in force.',
    hint: 'Log in online to receive the current key; the device migrates to it automatically.',
  },

  // Records
  RECORD_INVALID: {
    status: 400,
    message: 'A record is malformed.',
    hint: 'Check the record against the form definition and the record schema in docs/protocol.md.',
  },
  RECORD_MERGE_MISMATCH: {
    status: 400,
    message: 'Two different records were given to merge.',
    hint: 'Merge only versions of the same record id.',
  },
  RECORD_TOO_LARGE: {
    status: 413,
    message: 'A record has more fields, versions, photos or characters than the limit allows.',
    hint: 'Keep values under 10 000 characters; a record with a very long history should be archived by an admin and continued as a new record.',
  },
  RECORD_HISTORY_RESERVED: {
    status: 403,
    message: "This record's history is nearly full; its last quarter is kept for the record's creator, supervisors and admins.",
    hint: 'Ask a supervisor to review the record (it may hold many versions pushed by someone else); the record is unchanged on the server and your edit stays on the phone.',
  },
  RECORD_EDIT_STALE: {
    status: 409,
    message: 'An edit carries a timestamp that is not newer than the value it replaces.',
    hint: "Advance the device clock past the record's timestamps (clock.receive) and apply the edit again.",
  },
  RECORD_CONFLICT_NOT_FOUND: {
    status: 404,
    message: 'The record has no conflict with this id.',
    hint: 'Read the record again and pick a conflict id from its current conflicts list.',
  },
  RECORD_FORM_INVALID: {
    status: 400,
    message: 'A form definition is malformed.',
    hint: 'Check the form definition against FormDefinitionSchema in docs/protocol.md: unique field names, options for select fields, min not above max.',
  },
  RECORD_NOT_FOUND: {
    status: 404,
    message: 'There is no record with this id on this server.',
    hint: 'Check the id; push the record before uploading its photos.',
  },
  RECORD_FORBIDDEN: {
    status: 403,
    message: 'Your role does not allow this change to this record.',
    hint: 'Field workers edit the records they can read and may relay records created by others; resolving conflicts and deleting or restoring records created by someone else needs a supervisor or an admin.',
  },
  RECORD_CREATOR_MISMATCH: {
    status: 403,
    message: 'A pushed record changes who created it: its createdBy, createdAt or device differs from the copy the server holds.',
    hint: 'Never change createdBy, createdAt or device of an existing record; push the record as it was received, with edits as new field versions.',
  },
  RECORD_FIELD_FORBIDDEN: {
    status: 400,
    message: 'A record carries a field that only the server sets (pushedBy, receivedAt, seq) or a CouchDB field such as _id or _rev.',
    hint: 'Send records exactly in the record schema (docs/protocol.md); the server adds its own metadata.',
  },

  // Sync
  SYNC_CHECKPOINT_INVALID: {
    status: 400,
    message: 'The sync checkpoint or search cursor was not issued by this server for this query, or was altered.',
    hint: 'Pull again from the start (without "since"), or search again without a cursor; merging makes a repeated pull safe. Keep checkpoints per server.',
  },
  SYNC_LOGIN_REQUIRED: {
    status: 401,
    message: 'This session cannot sync with this server: it is unverified, or it has not logged in online to this server.',
    hint: 'Log in online to this server first (loginOnline): that verifies the user, receives the device key and moves their unverified records into the verified database; then sync.',
  },
  SYNC_TRANSPORT_CHANGED: {
    status: 401,
    message: 'This session logged in to this server through another address or certificate trust than the connection given now; nothing was sent through it.',
    hint: 'Sync, search and fetch the form through the same connection (base URL and TLS pin or CA) the user logged in online with. If the server really moved or changed its certificate, log in online again through the new connection (loginOnline with it), then retry.',
  },
  SYNC_CANCELLED: {
    status: 499,
    message: 'The sync was cancelled before it finished.',
    hint: 'Nothing is lost: every page committed before the cancellation is kept, and the next sync continues from there.',
  },

  // Crypto
  CRYPTO_KEY_INVALID: {
    status: 400,
    message: 'A key has the wrong length or format.',
    hint: 'Database keys and KEKs are 32 random bytes; generate them with the crypto package.',
  },
  CRYPTO_KDF_PARAMS_INVALID: {
    status: 400,
    message: 'Key-derivation parameters are missing or malformed.',
    hint: 'Use the parameters stored with the wrapped key, or the defaults from the crypto package.',
  },
  CRYPTO_FORMAT_UNSUPPORTED: {
    status: 400,
    message: 'Encrypted data uses an unknown format or version.',
    hint: 'Upgrade fieldvault on this device or server to a version that reads this format.',
  },
  CRYPTO_FILE_TAMPERED: {
    status: 422,
    message: 'An encrypted file failed its integrity check: it was altered, reordered or cut short.',
    hint: 'Do not use this file; sync again to fetch an intact copy from the server.',
  },
  CRYPTO_ENVELOPE_INVALID: {
    status: 500,
    message: 'A server-held key could not be decrypted with the server key-encryption key.',
    hint: 'Check that the server runs with the KEK file it used when the key was stored (docs/operations.md).',
  },
  CRYPTO_SUCCESSION_INVALID: {
    status: 422,
    message: 'A key succession entry could not be opened with the previous key.',
    hint: 'Log in online once so the device can receive the current key again.',
  },

  // Vault
  VAULT_WRONG_PASSWORD: {
    status: 401,
    message: 'The password is wrong, or the stored key entry for this user was altered.',
    hint: 'Check the password and try again; if it is right, log in online to restore access.',
  },
  VAULT_KEYRING_CORRUPT: {
    status: 500,
    message: 'The keyring file on this device is damaged, cut short or was edited.',
    hint: 'Nothing was overwritten: restore the keyring file from a backup of the device directory; wiping the device starts over and loses data not yet synced.',
  },
  VAULT_FORMAT_UNSUPPORTED: {
    status: 500,
    message: 'The keyring or a database on this device was written by a newer version of fieldvault.',
    hint: 'Update the app on this device; do not delete the files.',
  },
  VAULT_NOT_FOUND: {
    status: 404,
    message: 'A database file this device needs is missing.',
    hint: 'Log in online to receive your records again; check that the app directory was not moved or partly deleted.',
  },
  VAULT_DB_KEY_REJECTED: {
    status: 422,
    message: 'A database file could not be opened with its key: it was altered, damaged or replaced.',
    hint: 'Nothing was overwritten; restore the device directory from a backup, or log in online to fetch the records again.',
  },
  VAULT_DB_CORRUPT: {
    status: 422,
    message: 'A page of a database file failed its integrity check.',
    hint: 'Stop using this device for data entry; restore the device directory from a backup or log in online to fetch the records again.',
  },
  VAULT_BUSY: {
    status: 503,
    message: "Another process is writing to this phone's database or keyring, and it did not finish in time.",
    hint: 'Nothing was changed by this call: retry in a moment. Keep one Device per device directory per process where you can (a UI process and a background sync worker on the same directory wait for each other).',
  },
  VAULT_DEVICE_MISMATCH: {
    status: 409,
    message: 'This device directory was created for another IMEI than the one given.',
    hint: 'Nothing was changed: pass the IMEI the directory was created with (createDevice({ imei })), e.g. from the same source the app read it from when the device was set up; use another directory for another device. Do not wipe it: the data in it is intact.',
  },
  VAULT_STORAGE_FAILED: {
    status: 500,
    message: 'The device storage failed: it is full, read-only or reported an I/O error.',
    hint: 'Free space on the device or check its permissions, then retry.',
  },
  VAULT_LOCKED: {
    status: 401,
    message: 'This session is logged out; its keys are no longer in memory.',
    hint: 'Log in again.',
  },
  VAULT_WIPED: {
    status: 410,
    message: 'This device was retired and has wiped itself after its final sync: the change was not saved.',
    hint: 'Everything saved before the wipe had reached the servers. Make the change again on the device that replaces this one (an admin enrols it).',
  },
  VAULT_SESSION_OPEN: {
    status: 409,
    message: 'Another session is open on this device.',
    hint: 'Log out of the open session first; one user at a time uses the device.',
  },
  VAULT_USER_EXISTS: {
    status: 409,
    message: 'A user with this username already has keys on this device.',
    hint: 'Log in with that username, or sign up with another one.',
  },
  VAULT_FORBIDDEN: {
    status: 403,
    message: 'This action is not available to the kind of session that asked for it.',
    hint: 'Log in online first: moving records and other verified-only actions need a verified session.',
  },
  VAULT_RECORD_NOT_FOUND: {
    status: 404,
    message: 'There is no record with this id that you can see on this device.',
    hint: 'Check the id; unverified users see only the records they created themselves.',
  },
  VAULT_DEVICE_KEY_INVALID: {
    status: 500,
    message: 'The device key file is malformed or readable by other users.',
    hint: 'Restore the file from a backup or set its mode to 600; if it is lost, an admin must reset the device binding.',
  },

  // Photos
  PHOTO_TOO_LARGE: {
    status: 413,
    message: 'The photo is larger than the configured size limit.',
    hint: 'Take the photo at a lower resolution or compress it, then add it again.',
  },
  PHOTO_TYPE_UNSUPPORTED: {
    status: 415,
    message: 'The photo is not a JPEG, PNG or WebP image.',
    hint: 'Convert the image to JPEG, PNG or WebP, then add it again.',
  },
  PHOTO_NOT_FOUND: {
    status: 404,
    message: 'The record has no such photo, or its file is not stored here.',
    hint: 'Check the photo id on the record; sync to download photos added on other devices.',
  },
  PHOTO_DIGEST_MISMATCH: {
    status: 422,
    message: 'The uploaded photo does not match the size or SHA-256 digest on its record.',
    hint: 'Upload the photo file exactly as its record references it; the partial upload was discarded, so start again at offset 0.',
  },
  PHOTO_OFFSET_MISMATCH: {
    status: 409,
    message: "The upload does not continue where the server's copy of the photo ends.",
    hint: 'Ask GET /v1/photos/<photoId>/upload for the received offset and send the rest from there.',
  },
  PHOTO_ID_TAKEN: {
    status: 409,
    message: 'Another record already uses this photo id; a photo id belongs to the first record that referenced it.',
    hint: "Remove the photo from the record and add the image again (it gets a new id; a removed photo claims no id), then sync. In a push only this version of the record was refused, and its result names the photo (field photos.<photoId>); other records are not affected.",
  },
  PHOTO_REF_CHANGED: {
    status: 409,
    message: 'A pushed record changes a photo the server already holds on it: its digest, size, type, time added or who added it.',
    hint: 'This version of the record was not stored; other records in the push are not affected. A photo\'s entry never changes once added (only its removal may be added): to replace an image, remove the photo and add the new image, which gets a new id. Otherwise push the record with its photos as received from the server.',
  },
  PHOTO_UPLOAD_BUSY: {
    status: 429,
    message: 'You have as many photo uploads in progress as the server allows at once.',
    hint: 'Wait for the time in the Retry-After header, then upload again from GET /v1/photos/<photoId>/upload; the SDK uploads photos one after another.',
  },
  PHOTO_UPLOAD_QUOTA: {
    status: 429,
    message: 'Your unfinished photo uploads already hold as many bytes as the server keeps for one user.',
    hint: 'Finish the photo uploads you started (resume each from GET /v1/photos/<photoId>/upload); unfinished ones are dropped when they expire.',
  },
  PHOTO_UPLOAD_OWNED: {
    status: 409,
    message: 'Another user on another device has started uploading this photo; its partial upload was left as it is.',
    hint: 'Let that upload finish (GET /v1/photos/<photoId>/upload shows its progress) or wait until it expires, then upload again.',
  },

  // Devices
  DEVICE_SIGNATURE_INVALID: {
    status: 401,
    message: 'The device signature is missing, invalid, expired or already used.',
    hint: 'Use the device key pair this device enrolled with; an admin can reset the binding.',
  },
  DEVICE_BINDING_MISMATCH: {
    status: 403,
    message: 'This IMEI is enrolled with a different device key.',
    hint: 'Log in from the device that enrolled this IMEI; if the phone was reset, ask an admin to unbind the device.',
  },
  DEVICE_BLACKLISTED: {
    status: 403,
    message: 'This device is blacklisted: logins and data from it are refused.',
    hint: 'The app must wipe its databases, photos and keyring now; contact an admin if this is a mistake.',
  },
  DEVICE_RETIRED: {
    status: 403,
    message: 'This device is retired and accepts no new users.',
    hint: 'Users who already used this device can log in once more for a last sync, after which the device wipes itself; an admin can enrol a replacement.',
  },
  DEVICE_NOT_FOUND: {
    status: 404,
    message: 'No device with this IMEI has contacted this server.',
    hint: 'Check the IMEI; a device appears after its first login.',
  },

  // Authentication
  AUTH_INVALID_CREDENTIALS: {
    status: 401,
    message: 'The username or password is wrong.',
    hint: 'Check both and try again; repeated failures lock the account for a while.',
  },
  AUTH_BUSY: {
    status: 503,
    message: 'The server is busy checking other logins right now.',
    hint: 'Try again after the time in the Retry-After header; the SDK does this by itself.',
  },
  AUTH_ACCOUNT_LOCKED: {
    status: 429,
    message: 'Too many failed logins for this account; it is locked for now.',
    hint: 'Wait for the time in the Retry-After header, or ask an admin for a password reset.',
  },
  AUTH_FORBIDDEN: {
    status: 403,
    message: 'Your role does not allow this action.',
    hint: 'Ask an admin to do it, or to change your role.',
  },
  AUTH_SETUP_TOKEN_INVALID: {
    status: 403,
    message: 'The setup token is wrong, or this server was started without one.',
    hint: 'Use the one-time setup token the server printed at start on a terminal, or the one in <data>/secrets/setup-token (docs/operations.md).',
  },
  AUTH_SETUP_COMPLETED: {
    status: 410,
    message: 'The first admin already exists; the setup token can no longer be used.',
    hint: 'Log in as an admin and create further users through the admin API.',
  },
  AUTH_RESET_TOKEN_INVALID: {
    status: 400,
    message: 'The invitation or password-reset token is wrong, expired or already used.',
    hint: 'Ask an admin for a new password reset.',
  },
  AUTH_TOTP_REQUIRED: {
    status: 401,
    message: 'This is an admin account: logging in needs the one-time code from its authenticator app.',
    hint: 'Send the current 6-digit code (or one of the recovery codes shown at enrolment) with the login; "fieldvault-admin login" asks for it.',
  },
  AUTH_TOTP_INVALID: {
    status: 401,
    message: 'The one-time code is wrong, too old, or was already used.',
    hint: 'Wait for the authenticator app to show a new code and use that one (each code works once); check the device clock if codes keep failing, or use an unused recovery code.',
  },
  AUTH_TOTP_ENROLMENT_REQUIRED: {
    status: 403,
    message: 'Admin accounts need two-factor authentication, and this account has not set it up yet.',
    hint: 'Run "fieldvault-admin login": it enrols an authenticator app (shows the secret once, asks for a first code) before the first admin session.',
  },
  AUTH_TOTP_ALREADY_ENROLLED: {
    status: 409,
    message: 'Two-factor authentication is already set up for this account.',
    hint: 'Log in with a code from the enrolled authenticator or a recovery code; if both are lost, another admin can run "fieldvault-admin users reset-totp USER".',
  },
  AUTH_TOTP_NOT_ADMIN: {
    status: 403,
    message: 'Only admin accounts use two-factor authentication and the admin console login.',
    hint: 'Field workers and supervisors log in from a phone with the field app and have no authenticator to enrol or reset; if the account should be an admin, an admin changes its role first.',
  },

  // Sessions
  SESSION_INVALID: {
    status: 401,
    message: 'The session token is missing, malformed, expired or revoked.',
    hint: 'Log in again to get a new session token.',
  },

  // Transport (raised by the SDK on the phone, never sent by a server)
  TRANSPORT_UNREACHABLE: {
    status: 503,
    message: 'The server could not be reached, the connection to it was lost before its answer was complete, or it did not answer in time.',
    hint: 'Check the network connection and the server URL, then retry; logging in offline still works meanwhile.',
  },
  TRANSPORT_TLS_UNTRUSTED: {
    status: 502,
    message: "The server's TLS certificate is not trusted: it does not chain to the configured CA, does not name the host, or does not match the pinned fingerprint.",
    hint: 'Nothing was sent. Check the server URL and the CA file or certificate fingerprint configured for this server (the server prints its fingerprint at start); if they are right, someone may be intercepting the connection.',
  },
  TRANSPORT_SERVER_ID_MISMATCH: {
    status: 502,
    message: 'The server at this address says its server id is not the one configured for it.',
    hint: 'Nothing but a challenge request was sent (no password, no key). The server prints its id at start ("fieldvault server <id> listening on …"): configure the server under that id (field CLI: "fieldvault-field servers remove NAME", then "servers add" again, without --server-id to take the id the server tells), or fix the address if it points at another server.',
  },
  TRANSPORT_BAD_RESPONSE: {
    status: 502,
    message: "The server's answer is not a valid fieldvault response: malformed, cut short, too large or of an unexpected shape.",
    hint: 'Nothing from it was saved. Check that the URL points at a fieldvault server (not a proxy or a captive portal) and that app and server versions match, then retry.',
  },

  // Users
  USER_NOT_FOUND: {
    status: 404,
    message: 'There is no user with this username.',
    hint: 'Check the username (lowercase letters, digits, ".", "_" and "-").',
  },
  USER_EXISTS: {
    status: 409,
    message: 'A user with this username already exists.',
    hint: 'Choose another username, or reset the existing user\'s password.',
  },
  USER_DISABLED: {
    status: 403,
    message: 'This user account is disabled.',
    hint: 'Ask an admin to enable the account again.',
  },
  USER_LAST_ADMIN: {
    status: 409,
    message: 'This change would leave the server without an admin who can log in (enabled, with a password set and, where TOTP is required, an authenticator enrolled).',
    hint: 'First make another admin able to log in: add or promote one, have them set their password and log in once (enrolling TOTP); then try again.',
  },

  // Pending sign-ups
  SIGNUP_USERNAME_TAKEN: {
    status: 409,
    message: 'A user with this username already exists on this server.',
    hint: 'If it is you, log in online with your server password; otherwise sign up again on the phone under another username and ask again.',
  },
  SIGNUP_PENDING_ELSEWHERE: {
    status: 409,
    message: 'Another device already asked for an account with this username, and an admin has not decided yet.',
    hint: 'Choose another username, or ask an admin to reject the other request ("fieldvault-admin signups reject USERNAME").',
  },
  SIGNUP_NOT_FOUND: {
    status: 404,
    message: 'There is no sign-up request for this username (from this device).',
    hint: 'Ask for an account first from the phone that signed up ("fieldvault-field request-account", or Device.requestAccount in an app); admins list the requests with "fieldvault-admin signups list".',
  },
  SIGNUP_ALREADY_DECIDED: {
    status: 409,
    message: 'This sign-up request was already approved or rejected.',
    hint: 'Look at it with "fieldvault-admin signups show USERNAME"; an approved user is managed with "fieldvault-admin users".',
  },
  SIGNUP_TOO_MANY_FROM_ADDRESS: {
    status: 429,
    message: 'Too many new sign-up requests came from this network address in the last hour.',
    hint: 'Wait for the time in the Retry-After header and ask again, or ask an admin to invite you ("fieldvault-admin users add"); your records stay on the phone.',
  },
  SIGNUP_SERVER_FULL: {
    status: 503,
    message: 'The server already holds as many pending sign-up requests as it is configured to keep.',
    hint: 'Ask an admin to approve or reject the pending requests ("fieldvault-admin signups list"), then ask again; your records stay on the phone.',
  },
  SIGNUP_QUARANTINE_FULL: {
    status: 413,
    message: 'This sign-up request already holds as many records as the server keeps before an admin decides.',
    hint: 'Nothing to do: the record stays on the phone and is sent by the first sync after an admin approves the account.',
  },
  SIGNUP_ROLE_INVALID: {
    status: 400,
    message: 'A sign-up can be approved as field_worker or supervisor only.',
    hint: 'Approve with --role field_worker or --role supervisor; make an admin afterwards with "fieldvault-admin users role", which requires TOTP enrolment.',
  },

  // Passwords
  PASSWORD_TOO_SHORT: {
    status: 400,
    message: 'The password is too short.',
    hint: 'Use a longer password: a few unrelated words make a long password easy to remember.',
  },
  PASSWORD_TOO_LONG: {
    status: 400,
    message: 'The password is longer than the allowed maximum.',
    hint: 'Use a shorter password.',
  },
  PASSWORD_TOO_COMMON: {
    status: 400,
    message: 'The password is too common or too easy to guess (a known password, a repeated pattern, or it contains the username).',
    hint: 'Choose a different password, for example a few unrelated words.',
  },

  // Rate limits
  RATE_LIMITED: {
    status: 429,
    message: 'Too many requests from this address.',
    hint: 'Wait for the time in the Retry-After header, then retry with backoff.',
  },

  // Store
  STORE_UNAVAILABLE: {
    status: 503,
    message: 'The database store is not reachable right now.',
    hint: 'Retry with backoff; operators should check the CouchDB service (docs/operations.md).',
  },
  STORE_CONNECT_FAILED: {
    status: 503,
    message: 'The server could not reach its CouchDB store at start-up.',
    hint: 'The message names the store address (host:port, never its credentials) and the cause. Start CouchDB or fix COUCHDB_URL (or the URL file), then start the server again; it waits FIELDVAULT_STORE_WAIT_SECONDS for a store that is still starting.',
  },
  STORE_TLS_UNTRUSTED: {
    status: 503,
    message: "The CouchDB store's TLS certificate is not trusted (unknown issuer, expired, or not issued for the host in the URL).",
    hint: 'Nothing was sent to the store. Use the host name the certificate was issued for in COUCHDB_URL; for a certificate from a private CA start the server with NODE_EXTRA_CA_CERTS=<CA PEM file> (docs/operations.md). Never turn certificate checks off.',
  },
  STORE_START_FAILED: {
    status: 500,
    message: 'The embedded database store could not be started.',
    hint: 'Check the detail: the data directory must be writable and not used by another store, and the port must be free; then start again.',
  },
  STORE_CRASHED: {
    status: 503,
    message: 'The embedded database store stopped unexpectedly.',
    hint: 'Restart the server; acknowledged data is on disk. Check the logs for the store exit code.',
  },
  STORE_CONFLICT: {
    status: 503,
    message: 'The data was changed by many concurrent requests and could not be saved.',
    hint: 'Retry after a moment.',
  },
  STORE_SETUP_REQUIRED: {
    status: 503,
    message: 'A database or design document the server needs is missing or outdated, or the server\'s CouchDB user is not a member of it, and that user may not fix it.',
    hint: 'Run `fieldvault-admin setup --couchdb URL` with CouchDB admin credentials (docs/operations.md), then start the server again.',
  },
  STORE_ADMIN_REQUIRED: {
    status: 403,
    message: 'The CouchDB credentials given to setup are missing, wrong, or not those of a CouchDB server admin.',
    hint: 'Give the user name of a CouchDB server admin in the URL (https://admin@couch:6984) and type its password when asked.',
  },

  // Backups and restores
  BACKUP_RECIPIENT_INVALID: {
    status: 400,
    message: 'The backup recipient is not an X25519 public key in PEM format.',
    hint: 'Make a key pair with `openssl genpkey -algorithm X25519 -out backup-key.pem` and `openssl pkey -in backup-key.pem -pubout -out backup-pub.pem`; pass the public one (docs/operations.md).',
  },
  BACKUP_IDENTITY_INVALID: {
    status: 400,
    message: 'The backup identity is not an X25519 private key in PEM format, or its passphrase is wrong.',
    hint: 'Pass the private key whose public half the backup was made for, and type its passphrase if it has one.',
  },
  BACKUP_FORMAT_UNSUPPORTED: {
    status: 400,
    message: 'The file is not a fieldvault backup, or was written by a newer version.',
    hint: 'Check the file name; restore with the fieldvault version that made the backup or a newer one.',
  },
  BACKUP_WRONG_IDENTITY: {
    status: 400,
    message: 'The backup was encrypted to another public key than the identity given.',
    hint: 'Pass the private key of the recipient the backup was made for (the message names both key ids).',
  },
  BACKUP_TAMPERED: {
    status: 400,
    message: 'The backup was altered, cut short, extended or damaged, so it fails authentication; nothing was restored.',
    hint: 'Use another copy of the backup (compare its SHA-256 with the one printed when it was made).',
  },
  BACKUP_INVALID: {
    status: 400,
    message: 'The restore stream is not a valid fieldvault backup archive; nothing was restored.',
    hint: 'Restore with `fieldvault-admin restore`, which decrypts and checks the backup file before sending it.',
  },
  BACKUP_SERVER_NOT_EMPTY: {
    status: 409,
    message: 'Restores go only into an empty server, and this one already holds users, devices, records, photos or audit events.',
    hint: 'Start a new server on an empty data directory (or an empty CouchDB prefix) with the KEK of the backed-up server, and restore before anyone uses it.',
  },
  BACKUP_KEK_MISMATCH: {
    status: 409,
    message: 'The backup was made on a server with another key-encryption key (KEK) than this server\'s, so its device keys and TOTP secrets could not be opened here.',
    hint: 'Start this server with the KEK file of the backed-up server (FIELDVAULT_KEK_FILE; the message names both KEK ids), then restore again.',
  },
  BACKUP_VERIFY_FAILED: {
    status: 500,
    message: 'After the restore the store did not hold exactly what the backup lists (counts or digests differ), so the restore was undone.',
    hint: 'Check the CouchDB store (space, errors in its log) and restore again into an empty server.',
  },
  BACKUP_IN_PROGRESS: {
    status: 409,
    message: 'A restore is already running on this server.',
    hint: 'Wait for it to finish; then the server is no longer empty.',
  },

  // Configuration (checked once at start-up)
  CONFIG_INVALID: {
    status: 500,
    message: 'The server configuration is invalid.',
    hint: 'Fix every setting listed in the message (see docs/operations.md) and start again.',
  },
  CONFIG_SECRET_FILE_INSECURE: {
    status: 500,
    message: 'A secret file (KEK, TLS key, setup token) is readable or writable by other users.',
    hint: 'Run `chmod 600` on the file named in the message (and check its owner), then start again.',
  },
  CONFIG_SECRET_FILE_INVALID: {
    status: 500,
    message: 'A secret file the server needs is missing or does not hold what it should.',
    hint: 'The message names the file, what it is for and how to fix it: restore it from your backup or write it again as the message says, or point the variable named in the message at the right file, then start again.',
  },
  CONFIG_KEK_MISMATCH: {
    status: 500,
    message: 'The server key-encryption key (KEK) file is missing or is not the KEK the store expects: the store holds users or devices, whose keys are sealed under its KEK.',
    hint: 'The message names the KEK id the store expects (ids only, never key bytes) and the KEK file. Restore the KEK file with that id from your backup (or fix FIELDVAULT_KEK_FILE), then start again; or another server uses this prefix on this CouchDB: set FIELDVAULT_COUCHDB_PREFIX to this server\'s own prefix. Do not start with a new KEK: device keys and admin TOTP secrets sealed under the old one could not be opened.',
  },
  CONFIG_DATA_DIR_INSECURE: {
    status: 500,
    message: 'The data directory belongs to another account: that account could replace the KEK, the TLS key or the store in it, and the server cannot make it private.',
    hint: 'The store in it holds child records and password hashes: run `chown` to the account that runs the server and `chmod 700` on the directory named in the message, then start again.',
  },
  CONFIG_DATA_DIR_UNWRITABLE: {
    status: 500,
    message: 'The server may not create, write or read a file or directory it needs (permission denied, or a read-only file system).',
    hint: 'The message names the variable, the path, the account running the server and the owner of the path: give the directory to that account (`chown`, as the message shows) or point the variable at a place that account owns, then start again.',
  },

  // The admin CLI (apps/admin). Never sent by a server; the status is for the report shape only.
  ADMIN_USAGE: {
    status: 400,
    message: 'The command line is not valid.',
    hint: 'See "fieldvault-admin help <command>" for the options of each command.',
  },
  ADMIN_NO_SERVER: {
    status: 400,
    message: 'No server is configured for this admin CLI.',
    hint: 'Pass --server URL with --ca FILE or --pin FINGERPRINT to "fieldvault-admin init" or "fieldvault-admin login"; they remember it.',
  },
  ADMIN_NOT_LOGGED_IN: {
    status: 400,
    message: 'There is no admin session: not logged in, logged out, or the session expired.',
    hint: 'Run "fieldvault-admin login" (password and a code from your authenticator app).',
  },
  ADMIN_INPUT_REQUIRED: {
    status: 400,
    message: 'An answer (password, setup token or one-time code) is needed, but none was given.',
    hint: 'Run the command in a terminal and type it, or pipe the answers in, one per line, and pass --stdin.',
  },
  ADMIN_STDIN_EXHAUSTED: {
    status: 400,
    message: 'Standard input (--stdin) ended before every answer this command asks for was read.',
    hint: 'Pipe one line per answer, in the order the command asks them (docs/admin-cli.md, "Answers on standard input").',
  },
  ADMIN_CODE_MALFORMED: {
    status: 400,
    message: 'That is not a one-time code: type the 6 digits your authenticator app shows, or a recovery code (xxxx-xxxx-xxxx-xxxx).',
    hint: 'Run the command again with the code as the app shows it now (nothing was sent to the server).',
  },
  ADMIN_PASSWORD_MISMATCH: {
    status: 400,
    message: 'The two passwords typed do not match.',
    hint: 'Run the command again and type the same password twice.',
  },
  ADMIN_CONFIG_CORRUPT: {
    status: 400,
    message: 'A file in the admin CLI directory (config.json or session.json) is damaged or was edited by hand.',
    hint: 'Fix or delete the file named in the message, then run "fieldvault-admin login" again.',
  },
  ADMIN_CONFIG_INSECURE: {
    status: 400,
    message: 'The admin CLI directory or its session file can be read by other users of this machine.',
    hint: 'Run "chmod 700" on the directory and "chmod 600" on its files (the session token is a secret), then log in again.',
  },
  ADMIN_FILE_UNREADABLE: {
    status: 400,
    message: 'A file named on the command line cannot be read.',
    hint: 'Check the path and its permissions.',
  },
  ADMIN_FILE_UNWRITABLE: {
    status: 400,
    message: 'An output file named on the command line cannot be created: its directory is missing or not writable.',
    hint: 'Create the directory or choose a path you may write to (with room for the file), then run the command again.',
  },
  ADMIN_INTERRUPTED: {
    status: 400,
    message: 'The command was interrupted.',
    hint: 'Run the command again when ready; nothing was left half done on the server.',
  },
  ADMIN_FILE_EXISTS: {
    status: 400,
    message: 'The output file exists already, or a secret file there belongs to another CouchDB or user.',
    hint: 'Choose another path, or move the existing file away first (a backup or secret is never overwritten silently).',
  },
  ADMIN_NOT_CONFIRMED: {
    status: 400,
    message: 'This action needs a confirmation that was not given.',
    hint: 'Pass --yes to confirm (the action is logged in the audit log with your name).',
  },

  // The field-worker CLI (apps/field). Never sent by a server; the status is for the report shape only.
  FIELD_USAGE: {
    status: 400,
    message: 'The command line is not valid.',
    hint: 'See "fieldvault-field help <command>" for the options of each command.',
  },
  FIELD_NO_USER: {
    status: 400,
    message: 'No user was given and none is remembered on this device.',
    hint: 'Pass --user NAME, or log in once with "fieldvault-field login --user NAME" so the name is remembered.',
  },
  FIELD_PASSWORD_REQUIRED: {
    status: 400,
    message: 'A password is needed, but there is no terminal to ask for it and --password-stdin was not given.',
    hint: 'Run the command in a terminal, or pipe the password in and pass --password-stdin.',
  },
  FIELD_PASSWORD_MISMATCH: {
    status: 400,
    message: 'The two passwords typed do not match.',
    hint: 'Run the command again and type the same password twice.',
  },
  FIELD_SERVER_UNKNOWN: {
    status: 404,
    message: 'No server with this name is configured on this device.',
    hint: 'List the servers with "fieldvault-field servers list"; add one with "fieldvault-field servers add NAME URL --server-id ID --pin FINGERPRINT".',
  },
  FIELD_SERVER_AMBIGUOUS: {
    status: 400,
    message: 'No server was named and this device does not have exactly one configured.',
    hint: 'Name the server (see "fieldvault-field servers list"), or add one with "fieldvault-field servers add".',
  },
  FIELD_SERVER_EXISTS: {
    status: 409,
    message: 'A server with this name is already configured.',
    hint: 'Choose another name, or remove the old entry first with "fieldvault-field servers remove NAME".',
  },
  FIELD_SERVER_ID_EXISTS: {
    status: 409,
    message: 'This server id is already configured on this device under another name.',
    hint: 'The server is configured already: use that name (see "fieldvault-field servers list"), or remove that entry first with "fieldvault-field servers remove NAME" to add it under a new name.',
  },
  FIELD_FILE_UNREADABLE: {
    status: 400,
    message: 'A file named on the command line cannot be read, or an output file cannot be created.',
    hint: 'Check the path and its permissions; an output file (--out) must not exist yet.',
  },
  FIELD_HOME_CORRUPT: {
    status: 500,
    message: 'The CLI configuration file (config.json in the CLI home) is damaged or was edited by hand.',
    hint: 'Nothing was overwritten: restore config.json from a backup or fix the JSON; the encrypted data under sdk/ is untouched.',
  },
  FIELD_HOME_BUSY: {
    status: 423,
    message: 'Another fieldvault-field command is using this device (CLI home) right now.',
    hint: 'Wait for it to finish and run the command again; one command at a time uses a device, as one user at a time uses a phone.',
  },
  FIELD_HOME_UNWRITABLE: {
    status: 500,
    message: 'The CLI home directory cannot be created or written.',
    hint: 'Check --home / FIELDVAULT_FIELD_HOME, free space and permissions.',
  },
  FIELD_INTERRUPTED: {
    status: 499,
    message: 'The command was interrupted.',
    hint: 'Run the command again when ready; what it had already committed on the device is kept.',
  },
  FIELD_USER_UNKNOWN: {
    status: 404,
    message: 'No user with this name has signed up or logged in on this device.',
    hint: 'Check the name ("fieldvault-field status --locked" lists the users of this device); a user with a server account logs in online once ("fieldvault-field login --user NAME SERVER"), a new user signs up ("fieldvault-field signup --user NAME").',
  },
  FIELD_IMEI_UNKNOWN: {
    status: 500,
    message: 'config.json is missing, but the device already holds data (sdk/) and its IMEI cannot be read back from it.',
    hint: 'Nothing was changed: give the device its old IMEI again with "fieldvault-field init --imei IMEI" (from a backup of config.json, or from an admin, who sees it among the server\'s devices); do not wipe the device.',
  },

  // Internal
  INTERNAL_ERROR: {
    status: 500,
    message: 'An unexpected error happened.',
    hint: 'Retry; if it persists, report it with the request id from the server log.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** Non-secret context that may accompany an error (ids, field names, limits). Never key material. */
export type ErrorDetails = Readonly<Record<string, string | number | boolean>>;

export interface FieldvaultErrorOptions {
  /** Extra, non-secret detail appended to the message (a field name, a limit). */
  readonly detail?: string;
  readonly details?: ErrorDetails;
  readonly cause?: unknown;
}

/** The one error class. `code` is the contract; the message is for humans. */
export class FieldvaultError extends Error {
  override readonly name = 'FieldvaultError';
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly hint: string;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, options: FieldvaultErrorOptions = {}) {
    const spec: ErrorSpec = errorCatalogue[code];
    const detail = options.detail === undefined ? '' : ` (${options.detail})`;
    super(`${spec.message}${detail} ${spec.hint}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.statusCode = spec.status;
    this.hint = spec.hint;
    this.details = options.details;
  }
}

/** True for any catalogued error, also across duplicated package copies (matches on `code`). */
export function isFieldvaultError(err: unknown): err is FieldvaultError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    Object.hasOwn(errorCatalogue, (err as { code: string }).code) &&
    (err as { name?: unknown }).name === 'FieldvaultError'
  );
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(errorCatalogue, value);
}

/** Codes only the SDK raises, about the phone's own side; a server never sends them. */
const SDK_ONLY_CODES: ReadonlySet<string> = new Set(['SYNC_LOGIN_REQUIRED', 'SYNC_TRANSPORT_CHANGED', 'SYNC_CANCELLED']);

/**
 * True for codes the SDK (or the field CLI) raises itself and never takes from a server
 * (`TRANSPORT_*`, `FIELD_*`, SYNC_LOGIN_REQUIRED, SYNC_CANCELLED): an answer carrying one is a bad response.
 */
export function isSdkOnlyCode(code: string): boolean {
  return code.startsWith('TRANSPORT_') || code.startsWith('FIELD_') || code.startsWith('ADMIN_') || SDK_ONLY_CODES.has(code);
}

/** Wire shape of every error response. */
export interface ErrorBody {
  readonly statusCode: number;
  readonly code: ErrorCode;
  readonly error: string;
  readonly message: string;
}

const statusNames: Readonly<Record<number, string>> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 409: 'Conflict',
  410: 'Gone', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity',
  423: 'Locked', 431: 'Request Header Fields Too Large', 499: 'Client Closed Request',
  429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
};

/**
 * The body sent for `err`. Anything not catalogued becomes a generic INTERNAL_ERROR so that no
 * driver or CouchDB message (which may carry ids, paths or data) reaches a client.
 */
export function toErrorBody(err: unknown): ErrorBody {
  const e = isFieldvaultError(err) ? err : new FieldvaultError('INTERNAL_ERROR');
  return { statusCode: e.statusCode, code: e.code, error: statusNames[e.statusCode] ?? 'Error', message: e.message };
}

/** Markdown for docs/errors.md, generated from the catalogue so the two cannot drift. */
export function renderErrorCatalogueMarkdown(): string {
  const lines: string[] = [
    '# Error catalogue',
    '',
    '<!-- Generated from packages/protocol/src/errors.ts by `npm run docs:errors`; a test checks it. Do not edit by hand. -->',
    '',
    'Every error fieldvault returns or throws has a stable `code`. Match on the code, not the message.',
    'Over HTTP the body is `{ statusCode, code, error, message }`; in the SDK the thrown',
    '`FieldvaultError` has the same `code` and `statusCode`, plus `hint`.',
    '',
  ];
  const codes = Object.keys(errorCatalogue) as ErrorCode[];
  for (const [area, title] of Object.entries(errorAreas)) {
    const inArea = codes.filter((c) => c.startsWith(`${area}_`));
    if (inArea.length === 0) continue;
    lines.push(`## ${title}`, '', '| code | status | what happened | what to do |', '|---|---|---|---|');
    for (const c of inArea) {
      const s: ErrorSpec = errorCatalogue[c];
      lines.push(`| \`${c}\` | ${s.status} | ${s.message.replaceAll('|', '\\|')} | ${s.hint.replaceAll('|', '\\|')} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
