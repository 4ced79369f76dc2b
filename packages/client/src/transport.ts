import type { ChallengeBody, ChallengeResponse, LoginBody, LoginResponse } from '@fieldvault/protocol';

/*
 * The seam between the SDK and a server. The offline SDK never calls it; `Device.loginOnline` (and
 * the sync engine, a later slice) do, through the transport the app passes: `createHttpTransport`
 * (HTTPS with a verified certificate), or another implementation of this interface on a platform
 * without node:https. Request and response shapes are the protocol's wire schemas for
 * `POST /v1/auth/challenge` and `POST /v1/auth/login`; binary values travel as base64.
 *
 * `loginOnline`: `challenge({ imei })`, signs `loginSignatureMessage(…)` with the device key,
 * `login(…)` with the key the user can unwrap (flow 2) and its record, checks the answer again
 * (schema, key matches record, record is for this device, answer is for this user) and adopts
 * the returned key (`Device.adoptVerifiedKey`).
 */

/**
 * One server connection. Implementations verify the server (TLS), validate responses against the
 * protocol's schemas (server responses are a trust boundary) and throw catalogued errors: the
 * server's `code` for its error answers, TRANSPORT_UNREACHABLE, TRANSPORT_TLS_UNTRUSTED and
 * TRANSPORT_BAD_RESPONSE for the connection itself.
 */
export interface Transport {
  /** A stable id of the server (its node id): names temporary databases and sync checkpoints. */
  readonly serverId: string;
  challenge(request: ChallengeBody): Promise<ChallengeResponse>;
  login(request: LoginBody): Promise<LoginResponse>;
}
