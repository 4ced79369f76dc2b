import { toBase64 } from '@fieldvault/crypto';
import {
  FieldvaultError,
  SignupRequestResponseSchema,
  SignupStatusResponseSchema,
  checkSchema,
  createClock,
  signupSignatureMessage,
  type ChildRecord,
  type FormDefinition,
  type PushResult,
  type SignupStatus,
} from '@fieldvault/protocol';
import { wipeIfBlacklisted, type BlacklistContext } from './blocked-device.js';
import type { DeviceKeyStore } from './device-key-store.js';
import { checkChallenge } from './login-answers.js';
import { openDatabase } from './open-database.js';
import { MAX_PAGE_SIZE, RecordStore } from './record-store.js';
import type { StorageAdapter } from './storage-adapter.js';
import type { Transport } from './transport.js';
import { readMeta } from './vault-schema.js';

/*
 * Pending sign-ups (issue 7), the server side of `Device.requestAccount` and
 * `Device.accountStatus`: device-signed calls, each with a fresh challenge.
 */

/** Records per sign-up request by default: the server's default push limit. */
export const DEFAULT_SIGNUP_BATCH = 500;

/** Options of `Device.requestAccount` and `Device.accountStatus`. */
export interface AccountRequestOptions {
  /** The server to ask; default the device's `transport` option. It must implement `requestAccount` / `signupStatus`. */
  readonly transport?: Transport;
  /** Records per request (default 500, the server's default push limit); more are sent in further requests. */
  readonly batchRecords?: number;
}

/** What `Device.requestAccount` reports. */
export interface AccountRequestResult {
  readonly status: SignupStatus;
  /** When the server first received this request (ISO 8601). */
  readonly requestedAt: string;
  /** The user's records sent (all of them, in batches). */
  readonly sent: number;
  /** Records the server holds in quarantine for this request after the last batch. */
  readonly quarantined: number;
  /** The records the server refused, with its code (they stay on the phone and are pushed after approval). */
  readonly failed: readonly PushResult[];
}

/** Where a request stands on a server (`Device.accountStatus`). */
export interface AccountStatus {
  readonly status: SignupStatus;
  readonly requestedAt: string;
  readonly decidedAt: string | null;
}

/** What a device-signed sign-up call needs of the device. */
export interface SignupCaller {
  readonly imei: string;
  readonly deviceKeys: DeviceKeyStore;
  /** The device is wiped first when the server reports it blacklisted. */
  readonly blacklist: BlacklistContext;
}

/** What the request carries: the user, their password (the server account's) and their records. */
export interface AccountRequest {
  readonly username: string;
  readonly password: string;
  readonly records: readonly ChildRecord[];
  /** Records per call. */
  readonly batch: number;
}

async function signupChallenge(c: SignupCaller, transport: Transport, serverId: string): Promise<string> {
  const answer = await wipeIfBlacklisted(c.blacklist, serverId, () => transport.challenge({ imei: c.imei }));
  return checkChallenge(answer, serverId).challenge;
}

/**
 * Sends the request, `batch` records per call (at least one call, also for a user without
 * records), and checks that each answer's results match the records sent.
 * @throws TRANSPORT_BAD_RESPONSE, TRANSPORT_SERVER_ID_MISMATCH, DEVICE_BLACKLISTED (after wiping), and the server's codes.
 */
export async function sendAccountRequest(
  c: SignupCaller,
  transport: Transport,
  send: NonNullable<Transport['requestAccount']>,
  request: AccountRequest,
): Promise<AccountRequestResult> {
  const { username, password, records, batch } = request;
  const serverId = transport.serverId;
  const devicePublicKey = toBase64(await c.deviceKeys.publicKey());
  let last: { status: SignupStatus; requestedAt: string; quarantined: number } | undefined;
  const failed: PushResult[] = [];
  for (let at = 0; at === 0 || at < records.length; at += batch) {
    const chunk = records.slice(at, at + batch);
    const challenge = await signupChallenge(c, transport, serverId);
    const signature = await c.deviceKeys.sign(signupSignatureMessage({ action: 'request', challenge, username, imei: c.imei }));
    const answer = await wipeIfBlacklisted(c.blacklist, serverId, () =>
      send({ username, password, imei: c.imei, devicePublicKey, challenge, signature: toBase64(signature), records: chunk }),
    );
    const res = checkSchema(SignupRequestResponseSchema, answer, 'TRANSPORT_BAD_RESPONSE');
    if (res.results.length !== chunk.length || res.results.some((r, i) => r.id !== null && r.id !== chunk[i]?.id)) {
      throw new FieldvaultError('TRANSPORT_BAD_RESPONSE', { detail: 'the results do not match the records sent' });
    }
    failed.push(...res.results.filter((r) => r.status === 'error'));
    last = { status: res.status, requestedAt: res.requestedAt, quarantined: res.quarantined };
  }
  if (last === undefined) throw new FieldvaultError('TRANSPORT_BAD_RESPONSE');
  return { ...last, sent: records.length, failed };
}

/**
 * Asks where this device's request for `username` stands: a device-signed call, no password.
 * @throws TRANSPORT_BAD_RESPONSE, TRANSPORT_SERVER_ID_MISMATCH, DEVICE_BLACKLISTED (after wiping), and the server's codes.
 */
export async function fetchAccountStatus(
  c: SignupCaller,
  transport: Transport,
  ask: NonNullable<Transport['signupStatus']>,
  username: string,
): Promise<AccountStatus> {
  const serverId = transport.serverId;
  const challenge = await signupChallenge(c, transport, serverId);
  const signature = await c.deviceKeys.sign(signupSignatureMessage({ action: 'status', challenge, username, imei: c.imei }));
  const answer = await wipeIfBlacklisted(c.blacklist, serverId, async () =>
    ask({ username, imei: c.imei, devicePublicKey: toBase64(await c.deviceKeys.publicKey()), challenge, signature: toBase64(signature) }),
  );
  return checkSchema(SignupStatusResponseSchema, answer, 'TRANSPORT_BAD_RESPONSE');
}

/** The user's own records in their unverified database (under `key`), deleted ones included. */
export async function readOwnRecords(
  storage: StorageAdapter,
  key: Uint8Array,
  o: { readonly username: string; readonly imei: string; readonly now: () => number; readonly form: FormDefinition },
): Promise<ChildRecord[]> {
  const db = await openDatabase(storage, new Uint8Array(key), false);
  try {
    const last = await readMeta(db, 'clock');
    const clock = createClock({ node: o.imei, now: o.now, ...(last === undefined ? {} : { last }) });
    const store = new RecordStore(db, { username: o.username, device: o.imei, onlyOwn: true, clock, form: o.form });
    const out: ChildRecord[] = [];
    for (;;) {
      const page = await store.list({ limit: MAX_PAGE_SIZE, offset: out.length, includeDeleted: true });
      out.push(...page);
      if (page.length < MAX_PAGE_SIZE) return out;
    }
  } finally {
    await db.close();
  }
}
