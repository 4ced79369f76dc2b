import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Static } from '@sinclair/typebox';
import { fromBase64, toBase64, verifyDevice } from '@fieldvault/crypto';
import { FieldvaultError, isFieldvaultError, loginSignatureMessage, type KeyRecord } from '@fieldvault/protocol';
import type { DeviceRecord, UserRecord } from '../couch/records.js';
import { checkOfferedKey, decideDeviceKey, type KeyDecision, type OfferedKey } from '../devices/device-keys.js';
import { iso, responses } from '../http/schemas.js';
import { clientKey } from '../http/client-key.js';
import { hashSecret, newToken } from '../http/tokens.js';
import { ChallengeBodySchema, ChallengeResponseSchema, LoginBodySchema, LoginResponseSchema } from './schemas.js';
import { loginFailureDetails } from '../users/credentials.js';

/** Usernames remembered per device (oldest dropped first). */
const USERS_SEEN_CAP = 200;

type LoginBody = Static<typeof LoginBodySchema>;

function signatureInvalid(detail?: string): FieldvaultError {
  return new FieldvaultError('DEVICE_SIGNATURE_INVALID', detail === undefined ? {} : { detail });
}

/**
 * Device login (DESIGN.md §2–3, §5): challenge → signed login → session + the device's DB key.
 *
 * Order matters: the challenge is consumed and the device signature checked first (both cheap,
 * neither tells anything about the user); a blacklisted device proving its enrolled key is told
 * to wipe even without a password; then credentials (uniform error and work for unknown users);
 * then the binding; then the key, under `_rev` concurrency.
 */
export const authPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = app.fieldvaultConfig;
  const authLimit = { rateLimit: { max: config.rateLimit.authMax, timeWindow: config.rateLimit.timeWindowMs } };
  const authority = { kek: config.kek, clock: app.clock };

  r.post(
    '/v1/auth/challenge',
    { config: authLimit, schema: { body: ChallengeBodySchema, response: responses({ 200: ChallengeResponseSchema }) } },
    async (request) => {
      const challenge = newToken();
      const expiresAt = app.now() + config.challenge.ttlSeconds * 1000;
      await app.repo.createChallenge({ hash: hashSecret(challenge), imei: request.body.imei, expiresAt });
      // The server's id (not secret: printed at start) lets a phone check it reached the server it configured.
      return { challenge, expiresAt: iso(expiresAt), serverId: config.serverId };
    },
  );

  async function verifyDeviceProof(body: LoginBody, offered: OfferedKey | undefined): Promise<void> {
    const challenge = await app.repo.consumeChallenge(hashSecret(body.challenge));
    if (challenge === undefined || challenge.imei !== body.imei || challenge.expiresAt <= app.now()) {
      throw signatureInvalid('unknown, expired or already used challenge');
    }
    const message = loginSignatureMessage({
      challenge: body.challenge,
      username: body.username,
      imei: body.imei,
      keyId: offered?.record.keyId ?? '',
    });
    let ok: boolean;
    try {
      ok = verifyDevice(fromBase64(body.devicePublicKey), message, fromBase64(body.signature));
    } catch {
      ok = false; // not a valid Ed25519 public key
    }
    if (!ok) throw signatureInvalid();
  }

  /** Device state that refuses a login, checked before and again inside the write loop. */
  function assertDeviceUsable(device: DeviceRecord | undefined, body: LoginBody): void {
    if (device === undefined) return;
    if (device.status === 'blacklisted') throw new FieldvaultError('DEVICE_BLACKLISTED');
    // A retired device gets its last sync: users who already used it may log in again (a phone's
    // session lives in memory only, so a restarted app needs a fresh login); new users may not.
    if (device.status === 'retired' && !device.usersSeen.includes(body.username)) throw new FieldvaultError('DEVICE_RETIRED');
    if (device.publicKey !== null && device.publicKey !== body.devicePublicKey) throw new FieldvaultError('DEVICE_BINDING_MISMATCH');
  }

  async function login(request: FastifyRequest, body: LoginBody): Promise<Static<typeof LoginResponseSchema>> {
    if ((body.dbKey === undefined) !== (body.keyRecord === undefined)) {
      throw new FieldvaultError('INPUT_INVALID', { detail: 'dbKey and keyRecord must be sent together', details: { field: 'dbKey' } });
    }
    const offered = body.dbKey === undefined ? undefined : checkOfferedKey(body.imei, body.keyRecord, fromBase64(body.dbKey));
    await verifyDeviceProof(body, offered);

    const before = await app.repo.getDevice(body.imei);
    if (before?.status === 'blacklisted' && before.publicKey === body.devicePublicKey) {
      // The enrolled device itself is asking: tell it to wipe, password or not.
      throw new FieldvaultError('DEVICE_BLACKLISTED');
    }

    // Admins prove a second factor (TOTP) before any key or session is handed out; their failure
    // count is cleared only once that passes too.
    const user: UserRecord = await app.verifyCredentials(body.username, body.password, { keepFailures: (u) => u.role === 'admin', client: clientKey(request.ip) });
    const factor = await app.checkSecondFactor(request, user, body.totp);
    try {
      assertDeviceUsable(before, body);
    } catch (err) {
      if (isFieldvaultError(err) && err.code === 'DEVICE_BINDING_MISMATCH') {
        await app.audit(request, { event: 'device.binding_mismatch', actor: user.username, username: user.username, imei: body.imei });
      }
      throw err;
    }

    let decision: KeyDecision | undefined;
    let enrolled = false;
    const device = await app.repo.modifyDevice(body.imei, (cur) => {
      assertDeviceUsable(cur, body);
      const now = app.now();
      decision = decideDeviceKey(authority, body.imei, cur?.key ?? null, offered);
      enrolled = cur?.publicKey == null;
      const seen = cur?.usersSeen ?? [];
      const usersSeen = seen.includes(user.username) ? seen : [...seen, user.username].slice(-USERS_SEEN_CAP);
      return {
        imei: body.imei,
        status: cur?.status ?? 'active',
        publicKey: body.devicePublicKey,
        boundAt: enrolled ? now : (cur?.boundAt ?? now),
        firstSeenAt: cur?.firstSeenAt ?? now,
        lastSeenAt: now,
        usersSeen,
        key: decision.stored,
        epoch: cur?.epoch ?? 0,
        statusChangedAt: cur?.statusChangedAt ?? null,
        statusChangedBy: cur?.statusChangedBy ?? null,
        lastSyncAt: cur?.lastSyncAt ?? null,
      };
    });
    if (device === undefined || decision === undefined) throw new FieldvaultError('INTERNAL_ERROR');
    const key: KeyDecision = decision;

    const session = await app.createSession({ username: user.username, role: user.role, imei: body.imei, userEpoch: user.epoch, deviceEpoch: device.epoch });

    const who = { actor: user.username, username: user.username, imei: body.imei };
    if (enrolled) await app.audit(request, { ...who, event: 'device.enrolled' });
    if (key.outcome === 'issued') await app.audit(request, { ...who, event: 'key.issued', details: { keyId: key.stored.record.keyId, issuedAt: key.stored.record.issuedAt } });
    if (key.outcome === 'adopted') await app.audit(request, { ...who, event: 'key.adopted', details: { keyId: key.stored.record.keyId, issuedAt: key.stored.record.issuedAt, issuer: key.stored.record.issuer } });
    if (key.outcome === 'replaced') {
      await app.audit(request, {
        ...who,
        event: 'key.replaced',
        details: { keyId: key.stored.record.keyId, issuedAt: key.stored.record.issuedAt, issuer: key.stored.record.issuer, previousKeyId: key.previousKeyId },
      });
    }
    await app.audit(request, {
      ...who,
      event: 'login.ok',
      details: { keyId: key.stored.record.keyId, keyOutcome: key.outcome, offeredKeyId: offered?.record.keyId ?? null, ...(factor === 'none' ? {} : { factor }) },
    });

    const record: KeyRecord = key.stored.record;
    return {
      token: session.token,
      expiresAt: iso(session.expiresAt),
      user: { username: user.username, role: user.role },
      key: { record, dbKey: toBase64(key.dbKey) },
    };
  }

  r.post(
    '/v1/auth/login',
    { config: authLimit, schema: { body: LoginBodySchema, response: responses({ 200: LoginResponseSchema }) } },
    async (request) => {
      try {
        return await login(request, request.body);
      } catch (err) {
        const code = isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR';
        // The store being down says nothing about the credentials, and the audit write would fail
        // the same way: the request log records the outage (operator audit s10, item 7).
        if (code === 'STORE_UNAVAILABLE') throw err;
        try {
          await app.audit(request, { event: 'login.failed', actor: null, username: request.body.username, imei: request.body.imei, details: loginFailureDetails(err) });
        } catch (auditErr) {
          request.log.error({ code: isFieldvaultError(auditErr) ? auditErr.code : 'INTERNAL_ERROR' }, 'could not audit a failed login');
        }
        throw err;
      }
    },
  );
};
