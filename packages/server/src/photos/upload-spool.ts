import { createCipheriv, createDecipheriv, randomBytes, type CipherKey } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';

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
 * Before the caller is authorised (`admit`) the spool keeps at most `preAdmitBytes` in memory and
 * then pauses the socket (TCP backpressure), so an unauthenticated caller cannot make the server
 * hold more than that. After `admit(limit)` every byte goes to a spool file (security audit M2:
 * 50 stalled 10 MiB uploads held in memory took the server to 2.9 GB), with the socket paused
 * whenever the disk falls behind, so an upload in progress costs a file and a small buffer, not
 * its size in memory. The file is 0600 in a 0700 directory and encrypted (AES-256-CTR) under a key
 * that lives only in this process, so a crash leaves nothing readable behind. Beyond `limit` it
 * stops keeping and drains (so the client reads the error instead of a reset). `discard()` keeps
 * nothing more and drains: for refused and superseded requests. `dispose()` removes the file.
 */

export type SpoolEnd = 'ended' | 'aborted' | 'overflow';

export interface SpoolResult {
  /** Bytes kept (all that arrived unless `end` is `overflow`, then 0). */
  readonly kept: number;
  /** `ended`: the whole body arrived; `aborted`: the connection broke or the body stopped short of its Content-Length; `overflow`: more than the limit was sent. */
  readonly end: SpoolEnd;
  /** The kept bytes, read back into memory (call it only while assembling: see plugin.ts). */
  read(): Promise<Buffer>;
}

export interface UploadSpool {
  /** Lets the body flow again after authorisation, into the spool file; keeps at most `limit` bytes in total. */
  admit(limit: number): void;
  /** Keeps nothing more; drains the rest of the body. Settles the result with what was kept so far as `aborted` if not settled yet. */
  discard(): void;
  /** Settles once: never hangs, whatever the order of events. */
  readonly result: Promise<SpoolResult>;
  /** Bytes received so far (kept or not). */
  readonly receivedBytes: () => number;
  /** Discards, then removes the spool file (idempotent; the result's `read` fails after it). */
  dispose(): Promise<void>;
}

/** Where spool files go and the per-process key they are encrypted under. */
export interface SpoolPlace {
  readonly dir: string;
  readonly key: CipherKey;
}

/** A fresh per-process spool key (never written anywhere). */
export function newSpoolKey(): CipherKey {
  return randomBytes(32);
}

/** Bytes an admitted upload may have waiting for the disk before its socket is paused. */
const SPOOL_WRITE_BUFFER_BYTES = 4 * 1024 * 1024;

/** File names the spool writes (so a start-up sweep can remove leftovers of a crash). */
export const SPOOL_FILE_PATTERN = /^upload-[0-9a-f]{32}\.spool$/;

/** Starts reading `raw` at once. */
export function startUploadSpool(raw: IncomingMessage, preAdmitBytes: number, place: SpoolPlace): UploadSpool {
  const declaredHeader = raw.headers['content-length'];
  const declared = declaredHeader === undefined ? undefined : Number(declaredHeader);
  const chunks: Buffer[] = [];
  let kept = 0;
  let received = 0;
  let limit: number | undefined; // undefined until admitted
  let keeping = true;
  let settled = false;
  let file: { path: string; stream: WriteStream; iv: Buffer; cipher: ReturnType<typeof createCipheriv>; failed: boolean } | undefined;
  let resolveResult: (r: SpoolResult) => void = () => undefined;
  const result = new Promise<SpoolResult>((resolve) => {
    resolveResult = resolve;
  });

  const inMemory = (bytes: Buffer): (() => Promise<Buffer>) => () => Promise.resolve(bytes);

  const settle = (end: SpoolEnd): void => {
    if (settled) return;
    settled = true;
    keeping = false;
    if (end === 'overflow') {
      chunks.length = 0;
      file?.stream.destroy();
      resolveResult({ kept: 0, end, read: inMemory(Buffer.alloc(0)) });
      return;
    }
    if (file === undefined) {
      const bytes = Buffer.concat(chunks, kept);
      chunks.length = 0;
      resolveResult({ kept: bytes.byteLength, end, read: inMemory(bytes) });
      return;
    }
    const f = file;
    const total = kept;
    const done = (): void => {
      // A file that failed to write (disk full) keeps nothing: the client resumes from the server's offset.
      if (f.failed) {
        resolveResult({ kept: 0, end: 'aborted', read: inMemory(Buffer.alloc(0)) });
        return;
      }
      resolveResult({
        kept: total,
        end,
        read: async () => {
          const enc = await readFile(f.path);
          const decipher = createDecipheriv('aes-256-ctr', place.key, f.iv);
          return Buffer.concat([decipher.update(enc), decipher.final()]);
        },
      });
    };
    if (f.stream.closed || f.failed) done();
    else {
      f.stream.once('close', done);
      f.stream.end(f.cipher.final());
    }
  };

  const write = (chunk: Buffer): void => {
    if (file === undefined) {
      chunks.push(chunk);
      return;
    }
    // Backpressure: a slow disk pauses the socket instead of queueing the body in memory.
    if (!file.stream.write(file.cipher.update(chunk))) {
      raw.pause();
      file.stream.once('drain', () => {
        if (keeping) raw.resume();
      });
    }
  };

  const onData = (chunk: Buffer): void => {
    received += chunk.byteLength;
    if (!keeping || settled) return;
    if (limit !== undefined && kept + chunk.byteLength > limit) {
      settle('overflow');
      return;
    }
    write(chunk);
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

  const openFile = (): void => {
    const name = `upload-${randomBytes(16).toString('hex')}.spool`;
    const iv = randomBytes(16);
    // The socket is paused only once 4 MiB wait for the disk: bytes still in a paused request when
    // the connection breaks are lost to the resume offset, so pausing at the default 16 KiB lost
    // the tail of cut uploads under load. 4 MiB per upload in progress is bounded by the per-user
    // and assembling caps; a stalled upload holds nothing (its bytes are on disk).
    const stream = createWriteStream(join(place.dir, name), { flags: 'wx', mode: 0o600, highWaterMark: SPOOL_WRITE_BUFFER_BYTES });
    const f = { path: join(place.dir, name), stream, iv, cipher: createCipheriv('aes-256-ctr', place.key, iv), failed: false };
    stream.on('error', () => {
      f.failed = true;
      if (!settled) settle('aborted');
    });
    file = f;
    for (const c of chunks.splice(0)) write(c);
  };

  let disposed: Promise<void> | undefined;
  return {
    admit(max: number): void {
      limit = max;
      if (kept > max) {
        settle('overflow');
        raw.resume();
        return;
      }
      if (!settled) openFile();
      raw.resume();
    },
    discard(): void {
      settle('aborted');
      raw.resume();
    },
    result,
    receivedBytes: () => received,
    dispose(): Promise<void> {
      disposed ??= (async () => {
        settle('aborted');
        raw.resume();
        await result;
        if (file !== undefined) await unlink(file.path).catch(() => undefined);
      })();
      return disposed;
    },
  };
}
