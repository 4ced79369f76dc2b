// Admin TOTP in tests (admin-totp.test.ts, user-admin.test.ts): codes computed with otpauth from
// the secret the server shows, enrolment through the real routes.
import { Secret, TOTP } from 'otpauth';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { ADMIN_PASSWORD, SETUP_TOKEN, bearer, json, type FakeClock } from './helpers.js';

/** The TOTP code of `secret` (base32) at `ms`. */
export function codeAt(secret: string, ms: number): string {
  return new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) }).generate({ timestamp: ms });
}

export async function post(app: FastifyInstance, url: string, payload: unknown, token?: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, payload: payload as Record<string, unknown>, ...(token === undefined ? {} : { headers: bearer(token) }) });
}

export interface Enrolled {
  readonly secret: string;
  readonly recoveryCodes: string[];
  readonly token: string;
}

/** TOTP enrolment of an admin whose password is set, confirmed at the clock's current step. */
export async function enrol(app: FastifyInstance, clock: FakeClock, username: string, password: string): Promise<Enrolled> {
  const started = await post(app, '/v1/admin/totp/enrol', { username, password });
  if (started.statusCode !== 200) throw new Error(started.body);
  const { secret } = json(started) as { secret: string };
  const confirmed = await post(app, '/v1/admin/totp/confirm', { username, password, code: codeAt(secret, clock.now()) });
  if (confirmed.statusCode !== 200) throw new Error(confirmed.body);
  const body = json(confirmed) as { recoveryCodes: string[]; session: { token: string } };
  return { secret, recoveryCodes: body.recoveryCodes, token: body.session.token };
}

/** First admin through setup, then TOTP enrolment confirmed at the clock's current step. */
export async function setupEnrolledAdmin(app: FastifyInstance, clock: FakeClock, username = 'admin'): Promise<Enrolled> {
  const setup = await post(app, '/v1/setup/admin', { setupToken: SETUP_TOKEN, username, password: ADMIN_PASSWORD });
  if (setup.statusCode !== 201) throw new Error(setup.body);
  return enrol(app, clock, username, ADMIN_PASSWORD);
}
