import { existsSync } from 'node:fs';
import { canonicalJson, compareKeyRecords, type ChildRecord, type KeyRecord } from '@fieldvault/protocol';
import { filesContaining } from '@fieldvault/test-support';
import { allRecords, idsOf } from '../phone.js';
import type { Scenario } from '../scenario.js';
import type { PhoneModel, RecordModel } from './model.js';

/** The prefix of every plaintext canary the simulation writes into records (it must be in no file on a phone). */
export const CANARY_PREFIX = 'SIM-CANARY-';

/** A broken invariant: which one, and what was seen. */
export interface Violation {
  readonly invariant: string;
  readonly detail: string;
}

/** What invariants keep between steps (key records seen, to prove they only move forward). */
export interface InvariantState {
  readonly lastKeys: Map<string, KeyRecord>;
}

export interface CheckResult {
  readonly checked: number;
  readonly violations: Violation[];
}

class Checker {
  checked = 0;
  readonly violations: Violation[] = [];
  check(invariant: string, ok: boolean, detail: () => string): void {
    this.checked += 1;
    if (!ok) this.violations.push({ invariant, detail: detail() });
  }
}

function notesIn(record: ChildRecord): unknown[] {
  return record.history.filter((h) => h.field === 'notes').map((h) => h.value);
}

/**
 * Phone-side invariants of one phone at rest (no session open): the database files are exactly
 * those the keyring names; every user with keys logs in offline; an unverified user sees only
 * their own records; the records made on this phone are all there, each once, with every notes
 * value ever written in their history.
 */
async function checkPhoneAtRest(c: Checker, sc: Scenario, m: PhoneModel, records: readonly RecordModel[]): Promise<void> {
  const p = m.phone;
  const state = await p.state();
  if (state.pending === 0) {
    const k = p.keyring();
    const live = new Set<string>();
    if (k?.verified) live.add(k.verified.keyId);
    for (const r of Object.values(k?.temporary ?? {})) live.add(r.keyId);
    const unverifiedKeys = new Set((k?.entries ?? []).filter((e) => e.kind === 'unverified').map((e) => e.keyId));
    const serverDbs = state.databases.filter((d) => d.key !== 'phone-made').map((d) => d.key);
    c.check('phone-databases-match-keyring', serverDbs.every((id) => live.has(id)) && state.databases.length === live.size + unverifiedKeys.size, () =>
      `${m.name}: databases ${JSON.stringify(state.databases.map((d) => d.key))}, keyring names verified/temporary ${JSON.stringify([...live])} and ${unverifiedKeys.size} unverified`,
    );
  }
  const made = records.filter((r) => r.phone === m.name);
  const byId = new Map(records.map((r) => [r.id, r]));
  for (const user of [...m.users.keys()].sort()) {
    let view: { kind: string; records: ChildRecord[] };
    try {
      const s = await p.loginOffline(user);
      try {
        view = { kind: s.kind, records: await allRecords(s) };
      } finally {
        await s.logout();
      }
    } catch (err) {
      c.check('offline-login-kept', false, () => `${m.name}: ${user} can no longer log in offline (${String((err as { code?: string }).code ?? err)})`);
      continue;
    }
    c.check('offline-login-kept', true, () => '');
    const ids = idsOf(view.records);
    c.check('no-duplicate-record', new Set(ids).size === ids.length, () => `${m.name}: ${user} sees a record twice`);
    if (view.kind === 'unverified') {
      const foreign = ids.filter((id) => byId.get(id)?.creator !== user);
      c.check('unverified-sees-only-own', foreign.length === 0, () => `${m.name}: unverified ${user} sees ${foreign.join(', ')}`);
    }
    const seen = new Map(view.records.map((r) => [r.id, r]));
    const mine = made.filter((r) => r.creator === user);
    const lost = mine.filter((r) => !seen.has(r.id));
    c.check('no-record-lost', lost.length === 0, () => `${m.name}: ${user}'s records ${lost.map((r) => r.id).join(', ')} are gone`);
    for (const r of mine) {
      const got = seen.get(r.id);
      if (got === undefined) continue;
      const missing = r.notes.filter((n) => !notesIn(got).includes(n));
      c.check('no-history-lost', missing.length === 0, () => `${m.name}: record ${r.id} lost notes ${JSON.stringify(missing)}`);
    }
  }
}

/** Invariants checked after every step. `atRest` names the phones to check fully (no session open). */
export async function checkStep(
  sc: Scenario,
  phones: readonly PhoneModel[],
  records: readonly RecordModel[],
  state: InvariantState,
  atRest: readonly string[],
): Promise<CheckResult> {
  const c = new Checker();
  // Keys only move forward: a server never goes back to an older key for an IMEI.
  for (const server of sc.servers) {
    for (const m of phones) {
      const key = await server.deviceKey(m.phone.imei);
      const id = `${server.serverId}/${m.phone.imei}`;
      const last = state.lastKeys.get(id);
      if (key === null) {
        c.check('server-key-kept', last === undefined, () => `${id}: the key ${last?.keyId ?? ''} disappeared`);
        continue;
      }
      c.check('server-key-moves-forward', last === undefined || compareKeyRecords(key, last) >= 0, () => `${id}: ${key.keyId} replaced the newer ${last?.keyId ?? ''}`);
      state.lastKeys.set(id, key);
    }
  }
  for (const m of phones) {
    const leaked = existsSync(m.phone.dir) ? filesContaining(m.phone.dir, CANARY_PREFIX) : [];
    c.check('no-plaintext-on-phone', leaked.length === 0, () => `${m.name}: plaintext canary in ${leaked.join(', ')}`);
    if (m.session !== null) {
      const s = m.phone.session;
      if (s?.kind === 'unverified') {
        const byId = new Map(records.map((r) => [r.id, r]));
        const foreign = idsOf(await allRecords(s)).filter((id) => byId.get(id)?.creator !== s.username);
        c.check('unverified-sees-only-own', foreign.length === 0, () => `${m.name}: unverified ${s.username} sees ${foreign.join(', ')}`);
      }
    } else if (atRest.includes(m.name)) {
      await checkPhoneAtRest(c, sc, m, records);
    }
  }
  return { checked: c.checked, violations: c.violations };
}

/**
 * Invariants at quiescence (after everyone logged in to and synced with every server): one key
 * per IMEI on every server and the phone, one database per phone, every record on every server
 * and every phone, identical everywhere, each once, with its whole history; plus every phone check.
 */
export async function checkQuiescence(sc: Scenario, phones: readonly PhoneModel[], records: readonly RecordModel[], state: InvariantState): Promise<CheckResult> {
  const c = new Checker();
  const onServers = await sc.serverRecords();
  const reference = new Map<string, string>();
  for (const [server, list] of Object.entries(onServers)) {
    const ids = idsOf(list);
    c.check('no-duplicate-record', new Set(ids).size === ids.length, () => `${server} holds a record twice`);
    const byId = new Map(list.map((r) => [r.id, r]));
    for (const r of records) {
      const got = byId.get(r.id);
      c.check('record-on-every-server', got !== undefined, () => `${server} lacks record ${r.id} (made on ${r.phone} by ${r.creator})`);
      if (got === undefined) continue;
      const missing = r.notes.filter((n) => !notesIn(got).includes(n));
      c.check('no-history-lost', missing.length === 0, () => `${server}: record ${r.id} lost notes ${JSON.stringify(missing)}`);
      const text = canonicalJson(got);
      const ref = reference.get(r.id);
      if (ref === undefined) reference.set(r.id, text);
      else c.check('servers-converged', ref === text, () => `record ${r.id} differs between servers`);
    }
  }
  for (const m of phones) {
    const keys = await sc.serverKeys(m.phone.imei);
    const verified = m.phone.keyring()?.verified ?? null;
    if (m.users.size === 0) {
      // A phone nobody used: no key anywhere, no database.
      c.check('unused-phone-untouched', Object.values(keys).every((k) => k === null) && verified === null && (await m.phone.databases()).length === 0, () =>
        `${m.name} was never used, yet keys ${JSON.stringify(keys)} / databases exist`,
      );
      continue;
    }
    for (const [server, key] of Object.entries(keys)) {
      c.check('one-key-per-imei', key !== null && verified !== null && key.keyId === verified.keyId && key.issuedAt === verified.issuedAt, () =>
        `${m.name}: ${server} holds ${key?.keyId ?? 'no key'}, the phone ${verified?.keyId ?? 'none'}`,
      );
    }
    const st = await m.phone.state();
    c.check('one-database-per-phone', st.databases.length === 1 && st.pending === 0 && Object.keys(st.temporary).length === 0, () =>
      `${m.name}: databases ${JSON.stringify(st.databases.map((d) => d.key))}, temporary ${JSON.stringify(st.temporary)}, pending ${st.pending}`,
    );
    const user = [...m.users.keys()].sort()[0];
    if (user !== undefined) {
      const s = await m.phone.loginOffline(user);
      const local = new Map((await allRecords(s, true)).map((r) => [r.id, r]));
      await s.logout();
      for (const r of records) {
        const got = local.get(r.id);
        c.check('record-on-every-phone', got !== undefined, () => `${m.name} lacks record ${r.id}`);
        if (got !== undefined) c.check('phone-converged', canonicalJson(got) === reference.get(r.id), () => `${m.name}: record ${r.id} differs from the servers'`);
      }
    }
  }
  const step = await checkStep(sc, phones, records, state, phones.map((m) => m.name));
  return { checked: c.checked + step.checked, violations: [...c.violations, ...step.violations] };
}
