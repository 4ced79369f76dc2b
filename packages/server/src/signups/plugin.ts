import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { fromBase64, verifyDevice } from '@fieldvault/crypto';
import {
  FieldvaultError,
  SignupRequestBodySchema,
  SignupRequestResponseSchema,
  SignupStatusBodySchema,
  SignupStatusResponseSchema,
  assertMatchesForm,
  assertPasswordAcceptable,
  checkRecordLimits,
  isFieldvaultError,
  mergeRecords,
  signupSignatureMessage,
  visibleFields,
  type ChildRecord,
  type PushResult,
  type SignupAction,
} from '@fieldvault/protocol';
import type { QuarantinedRecord, RecordEnvelope, SignupRecord, UserRecord } from '../couch/records.js';
import { CouchSignupStore } from '../couch/signup-store.js';
import { clientKey } from '../http/client-key.js';
import { EmptyObjectSchema, iso, isoOrNull, responses } from '../http/schemas.js';
import { hashSecret } from '../http/tokens.js';
import type { AuthContext } from '../sessions/plugin.js';
import { errorResult, mergePushed, parsePushItem, pushItemId, resolvePhotoOwners, type PushContext } from '../sync/push.js';
import { userView } from '../users/schemas.js';
import { QuarantineQuota, SignupsPerClient, recordBytes } from './limits.js';
import {
  ApproveBodySchema,
  ApproveResponseSchema,
  RejectResponseSchema,
  SignupListQuerySchema,
  SignupListResponseSchema,
  SignupParamsSchema,
  SignupShowQuerySchema,
  SignupShowResponseSchema,
  signupView,
} from './schemas.js';

/** Quarantined records moved into the records database per round of an approval. */
const MOVE_PAGE = 200;

interface DeviceProof {
  readonly username: string;
  readonly imei: string;
  readonly devicePublicKey: string;
  readonly challenge: string;
  readonly signature: string;
}

/**
 * Pending sign-ups (issue 7): an unverified phone user asks for an account when online; admins
 * list, show, approve (the user keeps the password chosen on the phone) or reject the request.
 *
 * The records sent with a request go to the quarantine database `<prefix>pending`, never to the
 * records database, so pull, search and photo rights cannot reach them; approval moves them
 * through the push path's merge (`mergePushed`), stamped as if the new user had pushed them from
 * the asking device. The phone's own records keep their ids, so the phone's first push after
 * its online login merges into them without duplicates.
 */
export const signupsPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = app.fieldvaultConfig;
  const store = new CouchSignupStore({ url: config.couch.url, dbPrefix: config.couch.dbPrefix, endpoint: app.storeEndpoint });
  const authLimit = { rateLimit: { max: config.rateLimit.authMax, timeWindow: config.rateLimit.timeWindowMs } };
  const limits = { maxHistory: config.sync.maxHistory };
  const perClient = new SignupsPerClient(config.signups.perClientPerHour, app.now);

  /**
   * A new request (not a renewal) is counted against its address's hourly allowance and the
   * server-wide number of pending requests before it costs a password hash (security audit M3).
   * @throws SIGNUP_TOO_MANY_FROM_ADDRESS, SIGNUP_SERVER_FULL
   */
  async function assertRoomForNew(client: string): Promise<void> {
    perClient.take(client);
    const max = config.signups.maxPending;
    const pending = await store.listSignups('pending', max, undefined);
    if (pending.items.length >= max) {
      perClient.refund(client);
      throw new FieldvaultError('SIGNUP_SERVER_FULL', { details: { maxPending: max } });
    }
  }

  /** The records `username` holds in quarantine now, by id. */
  async function quarantinedRecords(username: string): Promise<Map<string, ChildRecord>> {
    const held = new Map<string, ChildRecord>();
    let after: string | undefined;
    for (;;) {
      const page = await store.listQuarantined(username, after, MOVE_PAGE);
      for (const q of page) held.set(q.record.id, q.record);
      const last = page[page.length - 1];
      if (page.length < MOVE_PAGE || last === undefined) return held;
      after = last.record.id;
    }
  }

  /**
   * The login's device checks, for a sign-up call: a fresh single-use challenge for this IMEI,
   * an Ed25519 signature by the key sent, and a device state that allows a new user (not
   * blacklisted, not retired, not bound to another key).
   * @throws DEVICE_SIGNATURE_INVALID, DEVICE_BLACKLISTED, DEVICE_RETIRED, DEVICE_BINDING_MISMATCH
   */
  async function verifyDeviceProof(body: DeviceProof, action: SignupAction): Promise<void> {
    const challenge = await app.repo.consumeChallenge(hashSecret(body.challenge));
    if (challenge === undefined || challenge.imei !== body.imei || challenge.expiresAt <= app.now()) {
      throw new FieldvaultError('DEVICE_SIGNATURE_INVALID', { detail: 'unknown, expired or already used challenge' });
    }
    const message = signupSignatureMessage({ action, challenge: body.challenge, username: body.username, imei: body.imei });
    let ok: boolean;
    try {
      ok = verifyDevice(fromBase64(body.devicePublicKey), message, fromBase64(body.signature));
    } catch {
      ok = false; // not a valid Ed25519 public key
    }
    if (!ok) throw new FieldvaultError('DEVICE_SIGNATURE_INVALID');
    const device = await app.repo.getDevice(body.imei);
    if (device === undefined) return;
    if (device.status === 'blacklisted') throw new FieldvaultError('DEVICE_BLACKLISTED');
    if (device.status === 'retired') throw new FieldvaultError('DEVICE_RETIRED');
    if (device.publicKey !== null && device.publicKey !== body.devicePublicKey) throw new FieldvaultError('DEVICE_BINDING_MISMATCH');
  }

  function sameDevice(s: SignupRecord, body: DeviceProof): boolean {
    return s.imei === body.imei && s.devicePublicKey === body.devicePublicKey;
  }

  /**
   * Validates one record sent with a request: a well-formed record (`parsePushItem`, as a push),
   * created by the asking user (an unverified user sends only their own records), within the
   * limits and the form.
   * @throws RECORD_INVALID, RECORD_TOO_LARGE, RECORD_FIELD_FORBIDDEN, RECORD_FORBIDDEN
   */
  function parseQuarantineItem(raw: unknown, username: string): ChildRecord {
    const record = parsePushItem(raw, limits);
    if (record.createdBy !== username) {
      throw new FieldvaultError('RECORD_FORBIDDEN', { detail: 'createdBy: a sign-up carries only the asking user\'s own records', details: { field: 'createdBy' } });
    }
    checkRecordLimits(record, limits);
    assertMatchesForm(visibleFields(record), app.childForm);
    return record;
  }

  r.post(
    '/v1/signups',
    {
      config: authLimit,
      // Smaller than a push: anyone may call this route, no account needed (security audit M3).
      bodyLimit: config.signups.maxBytes,
      schema: { body: SignupRequestBodySchema, response: responses({ 200: SignupRequestResponseSchema }) },
    },
    async (request) => {
      const body = request.body;
      const { username } = body;
      const client = clientKey(request.ip);
      // This address's share of the login queue, not all of it (security audit M4).
      const hasher = app.passwordHasher.forClient(client);
      await verifyDeviceProof(body, 'request');
      const items = body.records ?? [];
      const max = config.signups.maxRecords;
      if (items.length > max) {
        throw new FieldvaultError('INPUT_TOO_LARGE', { detail: `records: at most ${max} per request; send the rest in further requests`, details: { field: 'records', maxRecords: max } });
      }
      if ((await app.repo.getUser(username)) !== undefined) throw new FieldvaultError('SIGNUP_USERNAME_TAKEN');
      const password = assertPasswordAcceptable(body.password, config.password, { username });

      // A renewed request (same device, e.g. to send more records) must prove the same password:
      // another user of a shared phone cannot take over or re-password someone's request.
      const before = await store.getSignup(username);
      let passwordHash: string;
      if (before?.status === 'pending') {
        if (!sameDevice(before, body)) throw new FieldvaultError('SIGNUP_PENDING_ELSEWHERE');
        if (before.passwordHash === null || !(await hasher.verify(before.passwordHash, password))) {
          throw new FieldvaultError('AUTH_INVALID_CREDENTIALS');
        }
        passwordHash = before.passwordHash;
      } else {
        await assertRoomForNew(client);
        passwordHash = await hasher.hash(password);
      }
      const now = app.now();
      const saved = await store.modifySignup(username, (cur) => {
        if (cur?.status === 'pending') {
          if (!sameDevice(cur, body)) throw new FieldvaultError('SIGNUP_PENDING_ELSEWHERE');
          if (cur.passwordHash !== passwordHash) throw new FieldvaultError('AUTH_INVALID_CREDENTIALS');
          return { ...cur, updatedAt: now };
        }
        if (cur?.status === 'approved') throw new FieldvaultError('SIGNUP_USERNAME_TAKEN');
        // None yet, or a rejected one: a fresh request replaces the outcome.
        return {
          username,
          status: 'pending',
          passwordHash,
          imei: body.imei,
          devicePublicKey: body.devicePublicKey,
          requestedAt: now,
          updatedAt: now,
          decidedAt: null,
          decidedBy: null,
          role: null,
        };
      });
      if (saved === undefined) throw new FieldvaultError('INTERNAL_ERROR', { details: { op: 'signup.request' } });

      // Each record on its own, as a push: one bad record fails alone.
      const results: Array<PushResult | undefined> = new Array<PushResult | undefined>(items.length).fill(undefined);
      const byId = new Map<string, { record: ChildRecord; indexes: number[] }>();
      items.forEach((raw, i) => {
        try {
          const record = parseQuarantineItem(raw, username);
          const seen = byId.get(record.id);
          byId.set(record.id, seen === undefined ? { record, indexes: [i] } : { record: mergeRecords(seen.record, record), indexes: [...seen.indexes, i] });
        } catch (err) {
          results[i] = errorResult(pushItemId(raw), err);
        }
      });
      // The quota of what one request may hold in quarantine (renewals included): records beyond
      // it fail alone with SIGNUP_QUARANTINE_FULL and stay on the phone for the first sync.
      const held = byId.size === 0 ? new Map<string, ChildRecord>() : await quarantinedRecords(username);
      const quota = new QuarantineQuota(
        new Map([...held].map(([id, record]) => [id, recordBytes(record)] as const)),
        config.signups.quarantineMaxRecords,
        config.signups.quarantineMaxBytes,
      );
      for (const [id, { record, indexes }] of byId) {
        const cur = held.get(id);
        try {
          quota.admit(id, recordBytes(cur === undefined ? record : mergeRecords(cur, record)));
        } catch (err) {
          for (const i of indexes) results[i] = errorResult(id, err);
          byId.delete(id);
        }
      }
      const changed = await store.modifyQuarantined(username, [...byId.keys()], (id, cur): QuarantinedRecord | undefined => {
        const incoming = (byId.get(id) as { record: ChildRecord }).record;
        const merged = cur === undefined ? incoming : mergeRecords(cur.record, incoming);
        if (cur !== undefined && JSON.stringify(merged) === JSON.stringify(cur.record)) return undefined;
        return { username, record: merged, receivedAt: now, pushedFrom: body.imei };
      });
      for (const [id, { indexes }] of byId) {
        for (const i of indexes) results[i] = { id, status: 'ok', changed: changed.has(id), conflicts: 0 };
      }
      const final = results.map((res) => res ?? errorResult(null, new FieldvaultError('INTERNAL_ERROR')));
      const failed = final.filter((res) => res.status === 'error').length;
      const quarantined = await store.countQuarantined(username);
      await app.audit(request, {
        event: 'signup.requested',
        actor: null,
        username,
        imei: body.imei,
        details: { records: items.length, failed, quarantined, renewed: before?.status === 'pending' },
      });
      return { status: 'pending' as const, requestedAt: iso(saved.requestedAt), quarantined, results: final };
    },
  );

  r.post(
    '/v1/signups/status',
    { config: authLimit, schema: { body: SignupStatusBodySchema, response: responses({ 200: SignupStatusResponseSchema }) } },
    async (request) => {
      const body = request.body;
      await verifyDeviceProof(body, 'status');
      const s = await store.getSignup(body.username);
      // Only the asking device learns anything about a request.
      if (s === undefined || !sameDevice(s, body)) throw new FieldvaultError('SIGNUP_NOT_FOUND');
      return { status: s.status, requestedAt: iso(s.requestedAt), decidedAt: isoOrNull(s.decidedAt) };
    },
  );

  const admin = { onRequest: app.requireAuth(['admin']) };

  async function getOrThrow(username: string): Promise<SignupRecord> {
    const s = await store.getSignup(username);
    if (s === undefined) throw new FieldvaultError('SIGNUP_NOT_FOUND');
    return s;
  }

  r.get(
    '/v1/signups',
    { ...admin, schema: { querystring: SignupListQuerySchema, response: responses({ 200: SignupListResponseSchema }) } },
    async (request) => {
      const page = await store.listSignups(request.query.status, request.query.limit, request.query.cursor);
      const signups = [];
      for (const s of page.items) signups.push(signupView(s, await store.countQuarantined(s.username)));
      return { signups, nextCursor: page.nextCursor };
    },
  );

  r.get(
    '/v1/signups/:username',
    { ...admin, schema: { params: SignupParamsSchema, querystring: SignupShowQuerySchema, response: responses({ 200: SignupShowResponseSchema }) } },
    async (request) => {
      const s = await getOrThrow(request.params.username);
      const { limit, cursor } = request.query;
      const page = await store.listQuarantined(s.username, cursor, limit + 1);
      const records = page.slice(0, limit).map((q) => ({ record: q.record, receivedAt: iso(q.receivedAt) }));
      const last = records[records.length - 1];
      return {
        signup: signupView(s, await store.countQuarantined(s.username)),
        records,
        nextCursor: page.length > limit && last !== undefined ? last.record.id : null,
      };
    },
  );

  /**
   * Moves every quarantined record of an approved request into the records database with the
   * push path's merge and stamps (pushedBy = the new user, pushedFrom = the asking device). A
   * record that merges (written or already there) leaves quarantine; one that fails stays, with
   * its code in `failed`, and approving again retries it.
   */
  async function moveRecords(s: SignupRecord, user: UserRecord): Promise<{ moved: number; failed: PushResult[] }> {
    const auth: AuthContext = { username: user.username, role: user.role, imei: s.imei, console: false, tokenHash: '', expiresAt: 0 };
    let moved = 0;
    const failed: PushResult[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.listQuarantined(s.username, after, MOVE_PAGE);
      if (page.length === 0) break;
      const byId = new Map(page.map((q) => [q.record.id, q.record]));
      // Photo ids a quarantined record names are bound like a push's (sync/push.ts, security audit H2).
      const photoOwners = await resolvePhotoOwners(app.repo, [...byId.values()], app.now());
      const ctx: PushContext = {
        auth,
        form: app.childForm,
        limits,
        now: app.now(),
        maxSkewMs: config.maxSkewMs,
        reviewers: new Set(),
        relayedDeletions: new Set(),
        relayedResolutions: new Set(),
        unappliedRelays: new Set(),
        photoOwners,
      };
      const outcomes = await app.repo.modifyRecords([...byId.keys()], (id, current): RecordEnvelope | undefined =>
        mergePushed(ctx, current, byId.get(id) as ChildRecord),
      );
      const done: string[] = [];
      for (const id of byId.keys()) {
        const outcome = outcomes.get(id);
        if (outcome === undefined || outcome.status === 'error') {
          failed.push(errorResult(id, outcome?.status === 'error' ? outcome.error : undefined));
        } else {
          done.push(id);
          if (outcome.status === 'written') moved += 1;
        }
      }
      await store.deleteQuarantined(s.username, done);
      if (page.length < MOVE_PAGE) break;
      after = page[page.length - 1]?.record.id;
    }
    return { moved, failed };
  }

  r.post(
    '/v1/signups/:username/approve',
    { ...admin, schema: { params: SignupParamsSchema, body: ApproveBodySchema, response: responses({ 200: ApproveResponseSchema }) } },
    async (request) => {
      const actor = (request.auth as AuthContext).username;
      const { username } = request.params;
      const requestedRole = request.body.role ?? 'field_worker';
      // Admin accounts need a second factor (TOTP) enrolled by the admin themselves.
      if (requestedRole === 'admin') throw new FieldvaultError('SIGNUP_ROLE_INVALID');
      const now = app.now();
      let resumed = false;
      const claimed = await store.modifySignup(username, (cur) => {
        if (cur === undefined) throw new FieldvaultError('SIGNUP_NOT_FOUND');
        if (cur.status === 'rejected') throw new FieldvaultError('SIGNUP_ALREADY_DECIDED');
        if (cur.status === 'approved') {
          // An interrupted approval (user not created yet, or records left) is finished by approving again.
          resumed = true;
          return undefined;
        }
        return { ...cur, status: 'approved', decidedAt: now, decidedBy: actor, role: requestedRole, updatedAt: now };
      });
      if (claimed === undefined) throw new FieldvaultError('SIGNUP_NOT_FOUND');
      if (resumed && claimed.passwordHash === null && (await store.countQuarantined(username)) === 0) {
        throw new FieldvaultError('SIGNUP_ALREADY_DECIDED');
      }
      const role = claimed.role ?? requestedRole;

      let user = await app.repo.getUser(username);
      let created = false;
      if (claimed.passwordHash !== null) {
        if (user === undefined) {
          const record: UserRecord = {
            username,
            role,
            disabled: false,
            passwordHash: claimed.passwordHash,
            epoch: 0,
            createdAt: now,
            createdBy: actor,
            updatedAt: now,
            passwordChangedAt: claimed.requestedAt,
            totp: null,
          };
          try {
            await app.repo.createUser(record);
            user = record;
            created = true;
          } catch (err) {
            if (!isFieldvaultError(err) || err.code !== 'USER_EXISTS') throw err;
            user = await app.repo.getUser(username);
          }
        }
        if (user === undefined || user.passwordHash !== claimed.passwordHash) {
          // Someone else got the username in between (an admin's `users add`): the request goes
          // back to pending so it can be rejected, with its records, or renamed on the phone.
          await store.modifySignup(username, (cur) =>
            cur?.status === 'approved' ? { ...cur, status: 'pending', decidedAt: null, decidedBy: null, role: null, updatedAt: app.now() } : undefined,
          );
          throw new FieldvaultError('SIGNUP_USERNAME_TAKEN');
        }
      }
      if (user === undefined) throw new FieldvaultError('USER_NOT_FOUND');
      // The hash now lives on the user; the request keeps only its outcome.
      const decided = (await store.modifySignup(username, (cur) => (cur !== undefined && cur.passwordHash !== null ? { ...cur, passwordHash: null } : undefined))) ?? claimed;
      if (created) await app.audit(request, { event: 'user.created', username, details: { role, via: 'signup' } });

      const { moved, failed } = await moveRecords(decided, user);
      await app.audit(request, {
        event: 'signup.approved',
        username,
        imei: decided.imei,
        details: { role, moved, failed: failed.length, resumed },
      });
      return { signup: signupView(decided, await store.countQuarantined(username)), user: userView(user), moved, failed };
    },
  );

  r.post(
    '/v1/signups/:username/reject',
    { ...admin, schema: { params: SignupParamsSchema, body: EmptyObjectSchema, response: responses({ 200: RejectResponseSchema }) } },
    async (request) => {
      const actor = (request.auth as AuthContext).username;
      const { username } = request.params;
      await getOrThrow(username);
      const now = app.now();
      const decided = await store.modifySignup(username, (cur) => {
        if (cur === undefined) throw new FieldvaultError('SIGNUP_NOT_FOUND');
        if (cur.status !== 'pending') throw new FieldvaultError('SIGNUP_ALREADY_DECIDED');
        return { ...cur, status: 'rejected', passwordHash: null, decidedAt: now, decidedBy: actor, updatedAt: now };
      });
      if (decided === undefined) throw new FieldvaultError('SIGNUP_NOT_FOUND');
      const deleted = await store.deleteAllQuarantined(username);
      await app.audit(request, { event: 'signup.rejected', username, imei: decided.imei, details: { deleted } });
      return { signup: signupView(decided, 0), deleted };
    },
  );
};
