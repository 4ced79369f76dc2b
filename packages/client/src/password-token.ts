import {
  FieldvaultError,
  SetPasswordResponseSchema,
  TOKEN_PATTERN,
  assertPasswordAcceptable,
  assertPasswordPolicy,
  checkSchema,
  defaultPasswordPolicy,
  type PasswordPolicy,
  type Role,
} from '@fieldvault/protocol';
import type { Transport } from './transport.js';

/*
 * Invitations and password resets: an admin creates a user (or resets one's password) and hands
 * the user a single-use token; the user chooses her own password with it. Admins never choose a
 * user's password (DESIGN.md §5). The token is a secret like a password: it goes in the request
 * body over verified TLS and is never logged, put in a URL or echoed in an error.
 */

export interface SetPasswordWithTokenInput {
  /** The server the token is from. It must implement `setPassword` (`createHttpTransport` does). */
  readonly transport: Transport;
  /** The invitation or reset token, 43 characters as the admin was given it. */
  readonly token: string;
  /** The new password. */
  readonly password: string;
  /**
   * The user the token is for, when the app knows it: the policy then also refuses a password
   * containing the name, as the server does.
   */
  readonly username?: string;
  /** The rules checked here before anything is sent; default the server's default policy. */
  readonly passwordPolicy?: PasswordPolicy;
}

/** Whose password was set, as the server answered. */
export interface PasswordSet {
  readonly username: string;
  readonly role: Role;
}

/**
 * Sets the password of the user an invitation or reset token names (`POST /v1/auth/password`).
 * The password is checked against the policy first (the server checks it again with its own
 * configuration, and a refused password leaves the token usable). On success the server has
 * ended the user's other sessions; log in online with the new password afterwards. Nothing on the
 * phone changes: keys a user holds here stay wrapped under the password they were wrapped with
 * until the next online login re-wraps them.
 * @throws INPUT_INVALID when the token is malformed (its value is not repeated) or the transport has no `setPassword`.
 * @throws PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_TOO_COMMON (checked here, nothing sent)
 * @throws AUTH_RESET_TOKEN_INVALID (wrong, expired or used token), RATE_LIMITED, TRANSPORT_UNREACHABLE,
 * TRANSPORT_TLS_UNTRUSTED, TRANSPORT_BAD_RESPONSE
 */
export async function setPasswordWithToken(input: SetPasswordWithTokenInput): Promise<PasswordSet> {
  if (typeof input !== 'object' || input === null) throw invalid('input', 'must be an object');
  const { transport, token, password, username } = input;
  const set = transport?.setPassword?.bind(transport);
  if (set === undefined) throw invalid('transport', 'a transport that implements setPassword (e.g. createHttpTransport(…))');
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) {
    throw invalid('token', 'the invitation or reset token: 43 characters (letters, digits, "-", "_") exactly as the admin gave it');
  }
  if (typeof password !== 'string') throw invalid('password', 'must be a string');
  const policy = input.passwordPolicy === undefined ? defaultPasswordPolicy : assertPasswordPolicy(input.passwordPolicy);
  assertPasswordAcceptable(password, policy, username === undefined ? {} : { username });
  const answer = checkSchema(SetPasswordResponseSchema, await set({ resetToken: token, password }), 'TRANSPORT_BAD_RESPONSE');
  return { username: answer.user.username, role: answer.user.role };
}

function invalid(field: string, why: string): FieldvaultError {
  return new FieldvaultError('INPUT_INVALID', { detail: `${field}: ${why}`, details: { field } });
}
