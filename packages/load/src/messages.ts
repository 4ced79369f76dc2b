import type { KdfCost } from '@fieldvault/client';
import type { CallLog } from './timed-transport.js';

/** One simulated phone: its IMEI and the field worker who uses it. */
export interface PhonePlan {
  readonly index: number;
  readonly imei: string;
  readonly username: string;
  readonly password: string;
}

/** What a worker thread is given. */
export interface WorkerInput {
  readonly phones: readonly PhonePlan[];
  readonly server: { readonly url: string; readonly serverId: string; readonly fingerprint: string };
  readonly directory: string;
  readonly records: number;
  readonly photos: number;
  readonly photoBytes: number;
  readonly kdf: KdfCost | undefined;
  /** Indexes of the phones that run the full sync (pull) in phase 2. */
  readonly pullers: readonly number[];
  /** Phones wait, once logged in with their records registered, until the main thread says `send`. */
  readonly sendTogether: boolean;
}

/** What one phone did, reported to the main thread. */
export interface PhoneOutcome {
  readonly index: number;
  readonly imei: string;
  readonly username: string;
  /** Ids of the records the phone created, with the name it gave each (to compare with the server). */
  readonly created: ReadonlyArray<{ readonly id: string; readonly name: string; readonly photoId?: string }>;
  readonly pushed: number;
  readonly pulled: number;
  readonly failed: ReadonlyArray<{ readonly id: string; readonly code: string }>;
  readonly photosUploaded: number;
  readonly photosFailed: ReadonlyArray<{ readonly photoId: string; readonly code: string }>;
  readonly pending: { readonly records: number; readonly photos: number };
  /** Wall clock (epoch ms) when its sending sync started and ended (0 if it never synced). */
  readonly syncStartedAt: number;
  readonly syncEndedAt: number;
  /** A failure of the whole phone (login or its sending sync threw), as a code. */
  readonly error?: string;
  readonly syncMs: number;
}

/** Phase 2 of one phone: a full sync after every phone has sent its records. */
export interface PullOutcome {
  readonly index: number;
  readonly pulled: number;
  readonly photosDownloaded: number;
  readonly photosFailed: number;
  readonly error?: string;
  readonly syncMs: number;
}

/** Worker → main. */
export type WorkerMessage =
  | { readonly type: 'phone'; readonly outcome: PhoneOutcome }
  | { readonly type: 'registered' }
  | { readonly type: 'sent' }
  | { readonly type: 'pulled'; readonly outcome: PullOutcome }
  | { readonly type: 'done'; readonly calls: CallLog };

/**
 * Main → worker. `send` (with `sendTogether`): every phone of every worker has registered its
 * records; they may send. `pull`: every phone of every worker has sent; the pullers may start.
 */
export type MainMessage = { readonly type: 'send' } | { readonly type: 'pull' };
