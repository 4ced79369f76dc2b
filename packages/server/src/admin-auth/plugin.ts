import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';
import type { TotpState, UserRecord } from '../couch/records.js';
import { clientKey } from '../http/client-key.js';
import { EmptyObjectSchema, iso, responses } from '../http/schemas.js';
import { assertKeepsUsableAdmin } from '../users/last-admin.js';
import { loginFailureDetails } from '../users/credentials.js';
import { UserViewSchema, UsernameParamsSchema, userView } from '../users/schemas.js';
import {
  ConfirmBodySchema,
  ConfirmResponseSchema,
  ConsoleLoginBodySchema,
  ConsoleSessionSchema,
  EnrolBodySchema,
  EnrolResponseSchema,
} from './schemas.js';
import {
  RECOVERY_CODE_PATTERN,
  TOTP_CODE_PATTERN,
  TOTP_DIGITS,
  TOTP_PERIOD_SECONDS,
  enrolmentOf,
  matchTotpStep,
  newRecoveryCodes,
  newTotpSecret,
  openTotpSecret,
  recoveryCodeDigest,
  sealTotpSecret,
} from './totp.js';

/** Which second factor a login used. */
export type SecondFactor = 'totp' | 'recovery' | 'none';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The second factor of a login whose password was right (the caller verified it with
     * `keepFailures`). Non-admins pass with 'none'. An admin must send a code of an enrolled TOTP:
     * a fresh time step (the step is then remembered, so a code works once) or an unused recovery
     * code (then removed). Clears the account's failure count when it passes; counts a failure
     * when the code is wrong.
     * @throws AUTH_TOTP_ENROLMENT_REQUIRED (admin without TOTP while it is required),
     *   AUTH_TOTP_REQUIRED (no code sent), AUTH_TOTP_INVALID (wrong, old or replayed code).
     */
    checkSecondFactor(request: FastifyRequest, user: UserRecord, code: string | undefined): Promise<SecondFactor>;
  }
}

const isConfirmed = (t: TotpState | null): t is TotpState & { confirmedAt: number } => t !== null && t.confirmedAt !== null;

/**
 * Admin two-factor authentication (RFC 6238 TOTP + recovery codes) and the admin console login.
 *
 * Console login (`POST /v1/admin/login`) is how the admin CLI gets a session: password + TOTP,
 * no device binding and no device key. A console session never carries a DB key, is accepted by
 * admin-only routes only (sessions plugin), and lives `session.adminTtlSeconds`.
 */
export const adminAuthPlugin = fp(
  async (app) => {
    const r = app.withTypeProvider<TypeBoxTypeProvider>();
    const config = app.fieldvaultConfig;
    const kek = config.kek;
    const authLimit = { rateLimit: { max: config.rateLimit.authMax, timeWindow: config.rateLimit.timeWindowMs } };
    if (!config.adminTotp.required) {
      app.log.warn('adminTotp.required is false: admins without TOTP log in with a password alone — for test fixtures only');
    }

    app.decorate('checkSecondFactor', async (request: FastifyRequest, user: UserRecord, code: string | undefined): Promise<SecondFactor> => {
      if (user.role !== 'admin') return 'none';
      if (!isConfirmed(user.totp)) {
        if (config.adminTotp.required) throw new FieldvaultError('AUTH_TOTP_ENROLMENT_REQUIRED');
        await app.clearThrottle(user.username);
        return 'none';
      }
      if (code === undefined) throw new FieldvaultError('AUTH_TOTP_REQUIRED');
      let factor = 'none' as SecondFactor;
      let remaining = 0;
      try {
        await app.repo.modifyUser(user.username, (cur) => {
          const t = cur.totp;
          // A reset or re-enrolment in between voids what the caller checked the password against.
          if (!isConfirmed(t) || cur.epoch !== user.epoch) throw new FieldvaultError('AUTH_TOTP_INVALID');
          if (TOTP_CODE_PATTERN.test(code)) {
            const step = matchTotpStep(openTotpSecret(kek, cur.username, t.sealed), code, app.now());
            // Runs again on a write conflict: of two logins with one code, only one finds its step new.
            if (step === null || step <= t.lastStep) throw new FieldvaultError('AUTH_TOTP_INVALID');
            factor = 'totp';
            return { ...cur, totp: { ...t, lastStep: step } };
          }
          if (RECOVERY_CODE_PATTERN.test(code)) {
            const digest = recoveryCodeDigest(kek, code);
            if (!t.recoveryCodes.includes(digest)) throw new FieldvaultError('AUTH_TOTP_INVALID');
            factor = 'recovery';
            const recoveryCodes = t.recoveryCodes.filter((d) => d !== digest);
            remaining = recoveryCodes.length;
            return { ...cur, totp: { ...t, recoveryCodes } };
          }
          throw new FieldvaultError('AUTH_TOTP_INVALID');
        });
      } catch (err) {
        if (isFieldvaultError(err) && err.code === 'AUTH_TOTP_INVALID') await app.recordLoginFailure(user.username);
        throw err;
      }
      await app.clearThrottle(user.username);
      if (factor === 'recovery') {
        await app.audit(request, { event: 'user.recovery_code_used', actor: user.username, username: user.username, details: { remaining } });
      }
      return factor;
    });

    /** Password check for the enrolment routes: admins only. */
    async function adminByPassword(request: FastifyRequest, username: string, password: string): Promise<UserRecord> {
      const user = await app.verifyCredentials(username, password, { keepFailures: true, client: clientKey(request.ip) });
      if (user.role !== 'admin') throw new FieldvaultError('AUTH_TOTP_NOT_ADMIN');
      return user;
    }

    r.post(
      '/v1/admin/totp/enrol',
      { config: authLimit, schema: { body: EnrolBodySchema, response: responses({ 200: EnrolResponseSchema }) } },
      async (request) => {
        const user = await adminByPassword(request, request.body.username, request.body.password);
        if (isConfirmed(user.totp)) throw new FieldvaultError('AUTH_TOTP_ALREADY_ENROLLED');
        const secret = newTotpSecret();
        try {
          const sealed = sealTotpSecret(kek, user.username, secret);
          await app.repo.modifyUser(user.username, (cur) => {
            if (isConfirmed(cur.totp)) throw new FieldvaultError('AUTH_TOTP_ALREADY_ENROLLED');
            // A repeated enrolment replaces the pending secret: only the newest one can be confirmed.
            return { ...cur, totp: { sealed, confirmedAt: null, lastStep: 0, recoveryCodes: [] }, updatedAt: app.now() };
          });
          await app.audit(request, { event: 'user.totp_enrolment_started', actor: user.username, username: user.username });
          return {
            ...enrolmentOf(secret, config.adminTotp.issuer, config.serverId, user.username),
            periodSeconds: TOTP_PERIOD_SECONDS,
            digits: TOTP_DIGITS,
          };
        } finally {
          secret.fill(0);
        }
      },
    );

    r.post(
      '/v1/admin/totp/confirm',
      { config: authLimit, schema: { body: ConfirmBodySchema, response: responses({ 200: ConfirmResponseSchema }) } },
      async (request) => {
        const user = await adminByPassword(request, request.body.username, request.body.password);
        const pending = user.totp;
        if (isConfirmed(pending)) throw new FieldvaultError('AUTH_TOTP_ALREADY_ENROLLED');
        if (pending === null) throw new FieldvaultError('AUTH_TOTP_ENROLMENT_REQUIRED', { detail: 'start the enrolment first' });
        const step = matchTotpStep(openTotpSecret(kek, user.username, pending.sealed), request.body.code, app.now());
        if (step === null) {
          await app.recordLoginFailure(user.username);
          throw new FieldvaultError('AUTH_TOTP_INVALID');
        }
        const codes = newRecoveryCodes();
        const digests = codes.map((c) => recoveryCodeDigest(kek, c));
        const updated = await app.repo.modifyUser(user.username, (cur) => {
          // Confirms exactly the secret that was checked: a newer enrolment in between wins.
          if (cur.totp === null || cur.totp.confirmedAt !== null || cur.totp.sealed !== pending.sealed) throw new FieldvaultError('AUTH_TOTP_INVALID');
          const now = app.now();
          return { ...cur, totp: { sealed: pending.sealed, confirmedAt: now, lastStep: step, recoveryCodes: digests }, updatedAt: now };
        });
        await app.clearThrottle(user.username);
        await app.audit(request, { event: 'user.totp_enrolled', actor: user.username, username: user.username, details: { recoveryCodes: codes.length } });
        const session = await app.createSession({ username: updated.username, role: updated.role, imei: '', userEpoch: updated.epoch, deviceEpoch: 0, kind: 'console' });
        await app.audit(request, { event: 'login.ok', actor: updated.username, username: updated.username, details: { kind: 'console', factor: 'totp' } });
        return {
          recoveryCodes: codes,
          session: { token: session.token, expiresAt: iso(session.expiresAt), user: { username: updated.username, role: updated.role }, serverId: config.serverId },
        };
      },
    );

    r.post(
      '/v1/admin/login',
      { config: authLimit, schema: { body: ConsoleLoginBodySchema, response: responses({ 200: ConsoleSessionSchema }) } },
      async (request) => {
        const { username, password, code } = request.body;
        let codeAsked = false;
        try {
          const user = await adminByPassword(request, username, password);
          // The console always needs an enrolled TOTP, whatever `adminTotp.required` says.
          if (!isConfirmed(user.totp)) throw new FieldvaultError('AUTH_TOTP_ENROLMENT_REQUIRED');
          if (code === undefined) {
            // The CLI's first step sends no code, so an admin without an authenticator goes straight
            // to enrolment instead of being asked for a code they cannot have. The password was right
            // but nothing is granted and the failure count is kept (not cleared); audited as its own
            // event, not as a failed login, since every CLI login passes here.
            codeAsked = true;
            await app.audit(request, { event: 'login.code_required', actor: null, username, details: { kind: 'console' } });
            throw new FieldvaultError('AUTH_TOTP_REQUIRED');
          }
          const factor = await app.checkSecondFactor(request, user, code);
          const session = await app.createSession({ username: user.username, role: user.role, imei: '', userEpoch: user.epoch, deviceEpoch: 0, kind: 'console' });
          await app.audit(request, { event: 'login.ok', actor: user.username, username: user.username, details: { kind: 'console', factor } });
          return { token: session.token, expiresAt: iso(session.expiresAt), user: { username: user.username, role: user.role }, serverId: config.serverId };
        } catch (err) {
          if (codeAsked) throw err;
          try {
            await app.audit(request, { event: 'login.failed', actor: null, username, details: { kind: 'console', ...loginFailureDetails(err) } });
          } catch (auditErr) {
            request.log.error({ code: isFieldvaultError(auditErr) ? auditErr.code : 'INTERNAL_ERROR' }, 'could not audit a failed login');
          }
          throw err;
        }
      },
    );

    r.post(
      '/v1/users/:username/totp-reset',
      {
        onRequest: app.requireAuth(['admin']),
        schema: { params: UsernameParamsSchema, body: EmptyObjectSchema, response: responses({ 200: Type.Object({ user: UserViewSchema }, { additionalProperties: false }) }) },
      },
      async (request) => {
        // The user enrols again at their next login; every session of theirs ends now.
        const updated = await app.repo.modifyUser(request.params.username, async (cur) => {
          // Checked on the stored account, before anything changes: a field worker or supervisor has
          // no authenticator, and "resetting" one must not end their phone sessions.
          if (cur.role !== 'admin') throw new FieldvaultError('AUTH_TOTP_NOT_ADMIN', { detail: `${cur.username} is a ${cur.role}: there is no authenticator to reset` });
          const next: UserRecord = { ...cur, totp: null, epoch: cur.epoch + 1, updatedAt: app.now() };
          await assertKeepsUsableAdmin(() => app.repo.listEnabledAdmins(), config.adminTotp.required, cur, next);
          return next;
        });
        const revoked = await app.repo.deleteSessionsOfUser(updated.username);
        await app.audit(request, { event: 'user.totp_reset', username: updated.username, details: { sessionsRevoked: revoked } });
        return { user: userView(updated) };
      },
    );
  },
  {
    name: 'fieldvault-admin-auth',
    fastify: '5.x',
    dependencies: ['fieldvault-couch', 'fieldvault-sessions', 'fieldvault-audit', 'fieldvault-credentials'],
  },
);
