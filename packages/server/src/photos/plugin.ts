import { createHash } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
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

function digestMismatch(detail: string): FieldvaultError {
  return new FieldvaultError('PHOTO_DIGEST_MISMATCH', { detail });
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface BodyRead {
  readonly bytes: Buffer;
  /** The connection broke (or the body ended before its Content-Length). */
  readonly aborted: boolean;
  /** More than `max` bytes were sent; reading stopped. */
  readonly overflow: boolean;
}

interface ByteStream {
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: unknown) => void): unknown;
}

function isStream(body: unknown): body is ByteStream {
  return typeof body === 'object' && body !== null && typeof (body as { on?: unknown }).on === 'function' && typeof (body as { pipe?: unknown }).pipe === 'function';
}

/**
 * Reads at most `max` bytes of a request body. A broken connection keeps what arrived. On
 * overflow it answers at once but keeps draining (without keeping) the rest, so the connection
 * survives and the client reads the error instead of a reset.
 */
function readBody(body: ByteStream, max: number, declared: number | undefined): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let settled = false;
    const settle = (read: BodyRead): void => {
      if (settled) return;
      settled = true;
      resolve(read);
    };
    const kept = (): Buffer => Buffer.concat(chunks);
    body.on('data', (chunk: Uint8Array) => {
      if (settled) return;
      n += chunk.byteLength;
      if (n > max) {
        chunks.length = 0;
        settle({ bytes: Buffer.alloc(0), aborted: false, overflow: true });
        return;
      }
      chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    body.on('end', () => settle({ bytes: kept(), aborted: declared !== undefined && n < declared, overflow: false }));
    // A connection that breaks mid-body errors and/or closes without 'end'.
    body.on('error', () => settle({ bytes: kept(), aborted: true, overflow: false }));
    body.on('close', () => settle({ bytes: kept(), aborted: true, overflow: false }));
  });
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
 *   Resumable: bytes that arrived before a broken connection, or a deliberate partial body, are
 *   kept in an `upload:<id>` document; `GET /v1/photos/:photoId/upload?record=` tells `received`,
 *   and the next PUT continues from there. When all bytes are in, the digest and type are checked
 *   and the photo stored; a mismatch discards the partial upload.
 * - `GET /v1/photos/:photoId` streams the photo to anyone who can read its record.
 */
export const photosPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = app.fieldvaultConfig.photos;

  // Scoped to this plugin: the bytes are not parsed, the handler streams them with its own cap.
  app.addContentTypeParser([...PHOTO_UPLOAD_CONTENT_TYPES], (_request, payload, done) => {
    done(null, payload);
  });

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

  r.put(
    '/v1/photos/:photoId',
    {
      onRequest: app.requireAuth(),
      schema: { params: PhotoParamsSchema, querystring: PhotoUploadQuerySchema, response: responses({ 200: PhotoUploadStatusSchema }) },
    },
    async (request) => {
      const auth = request.auth as AuthContext;
      const { photoId } = request.params;
      const { record: recordId, offset } = request.query;
      const ref = await locateRef(auth, recordId, photoId);
      if (ref.size > config.maxBytes) {
        throw new FieldvaultError('PHOTO_TOO_LARGE', { detail: `at most ${config.maxBytes} bytes`, details: { maxBytes: config.maxBytes } });
      }
      const stored = await app.repo.getPhoto(photoId);
      if (stored !== undefined) {
        // Idempotent: a repeated upload of a stored photo changes nothing (its body is not read).
        assertSamePhoto(stored, recordId, ref);
        return status(photoId, recordId, ref, ref.size, true);
      }
      const body: unknown = request.body;
      if (body !== undefined && !isStream(body)) throw new FieldvaultError('INPUT_UNSUPPORTED_MEDIA_TYPE', { detail: 'send the photo bytes as application/octet-stream' });

      const upload = await currentUpload(photoId, recordId, ref);
      const received = upload?.upload.received ?? 0;
      if (offset !== received) {
        throw new FieldvaultError('PHOTO_OFFSET_MISMATCH', { detail: `the server has ${received} bytes`, details: { received } });
      }
      const remaining = ref.size - received;
      const header = request.headers['content-length'];
      const declared = header === undefined ? undefined : Number(header);
      if (declared !== undefined && declared > remaining) throw digestMismatch(`more bytes than the ${ref.size} on the record`);
      const read = body === undefined ? { bytes: Buffer.alloc(0), aborted: false, overflow: false } : await readBody(body, remaining, declared);
      if (read.overflow) throw digestMismatch(`more bytes than the ${ref.size} on the record`);

      const data = upload === undefined ? read.bytes : Buffer.concat([upload.data, read.bytes]);
      if (data.byteLength >= MAGIC_BYTES || data.byteLength === ref.size) {
        const type = detectImageType(data);
        if (type !== ref.type) {
          if (upload !== undefined) await app.repo.deleteUpload(photoId);
          throw new FieldvaultError('PHOTO_TYPE_UNSUPPORTED', {
            detail: type === undefined ? 'the bytes are not a JPEG, PNG or WebP image' : `the bytes are ${type}, the record says ${ref.type}`,
          });
        }
      }

      const now = app.now();
      if (data.byteLength < ref.size) {
        if (read.bytes.byteLength > 0) {
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
        }
        request.log.info({ photoId, received: data.byteLength, size: ref.size, aborted: read.aborted }, 'photo upload partial');
        return status(photoId, recordId, ref, data.byteLength, false);
      }

      if (sha256Hex(data) !== ref.sha256) {
        if (upload !== undefined) await app.repo.deleteUpload(photoId);
        throw digestMismatch('SHA-256 differs from the record');
      }
      const photo: PhotoRecord = { photoId, recordId, sha256: ref.sha256, size: ref.size, contentType: ref.type, uploadedBy: auth.username, uploadedAt: now };
      if (!(await app.repo.createPhoto(photo, data))) {
        const winner = await app.repo.getPhoto(photoId);
        if (winner === undefined) throw new FieldvaultError('STORE_CONFLICT', { details: { op: 'photo.create' } });
        assertSamePhoto(winner, recordId, ref);
      }
      if (upload !== undefined) await app.repo.deleteUpload(photoId);
      request.log.info({ photoId, size: ref.size }, 'photo stored');
      return status(photoId, recordId, ref, ref.size, true);
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
