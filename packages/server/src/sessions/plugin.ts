import type { FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { FieldvaultError } from '@fieldvault/protocol';
import { ROLES, type DeviceRecord, type Role, type SessionRecord } from '../couch/records.js';
import { credentialsFor } from '../http/authorization.js';
import { EmptyObjectSchema, TOKEN_PATTERN, iso, responses } from '../http/schemas.js';
import { hashSecret, newToken } from '../http/tokens.js';
import { UserSummarySchema } from '@fieldvault/protocol';

/** Who is calling, established from a valid bearer token. */
export interface AuthContext {
  readonly username: string;
  /** The user's current role (read on every request, so a role change applies at once). */
  readonly role: Role;
  /** The session's device; empty for an admin console session (those reach admin-only routes only). */
  readonly imei: string;
  /** An admin console session (password + TOTP, no device). */
  readonly console: boolean;
  readonly tokenHash: string;
  readonly expiresAt: number;
  /**
   * The device as this request's authentication read it (absent for console sessions): the sync
   * routes decide from it whether the device's last-seen/last-sync times are due for a write,
   * instead of reading the device document a second time in the same request.
   */
  readonly device?: Pick<DeviceRecord, 'status' | 'lastSeenAt' | 'lastSyncAt'>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.requireAuth()`; null on routes without authentication. */
    auth: AuthContext | null;
  }
  interface FastifyInstance {
    /**
     * An onRequest hook: requires a valid session and, if `roles` is given, one of those roles.
     * Runs before the body is parsed, so unauthenticated callers cannot make the server parse.
     * Admin console sessions pass only where every allowed role is `admin` (or `console` is set):
     * they have no device, so device routes (sync, photos) never see one.
     */
    requireAuth(roles?: readonly Role[], options?: { readonly console?: boolean }): onRequestHookHandler;
    /**
     * Issues a session for a user on a device, or an admin console session (`kind: 'console'`,
     * `imei: ''`); returns the bearer token (shown once). Admins' sessions live
     * `session.adminTtlSeconds` at most.
     */
    createSession(input: CreateSessionInput): Promise<{ token: string; expiresAt: number }>;
  }
}


export { UserSummarySchema };

export interface CreateSessionInput {
  readonly username: string;
  readonly role: Role;
  readonly imei: string;
  readonly userEpoch: number;
  readonly deviceEpoch: number;
  readonly kind?: 'console';
}

export const SessionInfoSchema = Type.Object(
  { user: UserSummarySchema, imei: Type.Union([Type.String(), Type.Null()]), expiresAt: Type.String(), console: Type.Boolean() },
  { additionalProperties: false },
);

function invalid(): FieldvaultError {
  return new FieldvaultError('SESSION_INVALID');
}

/** Bearer-token sessions: issue, check on every protected route, revoke. */
export const sessionsPlugin = fp(
  async (app) => {
    app.decorateRequest('auth', null);
    // Real time, not app.now(): an entry's age bounds how stale another process's change can be.
    app.repo.enableAuthCache({ ttlMs: app.fieldvaultConfig.session.authCacheMs, maxEntries: 10_000, now: () => performance.now() });

    async function authenticate(request: FastifyRequest): Promise<AuthContext> {
      const token = credentialsFor(request.headers.authorization, 'Bearer');
      if (token === undefined || !TOKEN_PATTERN.test(token)) throw invalid();
      const tokenHash = hashSecret(token);
      // Possibly remembered for a moment (couch/auth-cache.ts): values, never decisions.
      const docs = await app.repo.authDocs(tokenHash);
      if (docs === undefined) throw invalid();
      const { session, user, device } = docs;
      const now = app.now();
      if (session.expiresAt <= now) {
        await app.repo.deleteSession(tokenHash);
        throw invalid();
      }
      if (session.kind === 'console') {
        if (session.revoked !== null || user === undefined || user.disabled || user.epoch !== session.userEpoch || user.role !== 'admin') throw invalid();
        return { username: user.username, role: user.role, imei: '', console: true, tokenHash, expiresAt: session.expiresAt };
      }
      // A stolen device learns on its next request that it must wipe (its sessions are kept as
      // revoked markers for this). The device's current status decides, so a reinstated device
      // is not told to wipe by an old marker.
      if (device?.status === 'blacklisted') throw new FieldvaultError('DEVICE_BLACKLISTED');
      if (session.revoked !== null) throw invalid();
      // Epochs make revocation atomic with the user/device write that caused it, even if the
      // bulk delete of session documents has not finished (or raced with a new login).
      if (user === undefined || user.disabled || user.epoch !== session.userEpoch) throw invalid();
      if (device === undefined || device.epoch !== session.deviceEpoch) throw invalid();
      return {
        username: user.username,
        role: user.role,
        imei: session.imei,
        console: false,
        tokenHash,
        expiresAt: session.expiresAt,
        device: { status: device.status, lastSeenAt: device.lastSeenAt, lastSyncAt: device.lastSyncAt ?? null },
      };
    }

    app.decorate('requireAuth', (roles?: readonly Role[], options: { readonly console?: boolean } = {}): onRequestHookHandler => {
      const consoleAllowed = options.console === true || (roles !== undefined && roles.length > 0 && roles.every((r) => r === 'admin'));
      return async (request) => {
        const auth = await authenticate(request);
        request.auth = auth;
        if (roles !== undefined && !roles.includes(auth.role)) throw new FieldvaultError('AUTH_FORBIDDEN');
        if (auth.console && !consoleAllowed) {
          throw new FieldvaultError('AUTH_FORBIDDEN', { detail: 'an admin console session can use the admin API only; log in from a device for this' });
        }
      };
    });

    app.decorate('createSession', async (input: CreateSessionInput) => {
      const token = newToken();
      const createdAt = app.now();
      const { ttlSeconds, adminTtlSeconds } = app.fieldvaultConfig.session;
      const ttl = input.role === 'admin' ? Math.min(ttlSeconds, adminTtlSeconds) : ttlSeconds;
      const session: SessionRecord = {
        tokenHash: hashSecret(token),
        username: input.username,
        imei: input.imei,
        createdAt,
        expiresAt: createdAt + ttl * 1000,
        userEpoch: input.userEpoch,
        deviceEpoch: input.deviceEpoch,
        revoked: null,
        ...(input.kind === 'console' ? { kind: 'console' as const } : {}),
      };
      await app.repo.createSession(session);
      return { token, expiresAt: session.expiresAt };
    });

    const r = app.withTypeProvider<TypeBoxTypeProvider>();

    r.get(
      '/v1/auth/session',
      { onRequest: app.requireAuth(undefined, { console: true }), schema: { response: responses({ 200: SessionInfoSchema }) } },
      async (request) => {
        const auth = request.auth as AuthContext;
        return {
          user: { username: auth.username, role: auth.role },
          imei: auth.console ? null : auth.imei,
          expiresAt: iso(auth.expiresAt),
          console: auth.console,
        };
      },
    );

    r.post(
      '/v1/auth/logout',
      { onRequest: app.requireAuth(undefined, { console: true }), schema: { body: EmptyObjectSchema, response: responses({ 204: Type.Null() }) } },
      async (request, reply) => {
        const auth = request.auth as AuthContext;
        await app.repo.deleteSession(auth.tokenHash);
        await app.audit(request, { event: 'logout', username: auth.username, imei: auth.console ? null : auth.imei, ...(auth.console ? { details: { kind: 'console' } } : {}) });
        return reply.code(204).send(null);
      },
    );
  },
  { name: 'fieldvault-sessions', fastify: '5.x', dependencies: ['fieldvault-couch'] },
);
