import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_ID_PATTERN, TOKEN_PATTERN, USERNAME_PATTERN } from '@fieldvault/protocol';
import { CliError } from './errors.js';

/*
 * The admin CLI directory (mode 0700):
 *   config.json   the server (URL, CA certificate or pin, id) and the admin's user name: nothing secret
 *   session.json  the admin session token and its expiry (mode 0600), deleted by "logout"
 * Files are written to a temporary name, fsynced and renamed, so a crash never leaves half a file.
 */

export const CONFIG_FILE = 'config.json';
export const SESSION_FILE = 'session.json';

export interface ServerTrust {
  readonly url: string;
  /** PEM of the CA (or the server's self-signed certificate). */
  readonly ca?: string;
  /** SHA-256 certificate fingerprint(s), hex with or without colons. */
  readonly pinSha256?: string;
  /**
   * The server's id, as its last console login told it (absent in configs written before the
   * CLI kept it, and until the first login): admins know servers by id, so the output names it.
   */
  readonly id?: string;
}

export interface AdminConfig {
  readonly server: ServerTrust | null;
  readonly username: string | null;
}

export interface StoredSession {
  readonly token: string;
  readonly expiresAt: string;
  readonly username: string;
  /** The server URL the token belongs to: a session is never sent to another server. */
  readonly url: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Home {
  constructor(readonly dir: string) {}

  private ensureDir(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
  }

  private write(name: string, data: unknown): void {
    this.ensureDir();
    const file = join(this.dir, name);
    const tmp = `${file}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(data, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }

  private read(name: string): unknown {
    const file = join(this.dir, name);
    if (!existsSync(file)) return undefined;
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as unknown;
    } catch {
      throw new CliError('ADMIN_CONFIG_CORRUPT', file);
    }
  }

  config(): AdminConfig {
    const raw = this.read(CONFIG_FILE);
    if (raw === undefined) return { server: null, username: null };
    const file = join(this.dir, CONFIG_FILE);
    if (!isRecord(raw)) throw new CliError('ADMIN_CONFIG_CORRUPT', file);
    const { server, username } = raw;
    if (username !== null && (typeof username !== 'string' || !USERNAME_PATTERN.test(username))) throw new CliError('ADMIN_CONFIG_CORRUPT', file);
    let trust: ServerTrust | null = null;
    if (server !== null) {
      if (!isRecord(server) || typeof server['url'] !== 'string') throw new CliError('ADMIN_CONFIG_CORRUPT', file);
      const ca = server['ca'];
      const pin = server['pinSha256'];
      const id = server['id'];
      if ((ca !== undefined && typeof ca !== 'string') || (pin !== undefined && typeof pin !== 'string')) throw new CliError('ADMIN_CONFIG_CORRUPT', file);
      // The id is printed in success lines: only a well-formed one is used.
      if (id !== undefined && (typeof id !== 'string' || !NODE_ID_PATTERN.test(id))) throw new CliError('ADMIN_CONFIG_CORRUPT', file);
      trust = { url: server['url'], ...(ca === undefined ? {} : { ca }), ...(pin === undefined ? {} : { pinSha256: pin }), ...(id === undefined ? {} : { id }) };
    }
    return { server: trust, username: username ?? null };
  }

  saveConfig(config: AdminConfig): void {
    this.write(CONFIG_FILE, config);
  }

  /**
   * The stored session, or undefined. Refuses to read a token that other users could have read.
   * @throws ADMIN_CONFIG_INSECURE, ADMIN_CONFIG_CORRUPT
   */
  session(): StoredSession | undefined {
    const file = join(this.dir, SESSION_FILE);
    if (!existsSync(file)) return undefined;
    if ((statSync(this.dir).mode & 0o077) !== 0 || (statSync(file).mode & 0o077) !== 0) throw new CliError('ADMIN_CONFIG_INSECURE', file);
    const raw = this.read(SESSION_FILE);
    if (
      !isRecord(raw) ||
      typeof raw['token'] !== 'string' ||
      !TOKEN_PATTERN.test(raw['token']) ||
      typeof raw['expiresAt'] !== 'string' ||
      typeof raw['username'] !== 'string' ||
      typeof raw['url'] !== 'string'
    ) {
      throw new CliError('ADMIN_CONFIG_CORRUPT', file);
    }
    return { token: raw['token'], expiresAt: raw['expiresAt'], username: raw['username'], url: raw['url'] };
  }

  saveSession(session: StoredSession): void {
    this.write(SESSION_FILE, session);
  }

  forgetSession(): void {
    rmSync(join(this.dir, SESSION_FILE), { force: true });
  }
}
