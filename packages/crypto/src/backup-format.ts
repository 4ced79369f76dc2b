import { createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Transform } from 'node:stream';
import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';
import { GCM_NONCE_LENGTH, GCM_TAG_LENGTH, aesGcmOpen, aesGcmSeal } from './aes-gcm.js';
import { KEY_LENGTH, randomBytes, wipe } from './bytes.js';
import { ByteQueue } from './byte-queue.js';
import { fromBase64Url, toHex } from './encoding.js';
import { FileDecryptor, FileEncryptor } from './file-format.js';
import { codecStream } from './file-streams.js';
import { hkdf } from './hkdf.js';

/*
 * Encrypted backup file, version 1:
 *
 *   header    = "FVBK" || 0x01 || recipientId (16) || ephemeral X25519 public key (32) || nonce (12)
 *               || wrappedKey (32 + 16 tag)                                                  113 bytes
 *   body      = the chunked AEAD file format of file-format.ts ("FVF" v1, 64 KiB chunks, counter
 *               nonces, last-chunk flag) keyed with a random 32-byte data key
 *
 *   recipientId = SHA-256(SPKI DER of the recipient's X25519 public key)[0..16]   (public, names the key)
 *   wrapKey     = HKDF-SHA-256(X25519(ephemeral, recipient), salt = ephPub || recipientPub,
 *                              info = "fieldvault/backup-wrap/v1", 32)
 *   wrappedKey  = AES-256-GCM(wrapKey, nonce, dataKey, aad = header bytes before the nonce)
 *
 * X25519 rather than RSA-OAEP: one fixed curve and key size (no padding or size choices to get
 * wrong), 32-byte keys that openssl makes in one command, and the same ECIES shape as `age`. A
 * fresh ephemeral key and data key per backup, so two backups never share a key. The recipient
 * id lets restore say "this backup is for another key" before trying anything.
 */

export const BACKUP_MAGIC = new Uint8Array([0x46, 0x56, 0x42, 0x4b]); // "FVBK"
export const BACKUP_VERSION = 1;
const RECIPIENT_ID_LENGTH = 16;
const X25519_LENGTH = 32;
const AAD_LENGTH = BACKUP_MAGIC.byteLength + 1 + RECIPIENT_ID_LENGTH + X25519_LENGTH;
export const BACKUP_HEADER_LENGTH = AAD_LENGTH + GCM_NONCE_LENGTH + KEY_LENGTH + GCM_TAG_LENGTH;
const WRAP_INFO = 'fieldvault/backup-wrap/v1';

function rawX25519(key: KeyObject): Uint8Array {
  const x = key.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new FieldvaultError('BACKUP_RECIPIENT_INVALID');
  return fromBase64Url(x);
}

/** The public id of a backup key pair (32 hex chars): SHA-256 of the public key's SPKI, cut to 16 bytes. */
export function backupRecipientId(publicKey: KeyObject): string {
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(spki).digest().subarray(0, RECIPIENT_ID_LENGTH).toString('hex');
}

/**
 * Parses the recipient of a backup: an X25519 public key in PEM (SPKI) form.
 * @throws BACKUP_RECIPIENT_INVALID for anything else (RSA, Ed25519, a private key, garbage).
 */
export function parseBackupRecipient(pem: string): KeyObject {
  let key: KeyObject;
  try {
    if (pem.includes('PRIVATE KEY')) throw new Error('a private key');
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw new FieldvaultError('BACKUP_RECIPIENT_INVALID');
  }
  if (key.asymmetricKeyType !== 'x25519') {
    throw new FieldvaultError('BACKUP_RECIPIENT_INVALID', { detail: `a ${key.asymmetricKeyType ?? 'unknown'} key` });
  }
  return key;
}

/**
 * Parses the identity that opens a backup: an X25519 private key in PEM (PKCS#8) form, optionally
 * encrypted with a passphrase (`openssl pkey -aes256`).
 * @throws BACKUP_IDENTITY_INVALID when it is not one, or the passphrase is wrong or missing.
 */
export function parseBackupIdentity(pem: string, passphrase?: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem', ...(passphrase === undefined ? {} : { passphrase }) });
  } catch {
    throw new FieldvaultError('BACKUP_IDENTITY_INVALID');
  }
  if (key.asymmetricKeyType !== 'x25519') {
    throw new FieldvaultError('BACKUP_IDENTITY_INVALID', { detail: `a ${key.asymmetricKeyType ?? 'unknown'} key` });
  }
  return key;
}

/** True when a PEM private key is passphrase-protected (then ask for it before parsing). */
export function isEncryptedPem(pem: string): boolean {
  return pem.includes('BEGIN ENCRYPTED PRIVATE KEY') || /Proc-Type:\s*4,ENCRYPTED/.test(pem);
}

function wrapKeyFor(shared: Uint8Array, ephemeral: Uint8Array, recipient: Uint8Array): Uint8Array {
  const salt = new Uint8Array(X25519_LENGTH * 2);
  salt.set(ephemeral, 0);
  salt.set(recipient, X25519_LENGTH);
  return hkdf(shared, salt, WRAP_INFO, KEY_LENGTH);
}

/** A new data key wrapped to `recipient`: the 113-byte header and the key for the body. */
function sealHeader(recipient: KeyObject): { header: Uint8Array; dataKey: Uint8Array } {
  const eph = generateKeyPairSync('x25519');
  const ephPub = rawX25519(eph.publicKey);
  const recipientPub = rawX25519(recipient);
  const shared = new Uint8Array(diffieHellman({ privateKey: eph.privateKey, publicKey: recipient }));
  const wrapKey = wrapKeyFor(shared, ephPub, recipientPub);
  const dataKey = randomBytes(KEY_LENGTH);
  const header = new Uint8Array(BACKUP_HEADER_LENGTH);
  header.set(BACKUP_MAGIC, 0);
  header[BACKUP_MAGIC.byteLength] = BACKUP_VERSION;
  header.set(Buffer.from(backupRecipientId(recipient), 'hex'), BACKUP_MAGIC.byteLength + 1);
  header.set(ephPub, BACKUP_MAGIC.byteLength + 1 + RECIPIENT_ID_LENGTH);
  const nonce = randomBytes(GCM_NONCE_LENGTH);
  header.set(nonce, AAD_LENGTH);
  header.set(aesGcmSeal(wrapKey, nonce, dataKey, header.subarray(0, AAD_LENGTH)), AAD_LENGTH + GCM_NONCE_LENGTH);
  wipe(shared, wrapKey);
  return { header, dataKey };
}

/**
 * Checks the magic and version of the first bytes seen so far.
 * @throws BACKUP_FORMAT_UNSUPPORTED as soon as they rule out a version-1 backup.
 */
function checkMagic(seen: Uint8Array): void {
  for (let i = 0; i < Math.min(seen.byteLength, BACKUP_MAGIC.byteLength + 1); i++) {
    const expected = i < BACKUP_MAGIC.byteLength ? BACKUP_MAGIC[i] : BACKUP_VERSION;
    if (seen[i] !== expected) {
      throw new FieldvaultError('BACKUP_FORMAT_UNSUPPORTED', {
        detail: i < BACKUP_MAGIC.byteLength ? 'not a fieldvault backup' : `backup format version ${String(seen[i])}`,
      });
    }
  }
}

/** The recipient id named in a backup header (for messages), or undefined if it is too short. */
export function backupHeaderRecipientId(header: Uint8Array): string | undefined {
  if (header.byteLength < BACKUP_MAGIC.byteLength + 1 + RECIPIENT_ID_LENGTH) return undefined;
  checkMagic(header);
  return toHex(header.subarray(BACKUP_MAGIC.byteLength + 1, BACKUP_MAGIC.byteLength + 1 + RECIPIENT_ID_LENGTH));
}

/**
 * Unwraps the data key of a backup header with the recipient's private key.
 * @throws BACKUP_FORMAT_UNSUPPORTED, BACKUP_WRONG_IDENTITY (another recipient), BACKUP_TAMPERED (the wrap fails).
 */
function openHeader(header: Uint8Array, identity: KeyObject): Uint8Array {
  checkMagic(header);
  const mine = backupRecipientId(createPublicKey(identity));
  const theirs = backupHeaderRecipientId(header);
  if (theirs !== mine) {
    throw new FieldvaultError('BACKUP_WRONG_IDENTITY', { detail: `the backup is for key ${String(theirs)}, the identity given is key ${mine}` });
  }
  const ephPub = header.subarray(BACKUP_MAGIC.byteLength + 1 + RECIPIENT_ID_LENGTH, AAD_LENGTH);
  let shared: Uint8Array;
  try {
    const ephKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(ephPub).toString('base64url') }, format: 'jwk' });
    shared = new Uint8Array(diffieHellman({ privateKey: identity, publicKey: ephKey }));
  } catch {
    throw new FieldvaultError('BACKUP_TAMPERED', { detail: 'the key exchange in the header is not valid' });
  }
  const wrapKey = wrapKeyFor(shared, ephPub, rawX25519(createPublicKey(identity)));
  const nonce = header.subarray(AAD_LENGTH, AAD_LENGTH + GCM_NONCE_LENGTH);
  const dataKey = aesGcmOpen(wrapKey, nonce, header.subarray(AAD_LENGTH + GCM_NONCE_LENGTH), header.subarray(0, AAD_LENGTH));
  wipe(shared, wrapKey);
  if (dataKey === undefined) throw new FieldvaultError('BACKUP_TAMPERED', { detail: 'the wrapped data key fails authentication' });
  return dataKey;
}

/** File-format errors of the body are backup errors here (the body is not a photo file). */
function asBackupError(err: unknown): unknown {
  if (!isFieldvaultError(err)) return err;
  if (err.code === 'CRYPTO_FILE_TAMPERED' || err.code === 'CRYPTO_FORMAT_UNSUPPORTED') {
    return new FieldvaultError('BACKUP_TAMPERED', { detail: 'the body fails authentication (altered, reordered, cut short or extended)' });
  }
  return err;
}

/**
 * A Transform that encrypts a backup archive to `recipient` (see the format above); its output
 * can be written or sent as it comes.
 */
export function createBackupEncryptStream(recipient: KeyObject): Transform {
  const { header, dataKey } = sealHeader(recipient);
  const enc = new FileEncryptor(dataKey);
  wipe(dataKey); // FileEncryptor derived its own file key from it
  let headerSent = false;
  // The header goes out before the first body bytes, whether they come from a chunk or the end.
  function* withHeader(body: () => Uint8Array[]): Generator<Uint8Array> {
    if (!headerSent) {
      headerSent = true;
      yield header;
    }
    yield* body();
  }
  return codecStream({ update: (chunk) => withHeader(() => enc.update(chunk)), final: () => withHeader(() => enc.final()) });
}

/**
 * A Transform that decrypts a backup file with the recipient's private key. Each 64 KiB chunk is
 * emitted only after its tag verified, but a file cut after a whole chunk is only detected at the
 * end: **treat the output as untrusted until the stream finishes without an error**.
 * Errors (on the stream): BACKUP_FORMAT_UNSUPPORTED, BACKUP_WRONG_IDENTITY, BACKUP_TAMPERED.
 */
export function createBackupDecryptStream(identity: KeyObject): Transform {
  const queue = new ByteQueue();
  let body: FileDecryptor | undefined;
  const feed = (chunk: Uint8Array): Uint8Array[] => {
    if (body !== undefined) return body.update(chunk);
    queue.push(chunk);
    checkMagic(queue.peek(Math.min(queue.length, BACKUP_MAGIC.byteLength + 1)));
    if (queue.length < BACKUP_HEADER_LENGTH) return [];
    const dataKey = openHeader(queue.take(BACKUP_HEADER_LENGTH).slice(), identity);
    body = new FileDecryptor(dataKey);
    const rest = queue.take(queue.length).slice();
    return rest.byteLength === 0 ? [] : body.update(rest);
  };
  const final = (): Uint8Array[] => {
    if (body === undefined) throw new FieldvaultError('BACKUP_TAMPERED', { detail: 'the file ends inside its header' });
    return body.final();
  };
  return codecStream({ update: (chunk) => feed(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)), final }, asBackupError);
}
