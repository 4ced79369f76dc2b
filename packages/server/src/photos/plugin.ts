import { createHash } from 'node:crypto';
import type { FastifyPluginAsync, onRequestHookHandler } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  FieldvaultError,
  PHOTO_UPLOAD_CONTENT_TYPES,
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
import { UploadSlots } from './upload-slots.js';
import { startUploadSpool, type SpoolResult, type UploadSpool } from './upload-spool.js';

function digestMismatch(detail: string): FieldvaultError {
  return new FieldvaultError('PHOTO_DIGEST_MISMATCH', { detail });
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Bytes an upload may send before its caller is authorised (then the socket is paused). */
const PRE_ADMIT_BYTES = 64 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    /** The body of a photo upload, read from the first hook on (photos plugin only). */
    photoSpool: UploadSpool | null;
  }
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
 *   `GET /v1/photos/:photoId/upload?record=` tells `received`, and the next PUT continues from
 *   there. One upload per photo at a time, a live retry taking over from a stalled one
 *   (`upload-slots.ts`). When all bytes are in, the digest and type are checked and the photo
 *   stored; a mismatch discards the partial upload.
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
  app.decorateRequest('photoSpool', null);
  // First hook of the upload route, before authentication: see upload-spool.ts for why.
  const spoolBody: onRequestHookHandler = async (request) => {
    if (isUploadContentType(request.headers['content-type'])) request.photoSpool = startUploadSpool(request.raw, PRE_ADMIT_BYTES);
  };
  // Whatever the outcome (refused before the handler, error, done), the rest of the body drains.
  const drainBody = async (request: { photoSpool: UploadSpool | null }): Promise<void> => {
    request.photoSpool?.discard();
  };

  /**
   * The photo's ref on a record the caller may attach photos to.
   * @throws RECORD_NOT_FOUND, RECORD_FORBIDDEN, PHOTO_NOT_FOUND
   */
  async function locateRef(auth: AuthContext, recordId: string, photoId: string): Promise<PhotoRef> {
    const envelope = await app.repo.getRecord(recordId);
    if (envelope === undefined) throw new FieldvaultError('RECORD_NOT_FOUND');
    if (!canAttachPhotos(auth, envelope.record)) throw new FieldvaultError('RECORD_FORBIDDEN');
    const photos = envelope.record.photos;
    const ref = Object.hasOwn(photos, photoId) ? photos[photoId] : undefined;
    if (ref === undefined || ref.removedAt !== undefined) throw new FieldvaultError('PHOTO_NOT_FOUND');
    return ref;
  }

  /** @throws PHOTO_DIGEST_MISMATCH when another photo is stored under this id. */
  function assertSamePhoto(stored: PhotoRecord, recordId: string, ref: PhotoRef): void {
    if (stored.recordId !== recordId || stored.sha256 !== ref.sha256 || stored.size !== ref.size) {
      throw digestMismatch('another photo is stored under this id');
    }
  }

  /** The unfinished upload of this exact photo; one left by a different ref is dropped. */
  async function currentUpload(photoId: string, recordId: string, ref: PhotoRef) {
    const upload = await app.repo.getUpload(photoId);
    if (upload === undefined) return undefined;
    const u = upload.upload;
    const same = u.recordId === recordId && u.sha256 === ref.sha256 && u.size === ref.size && u.contentType === ref.type && upload.data.byteLength === u.received;
    if (same) return upload;
    await app.repo.deleteUpload(photoId);
    return undefined;
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
      const stored = await app.repo.getPhoto(photoId);
      if (stored !== undefined) {
        assertSamePhoto(stored, recordId, ref);
        return status(photoId, recordId, ref, ref.size, true);
      }
      const upload = await currentUpload(photoId, recordId, ref);
      return status(photoId, recordId, ref, upload?.upload.received ?? 0, false);
    },
  );

  /**
   * Saves the bytes of an upload that stopped short (broken connection, partial body, taken
   * over) when they continue it; returns the bytes the server now holds.
   */
  async function savePartial(auth: AuthContext, photoId: string, recordId: string, ref: PhotoRef, upload: Awaited<ReturnType<typeof currentUpload>>, data: Buffer): Promise<number> {
    const now = app.now();
    const next: UploadRecord = {
      photoId,
      recordId,
      sha256: ref.sha256,
      size: ref.size,
      contentType: ref.type,
      received: data.byteLength,
      startedBy: upload?.upload.startedBy ?? auth.username,
      updatedAt: now,
      expiresAt: now + config.uploadTtlSeconds * 1000,
    };
    const saved = await app.repo.saveUpload(next, data, upload?.version ?? null);
    if (!saved) throw new FieldvaultError('PHOTO_OFFSET_MISMATCH', { detail: 'another upload of this photo moved on' });
    return data.byteLength;
  }

  r.put(
    '/v1/photos/:photoId',
    {
      onRequest: [spoolBody, app.requireAuth()],
      onResponse: drainBody,
      onRequestAbort: drainBody,
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

      // A request whose connection is already gone never takes the slot from a live one.
      const gone = request.raw.destroyed || request.raw.readableAborted;
      const lease = await slots.acquire(photoId, !gone);
      try {
        const stored = await app.repo.getPhoto(photoId);
        if (stored !== undefined) {
          // Idempotent: a repeated upload (say, of the final chunk) of a stored photo changes nothing; its body is not kept.
          assertSamePhoto(stored, recordId, ref);
          return status(photoId, recordId, ref, ref.size, true);
        }
        const upload = await currentUpload(photoId, recordId, ref);
        const received = upload?.upload.received ?? 0;
        if (offset !== received) {
          throw new FieldvaultError('PHOTO_OFFSET_MISMATCH', { detail: `the server has ${received} bytes`, details: { received } });
        }
        const remaining = ref.size - received;
        const header = request.headers['content-length'];
        const declared = header === undefined ? undefined : Number(header);
        if (declared !== undefined && declared > remaining) throw digestMismatch(`more bytes than the ${ref.size} on the record`);

        let read: SpoolResult = { bytes: Buffer.alloc(0), end: 'ended' };
        let superseded = false;
        if (spool !== null) {
          spool.admit(remaining);
          const first = await Promise.race([spool.result, lease.superseded.then(() => 'superseded' as const)]);
          if (first === 'superseded') {
            superseded = true;
            spool.discard();
          }
          read = await spool.result;
        }
        if (read.end === 'overflow') throw digestMismatch(`more bytes than the ${ref.size} on the record`);

        const data = upload === undefined ? read.bytes : Buffer.concat([upload.data, read.bytes]);
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
          const now = read.bytes.byteLength > 0 ? await savePartial(auth, photoId, recordId, ref, upload, data) : received;
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
        if (upload !== undefined) await app.repo.deleteUpload(photoId);
        request.log.info({ photoId, size: ref.size }, 'photo stored');
        return status(photoId, recordId, ref, ref.size, true);
      } finally {
        lease.release();
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
      const stored = await app.repo.getPhoto(photoId);
      if (stored === undefined) throw new FieldvaultError('PHOTO_NOT_FOUND');
      const envelope = await app.repo.getRecord(stored.recordId);
      // Unreadable, removed or re-pointed photos look the same as missing ones.
      const ref = envelope !== undefined && Object.hasOwn(envelope.record.photos, photoId) ? envelope.record.photos[photoId] : undefined;
      if (envelope === undefined || !canRead(auth, envelope.record) || ref === undefined || ref.removedAt !== undefined || ref.sha256 !== stored.sha256) {
        throw new FieldvaultError('PHOTO_NOT_FOUND');
      }
      void reply
        .type(stored.contentType)
        .header('content-length', String(stored.size))
        .header('etag', `"${stored.sha256}"`);
      return reply.send(app.repo.photoStream(photoId));
    },
  );
};
