import type {
  ChallengeBody,
  ChallengeResponse,
  FormDefinition,
  LoginBody,
  LoginResponse,
  PhotoType,
  PhotoUploadStatus,
  PullResponse,
  PushRequest,
  PushResponse,
  RecordSearchQuery,
  RecordSearchResponse,
  SetPasswordBody,
  SetPasswordResponse,
  SignupRequestBody,
  SignupRequestResponse,
  SignupStatusBody,
  SignupStatusResponse,
} from '@fieldvault/protocol';

/*
 * The seam between the SDK and a server. The offline SDK never calls it; `Device.loginOnline` and
 * `Session.sync` do, through the transport the app passes: `createHttpTransport` (HTTPS with a
 * verified certificate), or another implementation of this interface on a platform without
 * node:https. Request and response shapes are the protocol's wire schemas
 * (`packages/protocol/src/wire/`); binary values travel as base64, photos as raw bytes.
 *
 * `loginOnline`: `challenge({ imei })`, signs `loginSignatureMessage(…)` with the device key,
 * `login(…)` with the key the user can unwrap (flow 2) and its record, checks the answer again
 * (schema, key matches record, record is for this device, answer is for this user) and adopts
 * the returned key (`Device.adoptVerifiedKey`).
 *
 * `sync`: `push` batches of records, `pull` pages from the server's checkpoint, then
 * `uploadPhoto` / `downloadPhoto`. The session's bearer token is passed to each call and never
 * kept by the transport.
 */

/** Per-call options of the sync methods. */
export interface TransportCallOptions {
  /** Aborts the request (SYNC_CANCELLED); nothing the aborted answer held is returned. */
  readonly signal?: AbortSignal;
}

/** A pull request: from `since` (absent: from the beginning), at most `limit` records. */
export interface PullRequest {
  readonly since?: string;
  readonly limit: number;
}

/** A photo to upload: the plain bytes exactly as the record's ref describes them (size, sha256, type). */
export interface PhotoUpload {
  readonly photoId: string;
  /** The record whose `photos` map references the photo (it must be on the server already). */
  readonly recordId: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly type: PhotoType;
}

/** Options of `uploadPhoto` and `downloadPhoto`. */
export interface PhotoTransferOptions extends TransportCallOptions {
  /**
   * Called as the photo's bytes move (for a progress bar), with how many of them are done: for an
   * upload, what the server already held plus what has been handed to the connection since; for a
   * download, what has arrived. May be called many times per photo; an exception it throws is
   * ignored.
   */
  readonly onBytes?: (bytes: number) => void;
}

/** Options of `uploadPhoto`. */
export interface PhotoUploadOptions extends PhotoTransferOptions {
  /** Called with the server's `received` offset before the bytes are sent (0 for a fresh upload). */
  readonly onResume?: (offset: number) => void;
}

/** What `downloadPhoto` expects: the ref of the photo on its record. */
export interface PhotoDownload {
  readonly photoId: string;
  readonly size: number;
  readonly sha256: string;
  readonly type: PhotoType;
}

/** A downloaded photo, already checked against its ref (size, SHA-256, content type). */
export interface DownloadedPhoto {
  readonly bytes: Uint8Array;
  readonly type: PhotoType;
}

/**
 * One server connection. Implementations verify the server (TLS), validate responses against the
 * protocol's schemas (server responses are a trust boundary) and throw catalogued errors: the
 * server's `code` for its error answers (with `details.retryAfterSeconds` when it sent
 * Retry-After), TRANSPORT_UNREACHABLE, TRANSPORT_TLS_UNTRUSTED and TRANSPORT_BAD_RESPONSE for the
 * connection itself, SYNC_CANCELLED when the call's signal fired.
 */
export interface Transport {
  /** A stable id of the server (its node id): names temporary databases and sync checkpoints. */
  readonly serverId: string;
  /**
   * Where and how this transport reaches its server, as a string that differs whenever the
   * endpoint or the trust in it differs (`createHttpTransport`: base URL + certificate pins / CA
   * fingerprints / system store). An online login is bound to it: `Session.sync`, `searchServer`
   * and `serverForm` send the login's token only through a transport with the same identity
   * (SYNC_TRANSPORT_CHANGED otherwise, before anything is sent). Optional: a transport without
   * one binds its logins to the transport object itself, so only that same object can use them.
   */
  readonly identity?: string;
  /** `POST /v1/auth/challenge`. */
  challenge(request: ChallengeBody): Promise<ChallengeResponse>;
  /** `POST /v1/auth/login`. */
  login(request: LoginBody): Promise<LoginResponse>;
  /**
   * `POST /v1/sync/push`: one result per record, in the order sent (checked: same count, same ids).
   * @throws INPUT_TOO_LARGE (the whole batch is over the server's limits), SESSION_INVALID, DEVICE_BLACKLISTED, …
   */
  push(token: string, request: PushRequest, options?: TransportCallOptions): Promise<PushResponse>;
  /**
   * `GET /v1/sync/pull`: a page of records, each validated (`parseRecord`) and canonical.
   * @throws SYNC_CHECKPOINT_INVALID, SESSION_INVALID, DEVICE_BLACKLISTED, …
   */
  pull(token: string, request: PullRequest, options?: TransportCallOptions): Promise<PullResponse>;
  /**
   * Uploads a photo, resumably: asks the server how many bytes it already holds
   * (`GET /v1/photos/:id/upload`) and sends the rest (`PUT /v1/photos/:id?offset=`). Calling it
   * again after a broken connection continues where the server's copy ends; a photo the server
   * already holds costs one small request.
   * @throws RECORD_NOT_FOUND, PHOTO_NOT_FOUND, PHOTO_DIGEST_MISMATCH, PHOTO_TOO_LARGE, PHOTO_TYPE_UNSUPPORTED, …
   */
  uploadPhoto(token: string, photo: PhotoUpload, options?: PhotoUploadOptions): Promise<PhotoUploadStatus>;
  /**
   * `GET /v1/photos/:id`: the photo's bytes, checked against `expected` (size, SHA-256, type);
   * other bytes are TRANSPORT_BAD_RESPONSE (an answer cut short by the network is
   * TRANSPORT_UNREACHABLE, which a sync retries).
   * @throws PHOTO_NOT_FOUND, …
   */
  downloadPhoto(token: string, expected: PhotoDownload, options?: PhotoTransferOptions): Promise<DownloadedPhoto>;
  /**
   * `GET /v1/records/search`: a page of matching records, each validated.
   * @throws INPUT_INVALID, SYNC_CHECKPOINT_INVALID (cursor), …
   */
  search(token: string, query: RecordSearchQuery, options?: TransportCallOptions): Promise<RecordSearchResponse>;
  /** `GET /v1/forms/child`: the form definition the server publishes, validated. */
  form(token: string, options?: TransportCallOptions): Promise<FormDefinition>;
  /**
   * `POST /v1/signups` (pending sign-ups, issue 7): an unverified user asks for an account,
   * device-signed, with a batch of their records. Optional: `Device.requestAccount` refuses a
   * transport without it (INPUT_INVALID). The SDK checks the answer's schema itself.
   */
  requestAccount?(request: SignupRequestBody): Promise<SignupRequestResponse>;
  /** `POST /v1/signups/status`: where this device's request stands. Optional, as `requestAccount`. */
  signupStatus?(request: SignupStatusBody): Promise<SignupStatusResponse>;
  /**
   * `POST /v1/auth/password`: sets a user's password with the single-use invitation or reset token
   * an admin was given (`setPasswordWithToken` checks the policy first). No session. Optional.
   * @throws AUTH_RESET_TOKEN_INVALID, PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_TOO_COMMON, RATE_LIMITED, …
   */
  setPassword?(request: SetPasswordBody): Promise<SetPasswordResponse>;
  /**
   * `POST /v1/auth/logout`: ends the server session of `token` (the SDK calls it, best effort,
   * when the user logs out). Optional: without it the server session simply expires.
   * @throws SESSION_INVALID, TRANSPORT_UNREACHABLE, …
   */
  logout?(token: string, options?: TransportCallOptions): Promise<void>;
  /** Closes pooled connections (the SDK calls it after logout). Optional. */
  close?(): void;
}
