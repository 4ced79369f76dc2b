import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  KEYRING_FILE,
  MAX_PAGE_SIZE,
  createDevice,
  parseKeyring,
  type Device,
  type DeviceUser,
  type KeyringContent,
  type Session,
  type SyncOptions,
  type SyncSummary,
} from '@fieldvault/client';
import { kdfBounds } from '@fieldvault/crypto';
import type { ChildRecord, KeyRecord } from '@fieldvault/protocol';
import { SqlCipherStorage } from '@fieldvault/storage-sqlcipher';
import type { PhoneProcessArgs, PhoneProcessKill } from './phone-process.js';
import type { Scenario } from './scenario.js';

/** The cheapest Argon2id cost crypto accepts (its clamp floor): scenarios wrap keys hundreds of times. */
export const FAST_KDF = { m: kdfBounds.m.min, t: kdfBounds.t.min, p: 1 } as const;

// From src/ (tests run the TypeScript) and dist/ alike: the child always runs the built JavaScript.
const PHONE_PROCESS = fileURLToPath(new URL('../dist/phone-process.js', import.meta.url));

/** A database file on a phone and the key it is under. */
export interface PhoneDatabase {
  readonly name: string;
  /** The server key it is under, or `phone-made` (an unverified key no server ever handed out). */
  readonly key: string;
}

/** What a phone holds, from its keyring (public metadata) and its database files. */
export interface PhoneState {
  /** The device's verified key record, `null` before the first online login. */
  readonly verified: KeyRecord | null;
  /** Key id of each temporary database, by server id. */
  readonly temporary: Readonly<Record<string, string>>;
  readonly users: readonly DeviceUser[];
  /** Database files, sorted by key. */
  readonly databases: readonly PhoneDatabase[];
  /** Migrations journaled and not finished (0 at rest). */
  readonly pending: number;
}

/** What one user gets logging in offline: the database kind and key, and the records they see. */
export interface OfflineView {
  readonly kind: string;
  readonly keyId: string;
  /** Ids of the records the user sees (not deleted), sorted. */
  readonly ids: readonly string[];
}

/** The end of a phone child process: the signal that ended it (SIGKILL for a planned kill -9) and what it printed. */
export interface PhoneProcessResult {
  readonly signal: NodeJS.Signals | null;
  readonly code: number | null;
  readonly out: string;
}

/** Every record a session sees, deleted ones too when asked. */
export async function allRecords(session: Session, includeDeleted = false): Promise<ChildRecord[]> {
  const out: ChildRecord[] = [];
  for (let offset = 0; ; offset += MAX_PAGE_SIZE) {
    const page = await session.listRecords({ limit: MAX_PAGE_SIZE, offset, includeDeleted });
    out.push(...page);
    if (page.length < MAX_PAGE_SIZE) return out;
  }
}

/** Sorted ids. */
export function idsOf(records: readonly { readonly id: string }[]): string[] {
  return records.map((r) => r.id).sort();
}

/**
 * One shared phone of a scenario: an SDK `Device` on SQLCipher files in its own directory, run in
 * the test process; `runProcess` runs a step in a child process instead, which can be kill -9'd.
 */
export class Phone {
  readonly name: string;
  readonly imei: string;
  readonly dir: string;
  readonly device: Device;
  readonly storage: SqlCipherStorage;
  /** How far this phone's wall clock is ahead of the real one (ms; negative: behind). */
  readonly clockOffsetMs: number;
  readonly #scenario: Scenario;

  private constructor(scenario: Scenario, name: string, imei: string, dir: string, device: Device, storage: SqlCipherStorage, clockOffsetMs: number) {
    this.#scenario = scenario;
    this.clockOffsetMs = clockOffsetMs;
    this.name = name;
    this.imei = imei;
    this.dir = dir;
    this.device = device;
    this.storage = storage;
  }

  /** @internal Use `Scenario.addPhone`. */
  static async create(scenario: Scenario, name: string, imei: string, dir: string, clockOffsetMs = 0): Promise<Phone> {
    const storage = new SqlCipherStorage({ directory: join(dir, 'databases') });
    const now = clockOffsetMs === 0 ? Date.now : () => Date.now() + clockOffsetMs;
    const device = await createDevice({ directory: dir, imei, storage, kdf: FAST_KDF, now });
    return new Phone(scenario, name, imei, dir, device, storage, clockOffsetMs);
  }

  /** The open session, if any. */
  get session(): Session | undefined {
    return this.device.session;
  }

  /** Offline sign-up of an unverified user (with the scenario's password for them). */
  signUpOffline(username: string): Promise<void> {
    return this.device.signUpOffline(username, this.#scenario.password(username));
  }

  loginOffline(username: string): Promise<Session> {
    return this.device.loginOffline(username, this.#scenario.password(username));
  }

  loginOnline(username: string, serverId: string): Promise<Session> {
    return this.device.loginOnline(username, this.#scenario.password(username), { transport: this.#scenario.transport(serverId) });
  }

  /** Syncs the open session with a server it is logged in to. */
  sync(serverId: string, options: Partial<Omit<SyncOptions, 'transport'>> = {}): Promise<SyncSummary> {
    const session = this.device.session;
    if (session === undefined) throw new Error(`${this.name}: no session open`);
    return session.sync({ transport: this.#scenario.transport(serverId), ...options });
  }

  async logout(): Promise<void> {
    await this.device.logout();
  }

  /** The keyring's public content, or `null` when there is none (a new or wiped phone). */
  keyring(): KeyringContent | null {
    const file = join(this.dir, KEYRING_FILE);
    return existsSync(file) ? parseKeyring(readFileSync(file), this.imei) : null;
  }

  /** The database files on the phone and the key each is under. */
  async databases(): Promise<PhoneDatabase[]> {
    const names = existsSync(join(this.dir, 'databases')) ? await this.storage.list() : [];
    return names
      .map((name) => ({ name, key: this.#scenario.keys.keyIdOf(name) ?? 'phone-made' }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.name < b.name ? -1 : 1));
  }

  async state(): Promise<PhoneState> {
    const k = this.keyring();
    return {
      verified: k?.verified ?? null,
      temporary: Object.fromEntries(Object.entries(k?.temporary ?? {}).map(([server, r]) => [server, r.keyId])),
      users: k === null ? [] : await this.device.users(),
      databases: await this.databases(),
      pending: k?.pending.length ?? 0,
    };
  }

  /**
   * Logs `username` in offline, notes what they see, and logs them out again (the open session,
   * if any, is closed first). Rejects like `loginOffline` when they cannot log in.
   */
  async offlineView(username: string): Promise<OfflineView> {
    await this.device.logout();
    const s = await this.loginOffline(username);
    try {
      return { kind: s.kind, keyId: s.keyId, ids: idsOf(await allRecords(s)) };
    } finally {
      await s.logout();
    }
  }

  /**
   * Runs a login (and a sync) for `username` with `serverId` in a child process on this phone's
   * directory, which kills itself with SIGKILL at `kill` (a real kill -9, no cleanup). This
   * phone's own session must be closed: the child owns the directory while it runs.
   */
  async runProcess(
    username: string,
    serverId: string,
    options: { readonly sync?: boolean; readonly kill?: PhoneProcessKill; readonly create?: readonly string[] } = {},
  ): Promise<PhoneProcessResult> {
    await this.device.logout();
    const server = this.#scenario.server(serverId);
    const args: PhoneProcessArgs = {
      dir: this.dir,
      imei: this.imei,
      username,
      password: this.#scenario.password(username),
      url: server.url,
      fingerprint: server.fingerprint,
      serverId,
      sync: options.sync ?? false,
      ...(options.create === undefined ? {} : { create: options.create }),
      clockOffsetMs: this.clockOffsetMs,
      ...(options.kill === undefined ? {} : { kill: options.kill }),
    };
    const child = spawn(process.execPath, [PHONE_PROCESS], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#scenario.track(child);
    // The password goes through stdin, never argv (argv is readable by every local user).
    child.stdin.end(JSON.stringify(args));
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, out }));
    });
  }

  /** Closes the open session, if any. */
  async close(): Promise<void> {
    await this.device.logout();
  }
}
