/**
 * Secret files of the server (KEK, setup token, dev TLS key, server id). They are created with mode
 * 0600 when missing; an existing one that others may read or write stops the start-up, because a
 * KEK readable by other accounts makes the envelope encryption of device keys worthless.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FieldvaultError } from '@fieldvault/protocol';
import { accountLabel, currentUid } from './access.js';

/**
 * @throws CONFIG_SECRET_FILE_INVALID when `file` is a directory; CONFIG_SECRET_FILE_INSECURE when
 * group/other have any permission on it.
 */
/** Where the one-time setup token is kept (0600) until the first admin exists. */
export function setupTokenFile(dataDir: string): string {
  return join(dataDir, 'secrets', 'setup-token');
}

export function assertPrivateFile(file: string): void {
  const st = statSync(file);
  // Checked before the mode: "needs 0600" would have the operator chmod a directory (audit 10).
  if (st.isDirectory()) throw new FieldvaultError('CONFIG_SECRET_FILE_INVALID', { detail: `${file} is a directory, not a file: name the file itself` });
  if ((st.mode & 0o077) !== 0) {
    throw new FieldvaultError('CONFIG_SECRET_FILE_INSECURE', {
      detail: `${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, needs 0600`,
    });
  }
}

/**
 * Makes the data directory private (0700), creating it if missing. The embedded store, the KEK
 * and the TLS key live in it: a directory others can enter would expose whatever file inside is
 * not private by itself (operations audit, item 2). An existing directory of ours that is open to
 * group or others is tightened with a warning rather than refused: the operator's intent (a
 * private data directory) is clear and the change takes nothing away from this account. One that
 * belongs to another account stops the start whatever its mode (audit 9): its owner can rename
 * and replace what is in it (KEK, TLS key, store), and we cannot make it private.
 * @returns a warning to show when the mode was changed, else null.
 * @throws CONFIG_DATA_DIR_INSECURE when it is not ours; CONFIG_INVALID when it is not a directory.
 */
export function ensurePrivateDataDir(dir: string): string | null {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // the umask may have narrowed the mode oddly; never widened
    return null;
  }
  const st = statSync(dir);
  if (!st.isDirectory()) throw new FieldvaultError('CONFIG_INVALID', { detail: `FIELDVAULT_DATA_DIR ${dir} is not a directory` });
  const mode = st.mode & 0o777;
  const shown = mode.toString(8).padStart(4, '0');
  const uid = currentUid();
  if (uid !== null && st.uid !== uid) {
    throw new FieldvaultError('CONFIG_DATA_DIR_INSECURE', {
      detail: `FIELDVAULT_DATA_DIR ${dir} has mode ${shown} and belongs to ${accountLabel(st.uid)}, not to the account running the server, ${accountLabel(uid)}: that account could rename or replace the KEK, TLS key and store in it`,
    });
  }
  if ((mode & 0o077) === 0) return null;
  chmodSync(dir, 0o700);
  return `warning: data directory ${dir} had mode ${shown} (open to other users); changed it to 0700`;
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
 * Reads the 32-byte server KEK (base64 in the file), creating it when missing. A created KEK is
 * kept only if the store holds nothing sealed under another one: `buildApp` checks that
 * (CONFIG_KEK_MISMATCH) and start.ts removes the file it just created when the check fails.
 * @throws CONFIG_SECRET_FILE_INSECURE, CONFIG_SECRET_FILE_INVALID
 */
export function loadOrCreateKek(file: string): { kek: Uint8Array; created: boolean } {
  if (existsSync(file) && statSync(file).isDirectory()) {
    const inside = join(file, 'kek');
    throw new FieldvaultError('CONFIG_SECRET_FILE_INVALID', {
      detail: `the KEK file ${file} (FIELDVAULT_KEK_FILE) is a directory, not a file: point FIELDVAULT_KEK_FILE at the KEK file itself${existsSync(inside) ? ` (${inside}?)` : ''}`,
    });
  }
  if (!existsSync(file)) {
    const kek = new Uint8Array(randomBytes(32));
    writePrivateFile(file, `${Buffer.from(kek).toString('base64')}\n`);
    return { kek, created: true };
  }
  assertPrivateFile(file);
  const text = readFileSync(file, 'utf8').trim();
  const kek = new Uint8Array(Buffer.from(text, 'base64'));
  if (kek.length !== 32 || Buffer.from(kek).toString('base64') !== text) {
    throw new FieldvaultError('CONFIG_SECRET_FILE_INVALID', {
      detail: `the KEK file ${file} (FIELDVAULT_KEK_FILE: the server key-encryption key that seals stored device keys) must hold 32 bytes in base64; restore it from your backup: a new KEK cannot open the keys sealed under the old one`,
    });
  }
  return { kek, created: false };
}

/**
 * The server's HLC issuer id: `configured` (FIELDVAULT_SERVER_ID) or the one in `file`, generated
 * on first start. Whichever id the first start uses (configured or generated) is written to `file`
 * so that it sticks. Phones know a server by this id and refuse one that answers under another, so
 * a configured id never silently replaces the one this data directory has already used (audit 2:
 * an env file copied from another machine broke every phone).
 * @throws CONFIG_INVALID when both exist and differ; CONFIG_SECRET_FILE_INVALID for a damaged file.
 */
export function loadOrCreateServerId(file: string, configured: string | null): string {
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(id)) {
      throw new FieldvaultError('CONFIG_SECRET_FILE_INVALID', {
        detail: `the server id file ${file} (this server's issuer id in key timestamps) must hold an id like "srv-1a2b3c4d"; restore it from your backup or set FIELDVAULT_SERVER_ID`,
      });
    }
    if (configured !== null && configured !== id) {
      throw new FieldvaultError('CONFIG_INVALID', {
        detail: `FIELDVAULT_SERVER_ID is "${configured}", but this data directory's server id (${file}) is "${id}": phones know this server as "${id}" and would refuse it under another id (TRANSPORT_SERVER_ID_MISMATCH). Keep "${id}": unset FIELDVAULT_SERVER_ID or set it to "${id}". To rename the server on purpose (every phone then has to remove it and add it again), stop it, write the new id into ${file} and start again`,
      });
    }
    return id;
  }
  // A configured id is recorded too (audit s15 F8): otherwise a later start without the variable
  // generated a new id and renamed the server under its phones, and the variable was then refused.
  const id = configured ?? `srv-${randomBytes(4).toString('hex')}`;
  writeServerIdFile(file, id);
  return id;
}

/**
 * Writes the id atomically (temp file + rename): a start cut short must not leave a half-written
 * id, which the next start would refuse as damaged. Mode 0644: the id is not secret (the banner
 * and every login challenge show it), as generated ids always were.
 */
function writeServerIdFile(file: string, id: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  // Left by a start killed here under the same pid (pid 1 in a container): would block every start.
  rmSync(tmp, { force: true });
  writeFileSync(tmp, `${id}\n`, { mode: 0o644, flag: 'wx' });
  renameSync(tmp, file);
}
