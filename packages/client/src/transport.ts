import type { ChallengeBody, ChallengeResponse, LoginBody, LoginResponse } from '@fieldvault/protocol';

/*
 * The seam between the SDK and a server. The offline SDK never calls it; the online login and the
 * sync engine (a later slice) do, through whatever transport the app passes (HTTPS with fetch in
 * the field app, `app.inject` in tests). Request and response shapes are the protocol's wire
 * schemas for `POST /v1/auth/challenge` and `POST /v1/auth/login`; binary values travel as base64.
 *
 * The online login will: `challenge({ imei })`, sign `loginSignatureMessage(…)` with
 * `Device.sign`, send the key the user can unwrap (flow 2) with its record, and hand the
 * response's `key` to `Device.adoptVerifiedKey`.
 */

/**
 * One server connection. Implementations validate responses against the protocol's schemas
 * (server responses are a trust boundary) and throw catalogued errors (the server's `code`).
 */
export interface Transport {
  /** A stable id of the server (its node id): names temporary databases and sync checkpoints. */
  readonly serverId: string;
  challenge(request: ChallengeBody): Promise<ChallengeResponse>;
  login(request: LoginBody): Promise<LoginResponse>;
}
