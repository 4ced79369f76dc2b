import { FieldvaultError, USERNAME_PATTERN } from '@fieldvault/protocol';

/** INPUT_INVALID naming the argument and what it must be. */
export function inputInvalid(field: string, why: string): FieldvaultError {
  return new FieldvaultError('INPUT_INVALID', { detail: `${field}: ${why}`, details: { field } });
}

/** @throws INPUT_INVALID when the username is not a string of the accepted form. */
export function checkUsername(username: unknown): string {
  if (typeof username !== 'string' || !USERNAME_PATTERN.test(username)) {
    throw inputInvalid('username', 'lowercase letters, digits, ".", "_" and "-", 1–64 characters');
  }
  return username;
}

/** @throws INPUT_INVALID when the password is not a string (its rules are checked where they apply). */
export function checkPassword(password: unknown, field = 'password'): string {
  if (typeof password !== 'string') throw inputInvalid(field, 'must be a string');
  return password;
}
