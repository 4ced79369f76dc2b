import { kdfBounds } from '@fieldvault/crypto';
import {
  FieldvaultError,
  IMEI_PATTERN,
  MAX_PHOTO_BYTES,
  assertPasswordPolicy,
  defaultChildForm,
  defaultPasswordPolicy,
  parseFormDefinition,
  type FormDefinition,
  type PasswordPolicy,
} from '@fieldvault/protocol';
import type { DeviceKeyStore } from './device-key-store.js';
import type { FileSystem } from './file-system.js';
import { inputInvalid } from './input-checks.js';
import { silentLogger, type Logger } from './logger.js';
import type { MigrationListener } from './migration.js';
import { DEFAULT_PHOTO_MAX_BYTES } from './photo-store.js';
import type { StorageAdapter } from './storage-adapter.js';
import type { Transport } from './transport.js';

/** Argon2id cost of the password-derived keys this device writes (the salt is always fresh). */
export interface KdfCost {
  /** Memory in KiB. */
  readonly m: number;
  /** Passes. */
  readonly t: number;
  /** Lanes. */
  readonly p: number;
}

export interface DeviceOptions {
  /** The SDK's directory: keyring, device key file and the hidden photo folder live here. */
  readonly directory: string;
  /** The device IMEI, 15 digits. Public: an identifier, bound into every wrapped key. */
  readonly imei: string;
  /** The encrypted database driver, e.g. `new SqlCipherStorage({ directory: join(directory, 'databases') })`. */
  readonly storage: StorageAdapter;
  /** The server connection, for the online login and sync (not used offline). */
  readonly transport?: Transport;
  /** Quiet by default. */
  readonly logger?: Logger;
  /** Wall clock in ms (tests pass a fake). */
  readonly now?: () => number;
  /** Argon2id cost for keys wrapped on this device; default m=64 MiB, t=3, p=1. Must lie within crypto's `kdfBounds`. */
  readonly kdf?: KdfCost;
  /** Password rules for offline sign-up and password change; default: the server's default policy. */
  readonly passwordPolicy?: PasswordPolicy;
  /** The form records are validated against on write; default `defaultChildForm`. */
  readonly form?: FormDefinition;
  /** Largest photo accepted, in bytes; default 10 MiB. */
  readonly photoMaxBytes?: number;
  /** File access; default node:fs rooted at `directory`. */
  readonly fileSystem?: FileSystem;
  /** Where the device's Ed25519 key pair lives; default a mode-0600 file beside the keyring. */
  readonly deviceKeyStore?: DeviceKeyStore;
  /** Called after each migration step (progress reporting; the crash tests kill the process here). */
  readonly onMigrationStep?: MigrationListener;
}

/** `DeviceOptions` checked, with every default filled in (the seams `createDevice` builds are not here). */
export interface ResolvedOptions {
  readonly imei: string;
  readonly storage: StorageAdapter;
  readonly transport: Transport | undefined;
  readonly logger: Logger;
  readonly now: () => number;
  readonly kdf: KdfCost | undefined;
  readonly passwordPolicy: PasswordPolicy;
  readonly form: FormDefinition;
  readonly photoMaxBytes: number;
  readonly onMigrationStep: MigrationListener | undefined;
}

/**
 * Checks the options, listing every malformed one at once, and fills in the defaults.
 * @throws INPUT_INVALID listing every malformed option.
 * @throws RECORD_FORM_INVALID when `form` is malformed; CONFIG_INVALID when `passwordPolicy` is out of bounds.
 */
export function resolveOptions(options: DeviceOptions): ResolvedOptions & { directory: string } {
  if (typeof options !== 'object' || options === null) throw inputInvalid('options', 'must be an object');
  const problems: string[] = [];
  const { directory, imei, storage, kdf, photoMaxBytes, now, logger } = options;
  if (typeof directory !== 'string' || directory === '') problems.push('directory: a non-empty path');
  if (typeof imei !== 'string' || !IMEI_PATTERN.test(imei)) problems.push('imei: 15 digits');
  if (typeof storage !== 'object' || storage === null || typeof storage.open !== 'function') problems.push('storage: a StorageAdapter');
  if (kdf !== undefined) {
    for (const name of ['m', 't', 'p'] as const) {
      const v = kdf[name];
      const { min, max } = kdfBounds[name];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) problems.push(`kdf.${name}: an integer in ${min} … ${max}`);
    }
  }
  if (photoMaxBytes !== undefined && (!Number.isInteger(photoMaxBytes) || photoMaxBytes < 1 || photoMaxBytes > MAX_PHOTO_BYTES)) {
    problems.push(`photoMaxBytes: an integer in 1 … ${MAX_PHOTO_BYTES}`);
  }
  if (now !== undefined && typeof now !== 'function') problems.push('now: a function returning ms');
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger.warn !== 'function')) problems.push('logger: a pino-compatible logger');
  if (problems.length > 0) {
    throw new FieldvaultError('INPUT_INVALID', { detail: problems.join('; '), details: { field: problems[0]?.split(':')[0] ?? 'options' } });
  }
  return {
    directory,
    imei,
    storage,
    transport: options.transport,
    logger: logger ?? silentLogger,
    now: now ?? Date.now,
    kdf,
    passwordPolicy: options.passwordPolicy === undefined ? defaultPasswordPolicy : assertPasswordPolicy(options.passwordPolicy),
    form: options.form === undefined ? defaultChildForm : parseFormDefinition(options.form),
    photoMaxBytes: photoMaxBytes ?? DEFAULT_PHOTO_MAX_BYTES,
    onMigrationStep: options.onMigrationStep,
  };
}
