import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyPluginAsync, onRequestHookHandler } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  FieldvaultError,
  PHOTO_UPLOAD_CONTENT_TYPES,
  isHlc,
  parseHlc,
  PhotoParamsSchema,
  PhotoStatusQuerySchema,
  PhotoUploadQuerySchema,
  PhotoUploadStatusSchema,
  type PhotoRef,
  type PhotoUploadStatus,
} from '@fieldvault/protocol';
import type { PhotoRecord, UploadRecord } from '../couch/records.js';
import { responses } from '../http/schemas.js';
import { canAttachPhotos, canRead } from '../records/access.js';
import type { AuthContext } from '../sessions/plugin.js';
import { MAGIC_BYTES, detectImageType } from './image-type.js';
import { AssemblyGate, UserUploads } from './upload-limits.js';
import { UploadSlots, type SlotHolder } from './upload-slots.js';
import { SPOOL_FILE_PATTERN, newSpoolKey, startUploadSpool, type SpoolPlace, type SpoolResult, type UploadSpool } from './upload-spool.js';

function digestMismatch(detail: string): FieldvaultError {
  return new FieldvaultError('PHOTO_DIGEST_MISMATCH', { detail });
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Bytes an upload may send before its caller is authorised (then the socket is paused). */
const PRE_ADMIT_BYTES = 64 * 1024;

/**
 * Headers of a photo download (security audit L2: the type is checked by magic bytes only, so a
 * "PNG" may carry HTML after its signature). `nosniff` stops type guessing; the CSP sandbox makes
 * anything a browser renders from this URL scriptless, origin-less and unable to load anything;
 * `attachment` makes a browser that opens the URL itself save the file instead of showing it in
 * the server's origin. An `<img>` ignores Content-Disposition, so a web console still shows it.
 */
const DOWNLOAD_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; sandbox",
} as const;

const EXTENSION: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp' };

/** The spool directory: the configured one (0700, leftovers of a crash removed) or a fresh private one removed on close. */
async function openSpoolDir(configured: string | undefined): Promise<{ dir: string; owned: boolean }> {
  if (configured === undefined) return { dir: await mkdtemp(join(tmpdir(), 'fieldvault-spool-')), owned: true };
  await mkdir(configured, { recursive: true, mode: 0o700 });
  await chmod(configured, 0o700);
  // Left by a crash: unreadable (their key died with the process), so they only take space.
  for (const name of await readdir(configured)) if (SPOOL_FILE_PATTERN.test(name)) await unlink(join(configured, name)).catch(() => undefined);
  return { dir: configured, owned: false };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The body of a photo upload, read from the first hook on (photos plugin only). */
    photoSpool: UploadSpool | null;
  }
}

/** True when an `If-None-Match` header names `etag` (weak or strong, as RFC 9110 compares for it) or is `*`. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}

function isUploadContentType(header: string | undefined): boolean {
  const base = header?.split(';')[0]?.trim().toLowerCase();
  return base !== undefined && (PHOTO_UPLOAD_CONTENT_TYPES as readonly string[]).includes(base);
}

/**
 * Photos on the server (DESIGN.md §4–5). The phone keeps photos encrypted at rest under its
 * database key; it uploads the plain image over TLS, because the server must be able to show it
 * to supervisors and admins, check what it is (magic bytes) and match it to the record's SHA-256.
 * Stored as a CouchDB attachment of `photo:<id>`, written in one request once complete and verified.
 *
 * - `PUT /v1/photos/:photoId?record=<recordId>&offset=<n>`, body the bytes from `offset` on
 *   (`application/octet-stream` or the image type). The record must be on the server, readable
 *   and writable by the caller, and reference the photo; size and SHA-256 must match its ref.
 *   Resumable after a break at any moment: the body is read from the request's first hook on
 *   (`upload-spool.ts`), so bytes that arrived before the connection broke are kept even when it
 *   broke before the handler ran, and the handler never waits on a dead connection. They are
 *   written to an `upload:<id>` document (CouchDB: durable) before the request ends;
 *   `GET /v1/photos/:photoId/upload?record=` tells `received` (for who may continue the upload,
 *   once a request still in progress has stopped and saved its bytes), and the next PUT continues
 *   from there. One upload per photo at a time, a live retry taking over from a stalled one
 *   (`upload-slots.ts`). When all bytes are in, the digest and type are checked and the photo
 *   stored; a mismatch discards the partial upload.
 * - Security audit s9: a photo id belongs to the first record that referenced it (H2, with
 *   sync/push.ts); the body of an upload in progress is spooled to an encrypted file, not held in
 *   memory, with per-user caps on uploads in progress and on unfinished bytes (M2,
 *   `upload-limits.ts`); a partial upload belongs to who started it, except for the photo's own
 *   phone or user (L7); downloads carry a sandboxing CSP and `attachment` (L2).
 * - `GET /v1/photos/:photoId` streams the photo to anyone who can read its record.
 */
export const photosPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = app.fieldvaultConfig.photos;

  // Scoped to this plugin: the bytes are not parsed, the handler streams them with its own cap.
  app.addContentTypeParser([...PHOTO_UPLOAD_CONTENT_TYPES], (_request, payload, done) => {
    done(null, payload);
  });

  const slots = new UploadSlots();
  const userUploads = new UserUploads(config.maxUploadsPerUser);
  const assembling = new AssemblyGate(config.maxAssembling);
  // Made on the first admitted upload (a process that never takes one leaves no directory), or at
  // start when configured, to remove what a crash left there.
  const place: { dir: string; key: SpoolPlace['key'] } = { dir: '', key: newSpoolKey() };
  let spoolDir: Promise<{ dir: string; owned: boolean }> | undefined;
  const ensureSpoolDir = async (): Promise<void> => {
    spoolDir ??= openSpoolDir(config.spoolDir).catch((err: unknown) => {
      spoolDir = undefined;
      throw err;
    });
    place.dir = (await spoolDir).dir;
  };
  if (config.spoolDir !== undefined) await ensureSpoolDir();
  app.addHook('onClose', async () => {
    const made = await spoolDir?.catch(() => undefined);
    if (made?.owned === true) await rm(made.dir, { recursive: true, force: true });
  });

  app.decorateRequest('photoSpool', null);
  // First hook of the upload route, before authentication: see upload-spool.ts for why.
  const spoolBody: onRequestHookHandler = async (request) => {
    if (isUploadContentType(request.headers['content-type'])) request.photoSpool = startUploadSpool(request.raw, PRE_ADMIT_BYTES, place);
  };
  // Whatever the outcome (refused before the handler, error, done), the rest of the body drains
  // and the spool file goes. An abort only stops the keeping: the handler may still be reading
  // the file to save what arrived (the handler removes it when done).
  const drainBody = async (request: { photoSpool: UploadSpool | null }): Promise<void> => {
    await request.photoSpool?.dispose();
  };
  const stopKeeping = async (request: { photoSpool: UploadSpool | null }): Promise<void> => {
    request.photoSpool?.discard();
  };

  /**
   * The photo's ref on a record the caller may attach photos to, when that record owns the photo
   * id (security audit H2: an id belongs to the first record that referenced it, sync/push.ts).
   * @throws RECORD_NOT_FOUND, RECORD_FORBIDDEN, PHOTO_NOT_FOUND, PHOTO_ID_TAKEN
   */
  async function locateRef(auth: AuthContext, recordId: string, photoId: string): Promise<PhotoRef> {
    const envelope = await app.repo.getRecord(recordId);
    if (envelope === undefined) throw new FieldvaultError('RECORD_NOT_FOUND');
    if (!canAttachPhotos(auth, envelope.record)) throw new FieldvaultError('RECORD_FORBIDDEN');
    const photos = envelope.record.photos;
    const ref = Object.hasOwn(photos, photoId) ? photos[photoId] : undefined;
    if (ref === undefined || ref.removedAt !== undefined) throw new FieldvaultError('PHOTO_NOT_FOUND');
    let owner = (await app.repo.photoOwners([photoId])).get(photoId);
    // Referenced by a record pushed before ids were bound, and never uploaded: bound now.
    owner ??= (await app.repo.bindPhotoOwners(new Map([[photoId, recordId]]), app.now())).get(photoId);
    if (owner !== undefined && owner !== recordId) throw new FieldvaultError('PHOTO_ID_TAKEN', { detail: 'the photo id belongs to another record' });
    return ref;
  }

  /**
   * The stored photo of `recordId`, which owns the id. One stored for another record (a squat
   * from before ids were bound to records, security audit H2) is removed so the owner's upload
   * can go through.
   */
  async function storedPhoto(request: { log: { warn: (o: object, m: string) => void } }, photoId: string, recordId: string): Promise<PhotoRecord | undefined> {
    const stored = await app.repo.getPhoto(photoId);
    if (stored === undefined || stored.recordId === recordId) return stored;
    request.log.warn({ photoId, recordId, storedFor: stored.recordId }, 'photo stored for a record that does not own its id removed');
    await app.repo.deletePhoto(photoId);
    return undefined;
  }

  /** @throws PHOTO_DIGEST_MISMATCH when another photo is stored under this id. */
  function assertSamePhoto(stored: PhotoRecord, recordId: string, ref: PhotoRef): void {
    if (stored.recordId !== recordId || stored.sha256 !== ref.sha256 || stored.size !== ref.size) {
      throw digestMismatch('another photo is stored under this id');
    }
  }

  /** True when `auth` may continue (or discard) `upload`: the user who started it, or any user on the device it started on (a shared phone). */
  function startedHere(upload: UploadRecord, auth: AuthContext): boolean {
    return upload.startedBy === auth.username || (upload.startedFrom !== undefined && upload.startedFrom === auth.imei);
  }

  /** True when `auth` is the user who added the photo to the record or on the phone that added it (its HLC node is the IMEI): who holds its bytes. */
  function addedHere(ref: PhotoRef, auth: AuthContext): boolean {
    return ref.by === auth.username || (isHlc(ref.addedAt) && parseHlc(ref.addedAt).node === auth.imei);
  }

  /**
   * True when `auth` may stop `holder`'s upload of the photo `ref` describes: the same user or
   * phone, or who added the photo (see currentUpload); never a request whose connection is gone.
   */
  function mayTakeOver(auth: AuthContext, ref: PhotoRef, holder: SlotHolder, gone = false): boolean {
    return !gone && (holder.username === auth.username || holder.imei === auth.imei || addedHere(ref, auth));
  }

  type UploadState = NonNullable<Awaited<ReturnType<typeof app.repo.getUploadState>>>;

  /**
   * The unfinished upload of this exact photo (without its bytes) that `caller` continues. One
   * left by a different ref can never complete and is dropped. One started by someone else on
   * another device (security audit L7: any reader could discard it by sending wrong bytes at its
   * offset) is `foreign`: the photo's own phone or user, who holds the bytes, starts over and
   * replaces it (so nobody can block an upload by starting it first); anyone else is refused.
   * @throws PHOTO_UPLOAD_OWNED unless `reading` (the status route reports such an upload as it is).
   */
  async function currentUpload(photoId: string, recordId: string, ref: PhotoRef, caller: AuthContext, reading = false): Promise<{ upload: UploadState | undefined; foreign: UploadState | undefined }> {
    const upload = await app.repo.getUploadState(photoId);
    if (upload === undefined) return { upload: undefined, foreign: undefined };
    const u = upload.upload;
    const same = u.recordId === recordId && u.sha256 === ref.sha256 && u.size === ref.size && u.contentType === ref.type && upload.dataLength === u.received;
    if (!same) {
      await app.repo.deleteUpload(photoId);
      return { upload: undefined, foreign: undefined };
    }
    if (startedHere(u, caller)) return { upload, foreign: undefined };
    if (addedHere(ref, caller)) return { upload: undefined, foreign: upload };
    if (reading) return { upload, foreign: undefined };
    throw new FieldvaultError('PHOTO_UPLOAD_OWNED', { details: { received: u.received } });
  }

  /**
   * The bytes of `state`, read inside the assembly gate.
   * @throws PHOTO_OFFSET_MISMATCH when another request moved the upload on meanwhile.
   */
  async function uploadBytes(photoId: string, state: UploadState): Promise<Uint8Array> {
    const full = await app.repo.getUpload(photoId);
    if (full === undefined || full.version !== state.version) throw new FieldvaultError('PHOTO_OFFSET_MISMATCH', { detail: 'another upload of this photo moved on' });
    return full.data;
  }

  /**
   * A new unfinished upload must fit the user's quota (security audit M2: aborted uploads are
   * kept for resuming, so without it one user could fill the store's disk). Its bytes are not kept.
   * @throws PHOTO_UPLOAD_QUOTA
   */
  async function assertQuota(auth: AuthContext, ref: PhotoRef): Promise<void> {
    const pending = await app.repo.pendingUploadBytes(auth.username);
    if (pending + ref.size > config.pendingBytesPerUser) {
      throw new FieldvaultError('PHOTO_UPLOAD_QUOTA', { detail: `at most ${config.pendingBytesPerUser} bytes`, details: { pendingBytes: pending, maxPendingBytes: config.pendingBytesPerUser } });
    }
  }

  function status(photoId: string, recordId: string, ref: PhotoRef, received: number, complete: boolean): PhotoUploadStatus {
    return { photoId, recordId, size: ref.size, sha256: ref.sha256, received, complete };
  }

  r.get(
    '/v1/photos/:photoId/upload',
    {
      onRequest: app.requireAuth(),
      schema: { params: PhotoParamsSchema, querystring: PhotoStatusQuerySchema, response: responses({ 200: PhotoUploadStatusSchema }) },
    },
    async (request) => {
      const auth = request.auth as AuthContext;
      const { photoId } = request.params;
      const recordId = request.query.record;
      const ref = await locateRef(auth, recordId, photoId);
      // Right after a break, the broken request may still be saving the bytes that reached it:
      // read now, the status would say fewer, and the phone would resend bytes the server is
      // about to hold, only to be told PHOTO_OFFSET_MISMATCH (protocol audit s15, M5). A caller
      // who may continue the upload stops that request, as its next PUT would, and waits for it.
      const settling = slots.settle(photoId, (holder) => mayTakeOver(auth, ref, holder));
      if (settling !== undefined) {
        request.log.debug({ photoId }, 'photo upload status waits for the upload in progress');
        await settling;
      }
      // Bytes stored for another record (a squat, see storedPhoto) count as none: the owner's upload replaces them.
      const stored = await app.repo.getPhoto(photoId);
      if (stored !== undefined && stored.recordId === recordId) {
        assertSamePhoto(stored, recordId, ref);
        return status(photoId, recordId, ref, ref.size, true);
      }
      const { upload } = await currentUpload(photoId, recordId, ref, auth, true);
      return status(photoId, recordId, ref, upload?.upload.received ?? 0, false);
    },
  );

  /**
   * Saves the bytes of an upload that stopped short (broken connection, partial body, taken
   * over) when they continue it; returns the bytes the server now holds.
   */
  async function savePartial(auth: AuthContext, photoId: string, recordId: string, ref: PhotoRef, upload: UploadState | undefined, replacing: UploadState | undefined, data: Uint8Array): Promise<number> {
    // Only an upload left unfinished counts: one that completes in one request never needs the quota.
    if (upload === undefined) await assertQuota(auth, ref);
    const now = app.now();
    const next: UploadRecord = {
      photoId,
      recordId,
      sha256: ref.sha256,
      size: ref.size,
      contentType: ref.type,
      received: data.byteLength,
      startedBy: upload?.upload.startedBy ?? auth.username,
      startedFrom: upload === undefined ? auth.imei : upload.upload.startedFrom ?? auth.imei,
      updatedAt: now,
      expiresAt: now + config.uploadTtlSeconds * 1000,
    };
    const saved = await app.repo.saveUpload(next, data, upload?.version ?? replacing?.version ?? null);
    if (!saved) throw new FieldvaultError('PHOTO_OFFSET_MISMATCH', { detail: 'another upload of this photo moved on' });
    return data.byteLength;
  }

  r.put(
    '/v1/photos/:photoId',
    {
      onRequest: [spoolBody, app.requireAuth()],
      onResponse: drainBody,
      onRequestAbort: stopKeeping,
      schema: { params: PhotoParamsSchema, querystring: PhotoUploadQuerySchema, response: responses({ 200: PhotoUploadStatusSchema }) },
    },
    async (request) => {
      const auth = request.auth as AuthContext;
      const spool = request.photoSpool;
      const { photoId } = request.params;
      const { record: recordId, offset } = request.query;
      const ref = await locateRef(auth, recordId, photoId);
      if (ref.size > config.maxBytes) {
        throw new FieldvaultError('PHOTO_TOO_LARGE', { detail: `at most ${config.maxBytes} bytes`, details: { maxBytes: config.maxBytes } });
      }
      if (spool === null && request.body !== undefined) throw new FieldvaultError('INPUT_UNSUPPORTED_MEDIA_TYPE', { detail: 'send the photo bytes as application/octet-stream' });

      // Counted before the slot: a refused request never takes the slot over from a live upload.
      const leaveUser = userUploads.enter(auth.username);
      // A request whose connection is already gone never takes the slot from a live one; nor does
      // one that may not continue the holder's upload (only the same user or phone, or who added
      // the photo, may: see currentUpload), which would stop it and then be refused.
      const gone = request.raw.destroyed || request.raw.readableAborted;
      const lease = await slots.acquire(photoId, { username: auth.username, imei: auth.imei }, (holder) => mayTakeOver(auth, ref, holder, gone));
      try {
        const stored = await storedPhoto(request, photoId, recordId);
        if (stored !== undefined) {
          // Idempotent: a repeated upload (say, of the final chunk) of a stored photo changes nothing; its body is not kept.
          assertSamePhoto(stored, recordId, ref);
          return status(photoId, recordId, ref, ref.size, true);
        }
        const { upload, foreign } = await currentUpload(photoId, recordId, ref, auth);
        const received = upload?.upload.received ?? 0;
        if (offset !== received) {
          throw new FieldvaultError('PHOTO_OFFSET_MISMATCH', { detail: `the server has ${received} bytes`, details: { received } });
        }
        const remaining = ref.size - received;
        const header = request.headers['content-length'];
        const declared = header === undefined ? undefined : Number(header);
        if (declared !== undefined && declared > remaining) throw digestMismatch(`more bytes than the ${ref.size} on the record`);

        let read: SpoolResult = { kept: 0, end: 'ended', read: () => Promise.resolve(Buffer.alloc(0)) };
        let superseded = false;
        if (spool !== null) {
          await ensureSpoolDir();
          spool.admit(remaining);
          const first = await Promise.race([spool.result, lease.superseded.then(() => 'superseded' as const)]);
          if (first === 'superseded') {
            superseded = true;
            spool.discard();
          }
          read = await spool.result;
        }
        if (read.end === 'overflow') throw digestMismatch(`more bytes than the ${ref.size} on the record`);
        if (read.kept === 0 && received < ref.size) {
          // Nothing new (a cut before any byte, or an empty body): nothing to assemble or write.
          request.log.info({ photoId, received, size: ref.size, end: superseded ? 'superseded' : read.end }, 'photo upload partial');
          if (superseded) throw new FieldvaultError('PHOTO_OFFSET_MISMATCH', { detail: 'a newer upload of this photo took over', details: { received } });
          return status(photoId, recordId, ref, received, false);
        }

        // The bytes are in memory only from here on, for a few uploads at a time (upload-limits.ts).
        return await assembling.run(async () => {
          const piece = await read.read();
          const data = upload === undefined ? piece : Buffer.concat([await uploadBytes(photoId, upload), piece]);
          if (data.byteLength >= MAGIC_BYTES || data.byteLength === ref.size) {
            // The type is checked on the first bytes of the whole photo, whichever request brought them.
            const type = detectImageType(data);
            if (type !== ref.type) {
              if (upload !== undefined) await app.repo.deleteUpload(photoId);
              throw new FieldvaultError('PHOTO_TYPE_UNSUPPORTED', {
                detail: type === undefined ? 'the bytes are not a JPEG, PNG or WebP image' : `the bytes are ${type}, the record says ${ref.type}`,
              });
            }
          }

          if (data.byteLength < ref.size) {
            const now = await savePartial(auth, photoId, recordId, ref, upload, foreign, data);
            request.log.info({ photoId, received: now, size: ref.size, end: superseded ? 'superseded' : read.end }, 'photo upload partial');
            if (superseded) throw new FieldvaultError('PHOTO_OFFSET_MISMATCH', { detail: 'a newer upload of this photo took over', details: { received: now } });
            return status(photoId, recordId, ref, now, false);
          }

          if (sha256Hex(data) !== ref.sha256) {
            if (upload !== undefined) await app.repo.deleteUpload(photoId);
            throw digestMismatch('SHA-256 differs from the record');
          }
          const photo: PhotoRecord = { photoId, recordId, sha256: ref.sha256, size: ref.size, contentType: ref.type, uploadedBy: auth.username, uploadedAt: app.now() };
          if (!(await app.repo.createPhoto(photo, data))) {
            const winner = await app.repo.getPhoto(photoId);
            if (winner === undefined) throw new FieldvaultError('STORE_CONFLICT', { details: { op: 'photo.create' } });
            assertSamePhoto(winner, recordId, ref);
          }
          if (upload !== undefined || foreign !== undefined) await app.repo.deleteUpload(photoId);
          request.log.info({ photoId, size: ref.size }, 'photo stored');
          return status(photoId, recordId, ref, ref.size, true);
        });
      } finally {
        lease.release();
        leaveUser();
        await spool?.dispose();
      }
    },
  );

  r.get(
    '/v1/photos/:photoId',
    {
      onRequest: app.requireAuth(),
      schema: { params: PhotoParamsSchema, response: responses({ 200: Type.Unknown({ description: 'the photo bytes (image/jpeg, image/png or image/webp)' }) }) },
    },
    async (request, reply) => {
      const auth = request.auth as AuthContext;
      const { photoId } = request.params;
      // The photo and its id's owner in one read.
      const { photo: stored, owner } = await app.repo.photoWithOwner(photoId);
      if (stored === undefined) throw new FieldvaultError('PHOTO_NOT_FOUND');
      const envelope = await app.repo.getRecord(stored.recordId);
      // Unreadable, removed or re-pointed photos look the same as missing ones.
      const ref = envelope !== undefined && Object.hasOwn(envelope.record.photos, photoId) ? envelope.record.photos[photoId] : undefined;
      if (envelope === undefined || !canRead(auth, envelope.record) || ref === undefined || ref.removedAt !== undefined || ref.sha256 !== stored.sha256) {
        throw new FieldvaultError('PHOTO_NOT_FOUND');
      }
      // Bytes stored for a record that does not own the id (a squat, security audit H2) are never served.
      if (owner !== stored.recordId) throw new FieldvaultError('PHOTO_NOT_FOUND');
      const etag = `"${stored.sha256}"`;
      // A client holding these bytes already (its `If-None-Match` names the etag) is not sent
      // them again: photos are megabytes on slow links (protocol audit s15, L8). Checked after
      // every rule above, so a 304 tells nothing a 200 would not.
      if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).header('etag', etag).send();
      void reply
        .type(stored.contentType)
        .header('content-length', String(stored.size))
        .header('etag', etag)
        .headers(DOWNLOAD_HEADERS)
        .header('content-disposition', `attachment; filename="${photoId}.${EXTENSION[stored.contentType] ?? 'bin'}"`);
      return reply.send(app.repo.photoStream(photoId));
    },
  );
};
