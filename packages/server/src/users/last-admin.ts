import { FieldvaultError } from '@fieldvault/protocol';
import type { UserRecord } from '../couch/records.js';

/**
 * Whether an admin account can actually log in now: enabled, with a password set (an invited or
 * reset admin has none until they redeem their token, and the token expires), and, when the server
 * requires TOTP of admins, an enrolled authenticator. Only such an admin can undo a mistake, so
 * only such an admin counts for the "never lose the last admin" rule: with nobody able to log in
 * and the one-time setup already used (AUTH_SETUP_COMPLETED), there is no way back in.
 */
export function isUsableAdmin(u: UserRecord, totpRequired: boolean): boolean {
  if (u.role !== 'admin' || u.disabled || u.passwordHash === null) return false;
  return !totpRequired || (u.totp !== null && u.totp.confirmedAt !== null);
}

/**
 * Refuses a change of `current` into `next` that leaves no usable admin. A change that does not
 * take a usable admin away (or a user who was not one) always passes.
 *
 * Not atomic across accounts: two admins changed at the same moment are each checked against the
 * other's old state.
 * @throws USER_LAST_ADMIN
 */
export async function assertKeepsUsableAdmin(
  enabledAdmins: () => Promise<readonly UserRecord[]>,
  totpRequired: boolean,
  current: UserRecord,
  next: UserRecord,
): Promise<void> {
  if (!isUsableAdmin(current, totpRequired) || isUsableAdmin(next, totpRequired)) return;
  const others = (await enabledAdmins()).filter((a) => a.username !== current.username && isUsableAdmin(a, totpRequired));
  if (others.length === 0) {
    throw new FieldvaultError('USER_LAST_ADMIN', {
      detail: `${current.username} is the only admin who can log in${totpRequired ? ' (password set, TOTP enrolled)' : ' (password set)'}`,
    });
  }
}
