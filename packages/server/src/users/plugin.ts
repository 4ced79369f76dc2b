import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { FieldvaultError, assertPasswordAcceptable } from '@fieldvault/protocol';
import type { ResetPurpose, UserRecord } from '../couch/records.js';
import { EmptyObjectSchema, iso, responses } from '../http/schemas.js';
import { hashSecret, newToken } from '../http/tokens.js';
import { UserSummarySchema, type AuthContext } from '../sessions/plugin.js';
import {
  CreateUserBodySchema,
  ListQuerySchema,
  ResetTokenViewSchema,
  SetPasswordBodySchema,
  SetupAdminBodySchema,
  UpdateUserBodySchema,
  UserViewSchema,
  UsernameParamsSchema,
  userView,
} from './schemas.js';
import { assertKeepsUsableAdmin } from './last-admin.js';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** User accounts: first-admin setup, admin user management, invitation / reset tokens. */
export const usersPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = app.fieldvaultConfig;
  const authLimit = { rateLimit: { max: config.rateLimit.authMax, timeWindow: config.rateLimit.timeWindowMs } };

  /** Issues a single-use invitation/reset token for the user's current epoch. */
  async function issueReset(user: UserRecord, purpose: ResetPurpose): Promise<{ token: string; expiresAt: string }> {
    const token = newToken();
    const expiresAt = app.now() + config.resetToken.ttlSeconds * 1000;
    await app.repo.createReset({ tokenHash: hashSecret(token), username: user.username, purpose, expiresAt, userEpoch: user.epoch });
    return { token, expiresAt: iso(expiresAt) };
  }

  /** @throws USER_LAST_ADMIN when `next` would leave no admin who can log in (see last-admin.ts). */
  const guardLastAdmin = (current: UserRecord, next: UserRecord): Promise<void> =>
    assertKeepsUsableAdmin(() => app.repo.listEnabledAdmins(), config.adminTotp.required, current, next);

  r.post(
    '/v1/setup/admin',
    {
      config: authLimit,
      schema: { body: SetupAdminBodySchema, response: responses({ 201: Type.Object({ user: UserViewSchema }, { additionalProperties: false }) }) },
    },
    async (request, reply) => {
      if (await app.repo.isSetupComplete()) throw new FieldvaultError('AUTH_SETUP_COMPLETED');
      const expected = config.setupToken;
      // Compare digests in constant time: the token's length and content stay hidden.
      if (expected === undefined || !timingSafeEqual(digest(request.body.setupToken), digest(expected))) {
        throw new FieldvaultError('AUTH_SETUP_TOKEN_INVALID');
      }
      const { username } = request.body;
      const password = assertPasswordAcceptable(request.body.password, config.password, { username });
      const passwordHash = await app.passwordHasher.hash(password);
      const now = app.now();
      const gate = app.setupGate;
      // Another setup running here will either create the admin or give the claim back.
      if (!gate.enter('setup')) throw new FieldvaultError(gate.busy === 'restore' ? 'BACKUP_IN_PROGRESS' : 'AUTH_SETUP_COMPLETED');
      const user: UserRecord = {
        username,
        role: 'admin',
        disabled: false,
        passwordHash,
        epoch: 0,
        createdAt: now,
        createdBy: 'setup',
        updatedAt: now,
        passwordChangedAt: now,
        totp: null,
      };
      try {
        // Nothing else holds the gate, so a claim without its admin is stale (a crash between
        // the claim and the admin): taken over, on its revision, so one caller at most wins.
        const claim = await app.repo.getSetupClaim();
        if (claim !== undefined && (claim.username === null || (await app.repo.getUser(claim.username)) !== undefined)) {
          throw new FieldvaultError('AUTH_SETUP_COMPLETED');
        }
        if (claim !== undefined) request.log.warn('setup: taking over a claim left without its admin (a crash during an earlier setup)');
        if (!(await app.repo.claimSetup(now, username, claim?.rev))) throw new FieldvaultError('AUTH_SETUP_COMPLETED');
        try {
          await app.repo.createUser(user);
        } catch (err) {
          await app.repo.releaseSetup();
          throw err;
        }
      } finally {
        gate.leave();
      }
      await app.audit(request, { event: 'setup.admin_created', actor: username, username, details: { role: 'admin' } });
      return reply.code(201).send({ user: userView(user) });
    },
  );

  const admin = { onRequest: app.requireAuth(['admin']) };

  r.post(
    '/v1/users',
    {
      ...admin,
      schema: {
        body: CreateUserBodySchema,
        response: responses({ 201: Type.Object({ user: UserViewSchema, invitation: ResetTokenViewSchema }, { additionalProperties: false }) }),
      },
    },
    async (request, reply) => {
      const actor = (request.auth as AuthContext).username;
      const now = app.now();
      // Admins never choose a password: the user sets one with the invitation token.
      const user: UserRecord = {
        username: request.body.username,
        role: request.body.role,
        disabled: false,
        passwordHash: null,
        epoch: 0,
        createdAt: now,
        createdBy: actor,
        updatedAt: now,
        passwordChangedAt: null,
        totp: null,
      };
      await app.repo.createUser(user);
      const invitation = await issueReset(user, 'invitation');
      await app.audit(request, { event: 'user.created', username: user.username, details: { role: user.role } });
      return reply.code(201).send({ user: userView(user), invitation });
    },
  );

  r.get(
    '/v1/users',
    {
      ...admin,
      schema: {
        querystring: ListQuerySchema,
        response: responses({
          200: Type.Object({ users: Type.Array(UserViewSchema), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false }),
        }),
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      // A cursor is the last user of the previous page, and users are never deleted: one that
      // names no user was not issued by this list (an empty page would look like "no more users").
      if (cursor !== undefined && (await app.repo.getUser(cursor)) === undefined) {
        throw new FieldvaultError('INPUT_INVALID', {
          detail: 'query.cursor: not a nextCursor of this list; list again without it',
          details: { field: 'query.cursor' },
        });
      }
      const page = await app.repo.listUsers(limit, cursor);
      const locks = await app.loginLocks(page.items.map((u) => u.username));
      return { users: page.items.map((u) => userView(u, locks.get(u.username) ?? null)), nextCursor: page.nextCursor };
    },
  );

  r.get(
    '/v1/users/:username',
    {
      ...admin,
      schema: { params: UsernameParamsSchema, response: responses({ 200: Type.Object({ user: UserViewSchema }, { additionalProperties: false }) }) },
    },
    async (request) => {
      const user = await app.repo.getUser(request.params.username);
      if (user === undefined) throw new FieldvaultError('USER_NOT_FOUND');
      const locks = await app.loginLocks([user.username]);
      return { user: userView(user, locks.get(user.username) ?? null) };
    },
  );

  r.patch(
    '/v1/users/:username',
    {
      ...admin,
      schema: {
        params: UsernameParamsSchema,
        body: UpdateUserBodySchema,
        response: responses({ 200: Type.Object({ user: UserViewSchema }, { additionalProperties: false }) }),
      },
    },
    async (request) => {
      const { role, disabled } = request.body;
      let before: UserRecord | undefined;
      const updated = await app.repo.modifyUser(request.params.username, async (cur) => {
        before = cur;
        const next: UserRecord = {
          ...cur,
          role: role ?? cur.role,
          disabled: disabled ?? cur.disabled,
          // Disabling moves the epoch: every session of the user dies with this one write. So does
          // becoming an admin: sessions opened without a second factor must not gain admin rights.
          epoch: (disabled === true && !cur.disabled) || (role === 'admin' && cur.role !== 'admin') ? cur.epoch + 1 : cur.epoch,
          updatedAt: app.now(),
        };
        if (next.role === cur.role && next.disabled === cur.disabled) return undefined;
        await guardLastAdmin(cur, next);
        return next;
      });
      if (before !== undefined && (before.role !== updated.role || before.disabled !== updated.disabled)) {
        if (updated.epoch !== before.epoch) await app.repo.deleteSessionsOfUser(updated.username);
        await app.audit(request, {
          event: 'user.updated',
          username: updated.username,
          details: { role: updated.role, previousRole: before.role, disabled: updated.disabled, previouslyDisabled: before.disabled },
        });
      }
      return { user: userView(updated) };
    },
  );

  r.post(
    '/v1/users/:username/password-reset',
    {
      ...admin,
      schema: {
        params: UsernameParamsSchema,
        body: EmptyObjectSchema,
        response: responses({ 200: Type.Object({ user: UserViewSchema, reset: ResetTokenViewSchema }, { additionalProperties: false }) }),
      },
    },
    async (request) => {
      // The old password stops working and every session ends; only the token can set a new one.
      const updated = await app.repo.modifyUser(request.params.username, async (cur) => {
        const next: UserRecord = { ...cur, passwordHash: null, epoch: cur.epoch + 1, updatedAt: app.now() };
        // Until the token is redeemed this admin cannot log in, and the token expires.
        await guardLastAdmin(cur, next);
        return next;
      });
      const revoked = await app.repo.deleteSessionsOfUser(updated.username);
      // The reset ends a login lock too: with no password set, guessing has nothing to find, and
      // the user's new password must work at once.
      await app.clearThrottle(updated.username);
      const reset = await issueReset(updated, 'reset');
      await app.audit(request, { event: 'user.password_reset', username: updated.username, details: { sessionsRevoked: revoked } });
      return { user: userView(updated, null), reset };
    },
  );

  r.post(
    '/v1/auth/password',
    {
      config: authLimit,
      schema: {
        body: SetPasswordBodySchema,
        response: responses({ 200: Type.Object({ user: UserSummarySchema }, { additionalProperties: false }) }),
      },
    },
    async (request) => setPasswordFromToken(request, request.body.resetToken, request.body.password),
  );

  async function setPasswordFromToken(request: FastifyRequest, token: string, typed: string): Promise<{ user: { username: string; role: UserRecord['role'] } }> {
    const tokenHash = hashSecret(token);
    const reset = await app.repo.getReset(tokenHash);
    if (reset === undefined || reset.expiresAt <= app.now()) throw new FieldvaultError('AUTH_RESET_TOKEN_INVALID');
    const user = await app.repo.getUser(reset.username);
    if (user === undefined || user.epoch !== reset.userEpoch) throw new FieldvaultError('AUTH_RESET_TOKEN_INVALID');
    // Policy first: a refused password leaves the token usable for a better one.
    const password = assertPasswordAcceptable(typed, config.password, { username: user.username });
    const passwordHash = await app.passwordHasher.hash(password);
    if (!(await app.repo.consumeReset(tokenHash))) throw new FieldvaultError('AUTH_RESET_TOKEN_INVALID');
    const updated = await app.repo.modifyUser(user.username, (cur) => {
      if (cur.epoch !== reset.userEpoch) throw new FieldvaultError('AUTH_RESET_TOKEN_INVALID');
      const now = app.now();
      return { ...cur, passwordHash, epoch: cur.epoch + 1, passwordChangedAt: now, updatedAt: now };
    });
    await app.repo.deleteSessionsOfUser(updated.username);
    await app.clearThrottle(updated.username);
    await app.audit(request, { event: 'user.password_set', actor: updated.username, username: updated.username, details: { purpose: reset.purpose } });
    return { user: { username: updated.username, role: updated.role } };
  }
};
