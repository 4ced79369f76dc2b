import type { IncomingMessage } from 'node:http';

/*
 * The body of one photo upload, read from the moment the request arrives (issue 5, regression of
 * "bytes lost and handler hung when the connection broke before the handler read the body").
 *
 * Why not read the body in the handler: the handler first authenticates and reads CouchDB
 * (session, record, upload state). A connection that breaks meanwhile makes Node destroy the
 * request, dropping what it had buffered, and a listener attached after `close` fired waits
 * forever. So the spool listens from the first `onRequest` hook, before authentication, and
 * settles exactly once whatever happened first (end, abort, error, close, or a request already
 * finished when it was attached).
 *
 * Before the caller is authorised (`admit`) the spool keeps at most `preAdmitBytes` and then
 * pauses the socket (TCP backpressure), so an unauthenticated caller cannot make the server hold
 * more than that. After `admit(limit)` it keeps up to `limit` bytes; beyond that it stops keeping
 * and drains (so the client reads the error instead of a reset). `discard()` keeps nothing more
 * and drains: for refused and superseded requests.
 */

export type SpoolEnd = 'ended' | 'aborted' | 'overflow';

export interface SpoolResult {
  /** What arrived and was kept (all of it unless `end` is `overflow`, then nothing). */
  readonly bytes: Buffer;
  /** `ended`: the whole body arrived; `aborted`: the connection broke or the body stopped short of its Content-Length; `overflow`: more than the limit was sent. */
  readonly end: SpoolEnd;
}

export interface UploadSpool {
  /** Lets the body flow again after authorisation; keeps at most `limit` bytes in total. */
  admit(limit: number): void;
  /** Keeps nothing more; drains the rest of the body. Settles the result with what was kept so far as `aborted` if not settled yet. */
  discard(): void;
  /** Settles once: never hangs, whatever the order of events. */
  readonly result: Promise<SpoolResult>;
  /** Bytes received so far (kept or not). */
  readonly receivedBytes: () => number;
}

/** Starts reading `raw` at once. */
export function startUploadSpool(raw: IncomingMessage, preAdmitBytes: number): UploadSpool {
  const declaredHeader = raw.headers['content-length'];
  const declared = declaredHeader === undefined ? undefined : Number(declaredHeader);
  const chunks: Buffer[] = [];
  let kept = 0;
  let received = 0;
  let limit: number | undefined; // undefined until admitted
  let keeping = true;
  let settled = false;
  let resolveResult: (r: SpoolResult) => void = () => undefined;
  const result = new Promise<SpoolResult>((resolve) => {
    resolveResult = resolve;
  });

  const settle = (end: SpoolEnd): void => {
    if (settled) return;
    settled = true;
    const bytes = end === 'overflow' ? Buffer.alloc(0) : Buffer.concat(chunks, kept);
    chunks.length = 0;
    resolveResult({ bytes, end });
  };

  const onData = (chunk: Buffer): void => {
    received += chunk.byteLength;
    if (!keeping || settled) return;
    if (limit !== undefined && kept + chunk.byteLength > limit) {
      keeping = false;
      settle('overflow');
      return;
    }
    chunks.push(chunk);
    kept += chunk.byteLength;
    // Not yet authorised: stop reading once the small pre-admission budget is used.
    if (limit === undefined && kept >= preAdmitBytes) raw.pause();
  };
  const onEnd = (): void => settle(declared !== undefined && Number.isFinite(declared) && received < declared ? 'aborted' : 'ended');
  // A broken connection: 'aborted' (older Node), 'error' (ECONNRESET) and/or 'close' without 'end'.
  const onBroken = (): void => settle(raw.complete ? 'ended' : 'aborted');

  raw.on('data', onData);
  raw.on('end', onEnd);
  raw.on('aborted', onBroken);
  raw.on('error', onBroken);
  raw.on('close', onBroken);
  // Attached late (it should not be, but a hook order change must not bring the hang back).
  if (raw.readableEnded) onEnd();
  else if (raw.destroyed) onBroken();

  return {
    admit(max: number): void {
      limit = max;
      if (kept > max) {
        keeping = false;
        settle('overflow');
      }
      raw.resume();
    },
    discard(): void {
      keeping = false;
      settle('aborted');
      raw.resume();
    },
    result,
    receivedBytes: () => received,
  };
}
