import { randomInt } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { KEYRING_FILE, parseKeyring } from '@fieldvault/client';
import { IMEI_PATTERN, NODE_ID_PATTERN, USERNAME_PATTERN, FieldvaultError } from '@fieldvault/protocol';
import { fieldError } from './errors.js';

/*
 * The CLI home: the "phone" this command line plays. It holds
 *   config.json  servers, the remembered user name, the device IMEI (nothing secret: names,
 *                addresses, certificate pins and the public IMEI)
 *   sdk/         the SDK's directory (keyring, device key, encrypted databases and photos)
 *   lock         while a command uses the device (one command at a time, like one user at a time)
 */

export const CONFIG_FILE = 'config.json';
export const CONFIG_FORMAT = 'fieldvault-field-config';
export const CONFIG_VERSION = 1;
export const SDK_DIRECTORY = 'sdk';
const LOCK_FILE = 'lock';

/** A server a user can log in to and sync with. */
export interface ServerEntry {
  /** `https://host:port` (optionally with a path prefix). */
  readonly url: string;
  /** The server's id as it prints it at start; names its temporary database and checkpoints. */
  readonly serverId: string;
  /** SHA-256 fingerprints of the server certificate (self-signed deployments). */
  readonly pinSha256?: readonly string[];
  /** PEM of the CA (or self-signed certificate) trusted for this server. */
  readonly ca?: string;
}

export interface HomeConfig {
  readonly imei: string;
  /** The remembered user (`login` sets it, `logout` clears it); a name, not a secret. */
  readonly currentUser: string | null;
  readonly servers: Readonly<Record<string, ServerEntry>>;
}

/** A server name in this CLI: short, lowercase, usable as a word on the command line. */
export const SERVER_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,31}$/;
/** SERVER_NAME_PATTERN in words, for the help and the refusal. */
export const SERVER_NAME_RULE = 'lowercase letters, digits, ".", "_" or "-", starting with a letter or digit, up to 32 characters';

/** True for 15 digits whose last is the Luhn check digit of the first 14 (as real IMEIs). */
export function isValidImei(imei: string): boolean {
  return IMEI_PATTERN.test(imei) && luhnCheckDigit(imei.slice(0, 14)) === Number(imei[14]);
}

/** The Luhn check digit of a digit string: every second digit from the right, starting with the last, doubled. */
export function luhnCheckDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

/**
 * A fresh IMEI for a CLI "phone": a random 14-digit body and its Luhn check digit. The body starts
 * with 35 (a common reporting-body prefix), so it reads like a real handset's.
 */
export function generateImei(): string {
  let body = '35';
  while (body.length < 14) body += String(randomInt(10));
  return `${body}${luhnCheckDigit(body)}`;
}

function corrupt(why: string): FieldvaultError {
  return new FieldvaultError('FIELD_HOME_CORRUPT', { detail: why });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseServer(name: string, v: unknown): ServerEntry {
  if (!SERVER_NAME_PATTERN.test(name)) throw corrupt(`server name "${name}"`);
  if (!isPlainObject(v)) throw corrupt(`servers.${name}`);
  const { url, serverId, pinSha256, ca } = v;
  if (typeof url !== 'string' || !url.startsWith('https://')) throw corrupt(`servers.${name}.url`);
  if (typeof serverId !== 'string' || !NODE_ID_PATTERN.test(serverId)) throw corrupt(`servers.${name}.serverId`);
  if (pinSha256 !== undefined && (!Array.isArray(pinSha256) || !pinSha256.every((p) => typeof p === 'string'))) {
    throw corrupt(`servers.${name}.pinSha256`);
  }
  if (ca !== undefined && typeof ca !== 'string') throw corrupt(`servers.${name}.ca`);
  if (pinSha256 === undefined && ca === undefined) throw corrupt(`servers.${name}: neither a pin nor a CA`);
  return {
    url,
    serverId,
    ...(pinSha256 === undefined ? {} : { pinSha256: pinSha256 as string[] }),
    ...(ca === undefined ? {} : { ca }),
  };
}

/** Parses config.json; anything unexpected is FIELD_HOME_CORRUPT (never silently replaced). */
export function parseConfig(text: string): HomeConfig {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw corrupt('not JSON');
  }
  if (!isPlainObject(v) || v['format'] !== CONFIG_FORMAT || v['v'] !== CONFIG_VERSION) throw corrupt('unknown format or version');
  const { imei, currentUser, servers } = v;
  if (typeof imei !== 'string' || !isValidImei(imei)) throw corrupt('imei');
  if (currentUser !== null && (typeof currentUser !== 'string' || !USERNAME_PATTERN.test(currentUser))) throw corrupt('currentUser');
  if (!isPlainObject(servers)) throw corrupt('servers');
  const parsed: Record<string, ServerEntry> = {};
  for (const [name, entry] of Object.entries(servers)) parsed[name] = parseServer(name, entry);
  return { imei, currentUser, servers: parsed };
}

export function serializeConfig(config: HomeConfig): string {
  const servers = Object.fromEntries(Object.entries(config.servers).sort(([a], [b]) => (a < b ? -1 : 1)));
  return `${JSON.stringify({ format: CONFIG_FORMAT, v: CONFIG_VERSION, imei: config.imei, currentUser: config.currentUser, servers }, null, 2)}\n`;
}

function isMissing(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ENOENT';
}

function unwritable(dir: string, err: unknown): FieldvaultError {
  const code = (err as { code?: unknown } | null)?.code;
  return new FieldvaultError('FIELD_HOME_UNWRITABLE', { detail: `${dir}${typeof code === 'string' ? `: ${code}` : ''}` });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code === 'EPERM';
  }
}

/** The CLI home directory and its config file. */
export class Home {
  readonly dir: string;
  #locked = false;

  constructor(dir: string) {
    this.dir = dir;
  }

  get sdkDirectory(): string {
    return join(this.dir, SDK_DIRECTORY);
  }

  get configFile(): string {
    return join(this.dir, CONFIG_FILE);
  }

  /** The config, or undefined before the first use of this home. */
  read(): HomeConfig | undefined {
    let text: string;
    try {
      text = readFileSync(this.configFile, 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new FieldvaultError('FIELD_HOME_CORRUPT', { detail: `cannot read ${this.configFile}` });
    }
    return parseConfig(text);
  }

  /**
   * The config, creating the home (mode 0700) with a fresh IMEI (or `imei`) on first use.
   *
   * A home whose config.json is gone but whose SDK directory holds data is not a new phone: its
   * keyring, databases and server enrolments belong to the IMEI it had, and a fresh random one
   * would make every later command fail on a keyring "of another device". The IMEI is then taken
   * back from the keyring (readable without a password), or `imei` must be given (`init --imei`).
   * @throws FIELD_HOME_CORRUPT, FIELD_HOME_UNWRITABLE, FIELD_IMEI_UNKNOWN, FIELD_USAGE (an `imei`
   * that is not the keyring's)
   */
  ensure(imei?: string): { config: HomeConfig; created: boolean } {
    const existing = this.read();
    if (existing !== undefined) return { config: existing, created: false };
    let chosen = imei;
    if (this.#sdkHasData()) {
      const recorded = this.keyringImei();
      if (recorded !== undefined && imei !== undefined && imei !== recorded) {
        throw new FieldvaultError('FIELD_USAGE', { detail: `--imei: this phone's data (${this.sdkDirectory}) belongs to IMEI ${recorded}; give that one, or use another --home for another phone` });
      }
      chosen = recorded ?? imei;
      if (chosen === undefined) {
        throw fieldError(
          'FIELD_IMEI_UNKNOWN',
          `${this.configFile} is missing, but this phone already holds data (${this.sdkDirectory}) and its IMEI cannot be read back from it. ` +
            'Nothing was changed. Give the phone its old IMEI again: "fieldvault-field init --imei <the old IMEI>" (it is in a backup of config.json, ' +
            'and your admin sees it among the server\'s devices). Do not wipe the phone: its records may not all be synced.',
        );
      }
    }
    const config: HomeConfig = { imei: chosen ?? generateImei(), currentUser: null, servers: {} };
    this.write(config);
    return { config, created: true };
  }

  /** True when the SDK directory holds any file (an empty skeleton is not data). */
  #sdkHasData(): boolean {
    const hasFile = (dir: string): boolean => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return false;
      }
      return entries.some((e) => (e.isDirectory() ? hasFile(join(dir, e.name)) : true));
    };
    return hasFile(this.sdkDirectory);
  }

  /**
   * The IMEI the SDK's keyring was written for (it is public and kept in the clear; the keyring's
   * checksum and structure are checked), or undefined without a readable keyring.
   */
  keyringImei(): string | undefined {
    let bytes: Uint8Array;
    let claimed: unknown;
    try {
      bytes = readFileSync(join(this.sdkDirectory, KEYRING_FILE));
      claimed = (JSON.parse(Buffer.from(bytes).toString('utf8')) as { content?: { imei?: unknown } } | null)?.content?.imei;
    } catch {
      return undefined;
    }
    if (typeof claimed !== 'string' || !IMEI_PATTERN.test(claimed)) return undefined;
    try {
      parseKeyring(bytes, claimed);
    } catch {
      return undefined;
    }
    return claimed;
  }

  /**
   * Refuses a config.json whose IMEI is not the one the phone's keyring was written for (a
   * replaced or hand-edited config): the SDK would call the keyring corrupt, and it is not.
   * @throws FIELD_HOME_CORRUPT
   */
  checkImei(config: HomeConfig): void {
    const recorded = this.keyringImei();
    if (recorded === undefined || recorded === config.imei) return;
    throw fieldError(
      'FIELD_HOME_CORRUPT',
      `${this.configFile} gives this phone the IMEI ${config.imei}, but its data (${this.sdkDirectory}) belongs to IMEI ${recorded}: ` +
        'one of them was replaced or edited (config.json, or sdk/keyring.json copied from another phone). Nothing was changed. ' +
        `If config.json was edited, put "imei": "${recorded}" back in it; if the keyring came from another phone, put this phone's own sdk/keyring.json back (from its backup). ` +
        'Do not wipe the phone.',
    );
  }

  /** Writes config.json atomically (temp file, fsync, rename), mode 0600. */
  write(config: HomeConfig): void {
    const tmp = `${this.configFile}.tmp-${process.pid}`;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, serializeConfig(config));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.configFile);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw unwritable(this.dir, err);
    }
  }

  /** Reads, changes and writes the config (callers hold the lock). */
  update(change: (config: HomeConfig) => HomeConfig): HomeConfig {
    const next = change(this.ensure().config);
    this.write(next);
    return next;
  }

  /**
   * Takes the home's lock (a file holding this process id): one command at a time uses the device.
   * A lock left by a process that no longer runs is taken over.
   * @throws FIELD_HOME_BUSY, FIELD_HOME_UNWRITABLE
   */
  lock(): void {
    if (this.#locked) return;
    const file = join(this.dir, LOCK_FILE);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw unwritable(this.dir, err);
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(file, 'wx', 0o600);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        this.#locked = true;
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'EEXIST') throw unwritable(this.dir, err);
      }
      let holder = Number.NaN;
      try {
        holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
      } catch {
        // Removed between our open and our read: try again.
      }
      if (Number.isInteger(holder) && holder > 0 && pidAlive(holder)) throw new FieldvaultError('FIELD_HOME_BUSY', { detail: `process ${holder}` });
      rmSync(file, { force: true });
    }
    throw new FieldvaultError('FIELD_HOME_BUSY');
  }

  /** Releases the lock if this process holds it. */
  unlock(): void {
    if (!this.#locked) return;
    this.#locked = false;
    rmSync(join(this.dir, LOCK_FILE), { force: true });
  }
}
