import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Transport } from '@fieldvault/client';
import type { ChildRecord, KeyRecord } from '@fieldvault/protocol';
import { startServerProcess, type ServerProcess } from '@fieldvault/test-support';
import { KeyBook } from './key-book.js';
import { Phone } from './phone.js';

/** A user the scenario creates on every server, with the same password everywhere. */
export interface ScenarioUser {
  readonly username: string;
  readonly password: string;
  readonly role?: 'field_worker' | 'supervisor';
}

export interface ScenarioOptions {
  /** An empty directory of the scenario's own: each server and phone gets a directory under it. */
  readonly root: string;
  /** The server (HLC node) ids, one real server process each. */
  readonly servers: readonly string[];
  readonly users: readonly ScenarioUser[];
  /** Extra FIELDVAULT_* settings for every server. */
  readonly env?: Readonly<Record<string, string>>;
  /** Remove `root` at teardown (default true; keep it to inspect a failure). */
  readonly removeRoot?: boolean;
}

/** Scenarios log in far more often than a person would: the per-IP limits would get in the way. */
const SCENARIO_ENV = { FIELDVAULT_AUTH_RATE_LIMIT: '100000', FIELDVAULT_RATE_LIMIT: '100000' };

/** Scenarios of this process not torn down yet (for {@link teardownAll}). */
const live = new Set<Scenario>();

/**
 * Tears down every scenario of this process still running: the scenarios CLI calls it on SIGINT
 * and SIGTERM, so a cancelled run leaves no server, store or phone process and no directory behind.
 */
export async function teardownAll(): Promise<void> {
  await Promise.allSettled([...live].map((s) => s.teardown()));
}

/**
 * N real server processes (apps/server, each with its own data directory, embedded store, KEK,
 * HLC node id and random loopback port) and M phones (SDK devices on SQLCipher files, each in its
 * own directory with its own IMEI). `teardown` stops every process it started.
 */
export class Scenario {
  readonly root: string;
  /** Every server key seen in a login answer (to name the key of each database file on a phone). */
  readonly keys = new KeyBook();
  readonly #servers = new Map<string, ServerProcess>();
  readonly #users = new Map<string, ScenarioUser>();
  readonly #phones = new Map<string, Phone>();
  readonly #children = new Set<ChildProcess>();
  readonly #tokens: Array<{ readonly serverId: string; readonly imei: string; readonly username: string; readonly token: string }> = [];
  readonly #env: Readonly<Record<string, string>>;
  readonly #removeRoot: boolean;

  #tornDown: Promise<void> | null = null;

  private constructor(options: ScenarioOptions) {
    live.add(this);
    this.root = options.root;
    this.#env = { ...SCENARIO_ENV, ...options.env };
    this.#removeRoot = options.removeRoot ?? true;
    for (const u of options.users) this.#users.set(u.username, u);
  }

  /** Starts the servers (in parallel) and creates the users on each. */
  static async start(options: ScenarioOptions): Promise<Scenario> {
    const s = new Scenario(options);
    mkdirSync(options.root, { recursive: true });
    // allSettled, not all: when one server fails, the others may still be starting, and teardown
    // must see every one that started or it would be left running (an orphan with its store).
    const results = await Promise.allSettled(
      options.servers.map(async (id) => {
        const server = await startServerProcess(join(options.root, 'servers', id), id, { env: s.#env });
        s.#servers.set(id, server);
        for (const u of options.users) await server.createUser(u.username, u.password, u.role ?? 'field_worker');
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await s.teardown().catch(() => undefined);
      throw failed.reason;
    }
    return s;
  }

  /** @throws when the scenario has no such server. */
  server(id: string): ServerProcess {
    const server = this.#servers.get(id);
    if (server === undefined) throw new Error(`no server ${id} in this scenario`);
    return server;
  }

  get servers(): ServerProcess[] {
    return [...this.#servers.values()];
  }

  get serverIds(): string[] {
    return [...this.#servers.keys()];
  }

  get usernames(): string[] {
    return [...this.#users.keys()];
  }

  /** @throws when the scenario has no such user. */
  password(username: string): string {
    const u = this.#users.get(username);
    if (u === undefined) throw new Error(`no user ${username} in this scenario`);
    return u.password;
  }

  /**
   * A transport to a server that notes the keys its login answers carry (in `keys`) and the
   * session tokens (`tokens`, to prove a blacklisted device's tokens are dead on every route).
   */
  transport(serverId: string): Transport {
    const base = this.server(serverId).transport();
    return {
      ...base,
      login: async (body) => {
        const answer = await base.login(body);
        this.keys.see(answer);
        this.#tokens.push({ serverId, imei: body.imei, username: body.username, token: answer.token });
        return answer;
      },
    };
  }

  /** The session tokens servers issued to a phone (test-only memory, never written anywhere). */
  tokens(imei: string, serverId?: string): Array<{ readonly serverId: string; readonly username: string; readonly token: string }> {
    return this.#tokens.filter((x) => x.imei === imei && (serverId === undefined || x.serverId === serverId));
  }

  /**
   * A phone with its own directory and IMEI; `clockOffsetMs` sets its wall clock ahead (or behind,
   * negative) of the real one, within the servers' allowed skew (default 5 min).
   */
  async addPhone(name: string, imei: string, options: { readonly clockOffsetMs?: number } = {}): Promise<Phone> {
    if (this.#phones.has(name)) throw new Error(`phone ${name} exists`);
    const phone = await Phone.create(this, name, imei, join(this.root, 'phones', name), options.clockOffsetMs ?? 0);
    this.#phones.set(name, phone);
    return phone;
  }

  /** @throws when the scenario has no such phone. */
  phone(name: string): Phone {
    const p = this.#phones.get(name);
    if (p === undefined) throw new Error(`no phone ${name} in this scenario`);
    return p;
  }

  get phones(): Phone[] {
    return [...this.#phones.values()];
  }

  /** The key record each server holds for an IMEI (`null` where none was issued), by server id. */
  async serverKeys(imei: string): Promise<Record<string, KeyRecord | null>> {
    const out: Record<string, KeyRecord | null> = {};
    for (const [id, server] of this.#servers) out[id] = await server.deviceKey(imei);
    return out;
  }

  /** The ids of the records each server holds (deleted ones too), sorted, by server id. */
  async serverRecordIds(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const [id, records] of Object.entries(await this.serverRecords())) out[id] = records.map((r) => r.id).sort();
    return out;
  }

  /** Every record each server holds, by server id. */
  async serverRecords(): Promise<Record<string, ChildRecord[]>> {
    const out: Record<string, ChildRecord[]> = {};
    for (const [id, server] of this.#servers) out[id] = await server.records();
    return out;
  }

  /**
   * Stops a server (kill -9 with `kill`, else SIGINT) and starts it again on the same data
   * directory and port.
   */
  async restartServer(id: string, how: 'kill' | 'stop' = 'stop'): Promise<ServerProcess> {
    const server = this.server(id);
    await (how === 'kill' ? server.kill() : server.stop());
    const again = await server.restart();
    this.#servers.set(id, again);
    return again;
  }

  /** @internal Phones register the child processes they start, so teardown can end them. */
  track(child: ChildProcess): void {
    this.#children.add(child);
    child.on('exit', () => this.#children.delete(child));
  }

  /** Pids of the scenario's processes still running (servers and phone children). */
  livePids(): number[] {
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    return [...[...this.#servers.values()].map((s) => s.pid), ...[...this.#children].map((c) => c.pid ?? 0)].filter((pid) => pid > 0 && alive(pid));
  }

  /**
   * Logs every phone out, kills phone children still running, stops every server, removes `root`.
   * Once: a second call (the CLI's signal handler while the run's own teardown is under way) waits
   * for the first.
   */
  teardown(): Promise<void> {
    live.delete(this);
    this.#tornDown ??= this.#teardown();
    return this.#tornDown;
  }

  async #teardown(): Promise<void> {
    for (const p of this.#phones.values()) await p.close().catch(() => undefined);
    for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all([...this.#servers.values()].map((s) => s.stop().catch(() => s.kill())));
    // A server's store child exits a moment after its parent (it watches for it): retry while it lets go.
    if (this.#removeRoot) rmSync(this.root, { recursive: true, force: true, maxRetries: 20, retryDelay: 250 });
  }
}
