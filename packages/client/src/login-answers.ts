import { DB_KEY_LENGTH, fromBase64, keyId } from '@fieldvault/crypto';
import { ChallengeResponseSchema, FieldvaultError, LoginResponseSchema, checkSchema, parseKeyRecord, type KeyRecord } from '@fieldvault/protocol';

/**
 * A challenge answer, checked: its schema, and the server id it names (when the server names one)
 * against the id the phone configured for it. Run before the password or a key is sent, so a
 * phone configured with the wrong id (its sync state would be kept under that id) sends nothing else.
 * @throws TRANSPORT_BAD_RESPONSE, TRANSPORT_SERVER_ID_MISMATCH
 */
export function checkChallenge(answer: unknown, configured: string): { challenge: string; serverId: string | undefined } {
  const res = checkSchema(ChallengeResponseSchema, answer, 'TRANSPORT_BAD_RESPONSE');
  if (res.serverId !== undefined && res.serverId !== configured) {
    throw new FieldvaultError('TRANSPORT_SERVER_ID_MISMATCH', {
      detail: `the server says its id is "${res.serverId}", this phone has it as "${configured}"`,
      details: { serverId: configured, reported: res.serverId },
    });
  }
  return { challenge: res.challenge, serverId: res.serverId };
}

/**
 * Checks a login answer beyond its schema: it is for this user and this device (`imei`), and its
 * key is the one its record names. A server (or anything posing as one) cannot make the phone
 * store a key under a record that does not describe it.
 * @throws TRANSPORT_BAD_RESPONSE
 */
export function checkLoginResponse(response: unknown, username: string, imei: string): { record: KeyRecord; key: Uint8Array } {
  const r = checkSchema(LoginResponseSchema, response, 'TRANSPORT_BAD_RESPONSE');
  const bad = (detail: string, cause?: unknown): FieldvaultError =>
    new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail, ...(cause === undefined ? {} : { cause }) });
  if (r.user.username !== username) throw bad('the answer is for another user');
  let record: KeyRecord;
  try {
    record = parseKeyRecord(r.key.record);
  } catch (cause) {
    throw bad('malformed key record', cause);
  }
  if (record.imei !== imei) throw bad('the key record is for another device');
  const key = fromBase64(r.key.dbKey);
  if (key.byteLength !== DB_KEY_LENGTH || keyId(key) !== record.keyId) {
    key.fill(0);
    throw bad('the key does not match its key record');
  }
  return { record, key };
}
