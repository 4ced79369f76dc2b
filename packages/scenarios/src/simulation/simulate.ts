import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { png } from '@fieldvault/test-support';
import { Scenario } from '../scenario.js';
import { checkQuiescence, checkStep, CANARY_PREFIX, type InvariantState, type Violation } from './invariants.js';
import { describe, type Action, type PhoneModel, type RecordModel } from './model.js';
import { createRandom, type Random } from './random.js';

export interface SimulationOptions {
  readonly seed: number;
  /** Random steps before the quiescence phase. */
  readonly steps: number;
  /** Servers (default 3), phones (default 3, at least 2) and users (default 5). */
  readonly servers?: number;
  readonly phones?: number;
  readonly users?: number;
  /** Where the scenario's directories go (default a fresh temporary directory, removed afterwards unless `keep`). */
  readonly root?: string;
  readonly keep?: boolean;
  /** Run the quiescence phase and its checks after the steps (default true). */
  readonly quiesce?: boolean;
  /** Called with one line per step (the CLI prints them). */
  readonly onLine?: (line: string) => void;
}

export interface StepReport {
  readonly index: number;
  readonly action: Action;
  readonly outcome: string;
  readonly invariantsChecked: number;
}

export interface SimulationReport {
  readonly seed: number;
  readonly steps: readonly StepReport[];
  /** Invariants checked, in all. */
  readonly invariantsChecked: number;
  /** Empty when the run passed. */
  readonly violations: readonly Violation[];
  /** The step after which the first violation (or an unexpected error) was seen; -1 at quiescence; null when none. */
  readonly failedAt: number | null;
  readonly records: number;
  readonly ms: number;
  /** On failure: the last warnings and errors each server logged. */
  readonly serverLogs: Readonly<Record<string, readonly string[]>>;
  /** How many servers, phones and users the run had: replaying the seed needs them too. */
  readonly topology: Topology;
}

/** The sizes a seed's run depends on besides its steps. */
export interface Topology {
  readonly servers: number;
  readonly phones: number;
  readonly users: number;
}

/** Defaults of {@link SimulationOptions}' sizes (the CLI's too). */
export const DEFAULT_TOPOLOGY: Topology = { servers: 3, phones: 3, users: 5 };

const PASSWORD_WORDS = ['amber', 'lantern', 'quiet', 'harbour', 'copper', 'kettle', 'granite', 'river', 'meadow', 'falcon'];

/** IMEIs with a valid Luhn check digit are not required by the server; 15 digits are. */
function imeiOf(index: number): string {
  return `35693803565${String(1000 + index).padStart(4, '0')}`;
}

/** One step: what could be done now, chosen by weight. Reads only the model, never real state, so a seed replays. */
function nextAction(rnd: Random, phones: readonly PhoneModel[], records: readonly RecordModel[], users: readonly string[], servers: readonly string[], known: Map<string, Set<string>>): Action {
  const global: Array<readonly [() => Action, number]> = [];
  const rekeyable = servers.flatMap((s) => [...(known.get(s) ?? [])].map((p) => [s, p] as const));
  if (rekeyable.length > 0) global.push([() => { const [server, phone] = rnd.pick(rekeyable); return { kind: 'rekey', server, phone }; }, 1]);
  global.push([() => ({ kind: 'restart-server', server: rnd.pick(servers), how: rnd.chance(0.5) ? 'kill' : 'stop' }), 1]);

  const m = rnd.pick(phones);
  const local: Array<readonly [() => Action, number]> = [];
  const phone = m.name;
  const strangers = users.filter((u) => !m.users.has(u));
  if (m.session === null) {
    if (strangers.length > 0) local.push([() => ({ kind: 'sign-up-offline', phone, user: rnd.pick(strangers) }), 2]);
    if (m.users.size > 0) local.push([() => ({ kind: 'login-offline', phone, user: rnd.pick([...m.users.keys()].sort()) }), 4]);
    local.push([() => ({ kind: 'login-online', phone, user: rnd.pick(users), server: rnd.pick(servers) }), 4]);
    local.push([() => ({ kind: 'kill-phone', phone, user: rnd.pick(users), server: rnd.pick(servers), at: rnd.pick(['push', 'pull', 'migration'] as const) }), 2]);
  } else {
    const user = m.session.user;
    local.push([() => ({ kind: 'create-record', phone, photo: rnd.chance(0.3) }), 9]);
    const own = records.flatMap((r, i) => (r.phone === phone && r.creator === user ? [i] : []));
    if (own.length > 0) local.push([() => ({ kind: 'edit-record', phone, record: rnd.pick(own), notes: `notes ${rnd.int(0, 1_000_000)}` }), 4]);
    local.push([() => ({ kind: 'sync', phone, server: rnd.pick(servers) }), 4]);
    local.push([() => ({ kind: 'login-online', phone, user, server: rnd.pick(servers) }), 1]);
    local.push([() => ({ kind: 'logout', phone }), 1]);
  }
  return rnd.weighted([...global, ...local])();
}

/** Carries out one action on the real servers and phones and updates the model; returns a short outcome. */
async function perform(sc: Scenario, a: Action, models: Map<string, PhoneModel>, records: RecordModel[], known: Map<string, Set<string>>, canary: () => string): Promise<string> {
  const model = (name: string): PhoneModel => models.get(name) as PhoneModel;
  const seen = (server: string, phone: string): void => void known.get(server)?.add(phone);
  switch (a.kind) {
    case 'sign-up-offline': {
      const m = model(a.phone);
      await m.phone.signUpOffline(a.user);
      m.users.set(a.user, 'unverified');
      return 'signed up';
    }
    case 'login-offline': {
      const m = model(a.phone);
      const s = await m.phone.loginOffline(a.user);
      m.session = { user: a.user, servers: new Set() };
      return `${s.kind}`;
    }
    case 'login-online': {
      const m = model(a.phone);
      if (m.session !== null && m.session.user !== a.user) {
        await m.phone.logout();
        m.session = null;
      }
      const s = await m.phone.loginOnline(a.user, a.server);
      m.users.set(a.user, 'server');
      m.session = { user: a.user, servers: new Set([...(m.session?.servers ?? []), a.server]) };
      seen(a.server, a.phone);
      return `${s.kind} ${s.keyId.slice(0, 8)}`;
    }
    case 'create-record': {
      const m = model(a.phone);
      const s = m.phone.session;
      if (s === undefined || m.session === null) throw new Error('no session');
      const r = await s.createRecord({ name: `${canary()} child`, age: 7 });
      if (a.photo) await s.addPhoto(r.id, png(canary()));
      records.push({ id: r.id, phone: a.phone, creator: m.session.user, notes: [] });
      return `record ${r.id.slice(0, 8)} (${s.kind})`;
    }
    case 'edit-record': {
      const m = model(a.phone);
      const s = m.phone.session;
      const r = records[a.record];
      if (s === undefined || r === undefined) throw new Error('no session or record');
      await s.updateRecord(r.id, { notes: a.notes });
      r.notes.push(a.notes);
      return 'edited';
    }
    case 'sync': {
      const m = model(a.phone);
      if (m.session === null) throw new Error('no session');
      if (!m.session.servers.has(a.server)) {
        // A sync needs an online login to that server first (as an app would do).
        await m.phone.loginOnline(m.session.user, a.server);
        m.users.set(m.session.user, 'server');
        m.session.servers.add(a.server);
        seen(a.server, a.phone);
      }
      const summary = await m.phone.sync(a.server, { retry: { attempts: 6, baseDelayMs: 200 } });
      if (summary.failed.length > 0 || summary.photos.failed.length > 0) {
        throw new Error(`records or photos refused: ${JSON.stringify([summary.failed, summary.photos.failed])}`);
      }
      return `pushed ${summary.pushed}, pulled ${summary.pulled}, photos ${summary.photos.uploaded}↑ ${summary.photos.downloaded}↓`;
    }
    case 'logout': {
      const m = model(a.phone);
      await m.phone.logout();
      m.session = null;
      return 'logged out';
    }
    case 'rekey': {
      const view = await sc.server(a.server).deviceAction(model(a.phone).phone.imei, 'rekey', 'simulation');
      return `new key ${String((view['key'] as { keyId?: string } | null)?.keyId ?? '').slice(0, 8)}`;
    }
    case 'restart-server': {
      await sc.restartServer(a.server, a.how);
      // Sessions live in the server's store: they survive a restart.
      return 'restarted';
    }
    case 'kill-phone': {
      const m = model(a.phone);
      m.session = null; // the child owns the phone while it runs
      const kill = a.at === 'push' ? { pushed: 1 } : a.at === 'pull' ? { pulled: 1 } : { migration: 'records-copied' as const };
      // The process registers two records first, so that there is always something to push.
      const run = await m.phone.runProcess(a.user, a.server, { sync: true, kill, create: [`${canary()} child`, `${canary()} child`] });
      if (run.signal !== 'SIGKILL' && !/completed/.test(run.out)) throw new Error(`the phone process failed: ${run.out.trim()}`);
      for (const [, id] of run.out.matchAll(/^created (\S+)$/gm)) records.push({ id: id as string, phone: a.phone, creator: a.user, notes: [] });
      m.users.set(a.user, 'server');
      seen(a.server, a.phone);
      return run.signal === 'SIGKILL' ? (/killed (.*)/.exec(run.out)?.[1] ?? 'killed') : 'completed (no kill point reached)';
    }
  }
}

/**
 * Quiescence: every user with keys on a phone logs in to every server (twice round, so a key one
 * server learns reaches the others), then every phone syncs with every server twice round.
 */
async function quiesce(sc: Scenario, phones: readonly PhoneModel[], servers: readonly string[], onLine: (l: string) => void): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (const m of phones) {
      for (const user of [...m.users.keys()].sort()) {
        await m.phone.logout(); // one user at a time on a phone
        for (const server of servers) {
          await m.phone.loginOnline(user, server);
          m.users.set(user, 'server');
        }
      }
      await m.phone.logout();
      m.session = null;
    }
  }
  for (let round = 0; round < 2; round++) {
    for (const m of phones) {
      const user = [...m.users.keys()].sort()[0];
      if (user === undefined) continue;
      await m.phone.logout();
      for (const server of servers) {
        await m.phone.loginOnline(user, server);
        await m.phone.sync(server, { retry: { attempts: 6, baseDelayMs: 200 } });
      }
      await m.phone.logout();
      m.session = null;
    }
  }
  onLine('quiescence: every user logged in to every server, every phone synced with every server twice');
}

/** Runs one seeded simulation end to end and reports; never throws for a broken invariant (it is in the report). */
export async function simulate(options: SimulationOptions): Promise<SimulationReport> {
  const started = Date.now();
  const onLine = options.onLine ?? (() => undefined);
  const rnd = createRandom(options.seed);
  const serverIds = Array.from({ length: options.servers ?? DEFAULT_TOPOLOGY.servers }, (_, i) => `server-${i + 1}`);
  const usernames = Array.from({ length: options.users ?? DEFAULT_TOPOLOGY.users }, (_, i) => `user${i + 1}`);
  const users = usernames.map((username) => ({
    username,
    // Passwords come from the seed too, long enough for the policy (15+ characters).
    password: `${Array.from({ length: 4 }, () => rnd.pick(PASSWORD_WORDS)).join(' ')} ${rnd.int(100, 999)}`,
  }));
  const root = options.root ?? mkdtempSync(join(tmpdir(), `fieldvault-sim-${options.seed}-`));
  const sc = await Scenario.start({ root, servers: serverIds, users, removeRoot: options.keep !== true });
  const steps: StepReport[] = [];
  const violations: Violation[] = [];
  const records: RecordModel[] = [];
  const state: InvariantState = { lastKeys: new Map() };
  const known = new Map(serverIds.map((s) => [s, new Set<string>()]));
  let invariantsChecked = 0;
  let failedAt: number | null = null;
  const serverLogs: Record<string, string[]> = {};
  let canaries = 0;
  const phoneCount = Math.max(2, options.phones ?? DEFAULT_TOPOLOGY.phones);
  const canary = (): string => `${CANARY_PREFIX}${options.seed}-${++canaries}`;
  try {
    const models = new Map<string, PhoneModel>();
    for (let i = 0; i < phoneCount; i++) {
      const name = `phone-${i + 1}`;
      // Clocks within the allowed skew (5 min): up to two minutes ahead or behind.
      const clockOffsetMs = rnd.int(-120, 120) * 1_000;
      models.set(name, { name, phone: await sc.addPhone(name, imeiOf(i), { clockOffsetMs }), users: new Map(), session: null });
    }
    const phones = [...models.values()];
    for (let index = 1; index <= options.steps; index++) {
      const action = nextAction(rnd, phones, records, usernames, serverIds, known);
      let outcome: string;
      try {
        outcome = await perform(sc, action, models, records, known, canary);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        violations.push({ invariant: 'action-succeeds', detail: `${describe(action)}: ${e.code ?? ''} ${e.message ?? String(err)}` });
        steps.push({ index, action, outcome: 'FAILED', invariantsChecked: 0 });
        failedAt = index;
        onLine(`#${index} ${describe(action)} — FAILED: ${e.code ?? ''} ${e.message ?? String(err)}`);
        break;
      }
      const atRest = 'phone' in action ? [action.phone] : [];
      const result = await checkStep(sc, phones, records, state, atRest);
      invariantsChecked += result.checked;
      steps.push({ index, action, outcome, invariantsChecked: result.checked });
      onLine(`#${index} ${describe(action)} — ${outcome} [${result.checked} checks]`);
      if (result.violations.length > 0) {
        violations.push(...result.violations);
        failedAt = index;
        break;
      }
    }
    if (failedAt === null && options.quiesce !== false) {
      try {
        await quiesce(sc, phones, serverIds, onLine);
        const result = await checkQuiescence(sc, phones, records, state);
        invariantsChecked += result.checked;
        onLine(`quiescence: ${result.checked} checks`);
        if (result.violations.length > 0) {
          violations.push(...result.violations);
          failedAt = -1;
        }
      } catch (err) {
        const e = err as { code?: string; message?: string };
        violations.push({ invariant: 'quiescence-succeeds', detail: `${e.code ?? ''} ${e.message ?? String(err)}` });
        failedAt = -1;
      }
    }
  } finally {
    if (failedAt !== null) {
      // What the servers logged (warn and above) helps with a 500 or a refused request.
      for (const server of sc.servers) {
        const log = server.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-5);
        if (log.length > 0) serverLogs[server.serverId] = log;
      }
    }
    await sc.teardown();
  }
  return { seed: options.seed, steps, invariantsChecked, violations, failedAt, records: records.length, ms: Date.now() - started, serverLogs, topology: { servers: serverIds.length, phones: phoneCount, users: usernames.length } };
}
