import { randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import nano from 'nano';
import {
  applyEdit,
  createClock,
  createRecord,
  type ChildRecord,
  type FieldValue,
  type HlcClock,
  type PullResponse,
  type PushResponse,
} from '@fieldvault/protocol';
import { bearer, createUser, login, newDevice, type Device, type FakeClock, type TestApp } from './helpers.js';

/** A logged-in user on their own simulated phone, with the phone's HLC. */
export interface Phone {
  readonly username: string;
  readonly token: string;
  readonly device: Device;
  readonly clock: HlcClock;
}

/** Creates a user with `role` (by the admin) and logs them in from a new phone. */
export async function phoneFor(app: FastifyInstance, adminToken: string, wall: FakeClock, username: string, role = 'field_worker'): Promise<Phone> {
  const password = await createUser(app, adminToken, username, role);
  const device = newDevice();
  const { token } = await login(app, device, { username, password });
  return { username, token, device, clock: createClock({ node: device.imei, now: wall.now }) };
}

/** Logs an existing user in from another phone. */
export async function phoneFromLogin(app: FastifyInstance, wall: FakeClock, username: string, password: string): Promise<Phone> {
  const device = newDevice();
  const { token } = await login(app, device, { username, password });
  return { username, token, device, clock: createClock({ node: device.imei, now: wall.now }) };
}

/** A new record created on `phone` by its user. */
export function newRecord(phone: Phone, fields: Record<string, FieldValue>, overrides: Partial<{ createdBy: string; id: string }> = {}): ChildRecord {
  return createRecord({
    id: overrides.id ?? randomUUID(),
    createdBy: overrides.createdBy ?? phone.username,
    device: phone.device.imei,
    clockTs: phone.clock.now(),
    fields,
  });
}

/** `record` with `field` set on `phone` by its user. */
export function edit(phone: Phone, record: ChildRecord, field: string, value: FieldValue): ChildRecord {
  return applyEdit(record, { field, value, by: phone.username, device: phone.device.imei, ts: phone.clock.now() });
}

/**
 * With `FIELDVAULT_TEST_PUSH_HINT=all` (sync-push-hinted.test.ts) every push also names every
 * record as never acknowledged (the `unacknowledged` hint), mostly wrongly: the push tests then
 * check that a hint, right or wrong, changes no outcome.
 */
const hintAll = process.env['FIELDVAULT_TEST_PUSH_HINT'] === 'all';

export async function pushRaw(app: FastifyInstance, token: string, records: readonly unknown[]): Promise<LightMyRequestResponse> {
  const payload = hintAll ? { records, unacknowledged: records.map((_, i) => i) } : { records };
  return app.inject({ method: 'POST', url: '/v1/sync/push', headers: bearer(token), payload });
}

export async function push(app: FastifyInstance, token: string, records: readonly unknown[]): Promise<PushResponse> {
  const res = await pushRaw(app, token, records);
  if (res.statusCode !== 200) throw new Error(`push failed: ${res.statusCode} ${res.body}`);
  return res.json() as PushResponse;
}

export async function pull(app: FastifyInstance, token: string, since?: string, limit?: number): Promise<PullResponse> {
  const qs = new URLSearchParams();
  if (since !== undefined) qs.set('since', since);
  if (limit !== undefined) qs.set('limit', String(limit));
  const res = await app.inject({ method: 'GET', url: `/v1/sync/pull?${qs.toString()}`, headers: bearer(token) });
  if (res.statusCode !== 200) throw new Error(`pull failed: ${res.statusCode} ${res.body}`);
  return res.json() as PullResponse;
}

/** Every record a user pulls, page by page from the start. */
export async function pullAll(app: FastifyInstance, token: string, limit = 1000): Promise<{ records: ChildRecord[]; pages: number; checkpoint: string }> {
  const records: ChildRecord[] = [];
  let since: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await pull(app, token, since, limit);
    pages += 1;
    records.push(...page.records);
    since = page.checkpoint;
    if (!page.more) return { records, pages, checkpoint: since };
  }
}

/** The raw CouchDB document of a record (to check revisions: reading the store is not mocking it). */
export async function recordDoc(couchUrl: string, ta: TestApp, id: string): Promise<Record<string, unknown> & { _rev: string }> {
  const db = nano(couchUrl).use<Record<string, unknown>>(`${ta.config.couch.dbPrefix as string}records`);
  return (await db.get(`rec:${id}`)) as Record<string, unknown> & { _rev: string };
}
