/**
 * Secret files of the server (KEK, setup token, dev TLS key, server id). They are created with mode
 * 0600 when missing; an existing one that others may read or write stops the start-up, because a
 * KEK readable by other accounts makes the envelope encryption of device keys worthless.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FieldvaultError } from '@fieldvault/protocol';

/** @throws CONFIG_SECRET_FILE_INSECURE when group/other have any permission on `file`. */
export function assertPrivateFile(file: string): void {
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new FieldvaultError('CONFIG_SECRET_FILE_INSECURE', {
      detail: `${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, needs 0600`,
    });
  }
}

/** Writes `content` to `file` atomically with mode 0600 (never visible half-written or world-readable). */
export function writePrivateFile(file: string, content: string | Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600); // a restrictive umask could not widen it, but an odd one could narrow it oddly
  renameSync(tmp, file);
}

/**
 * Reads the 32-byte server KEK (base64 in the file), creating it on first start.
 * @throws CONFIG_SECRET_FILE_INSECURE, CONFIG_SECRET_FILE_INVALID
 */
export function loadOrCreateKek(file: string): { kek: Uint8Array; created: boolean } {
  if (!existsSync(file)) {
    const kek = new Uint8Array(randomBytes(32));
    writePrivateFile(file, `${Buffer.from(kek).toString('base64')}\n`);
    return { kek, created: true };
  }
  assertPrivateFile(file);
  const text = readFileSync(file, 'utf8').trim();
  const kek = new Uint8Array(Buffer.from(text, 'base64'));
  if (kek.length !== 32 || Buffer.from(kek).toString('base64') !== text) {
    throw new FieldvaultError('CONFIG_SECRET_FILE_INVALID', { detail: `${file} must hold 32 bytes in base64` });
  }
  return { kek, created: false };
}

/** Reads the server's HLC issuer id, generating a random one on first start. */
export function loadOrCreateServerId(file: string): string {
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(id)) {
      throw new FieldvaultError('CONFIG_SECRET_FILE_INVALID', { detail: `${file} must hold a server id like "srv-1a2b3c4d"` });
    }
    return id;
  }
  const id = `srv-${randomBytes(4).toString('hex')}`;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${id}\n`, { mode: 0o644 });
  return id;
}
