import { createHash, randomBytes } from 'node:crypto';
import type { PhotoType, PhotoUploadStatus } from '@fieldvault/protocol';
import { bearer } from './helpers.js';
import type { push } from './sync-helpers.js';

/*
 * Photo requests and image-like bytes shared by the server's photo tests (photos,
 * photo-security, photo-ref-changed). The server checks magic bytes and the SHA-256 only, so
 * random bytes behind an image signature stand in for a real image.
 */

/** The app under test, as the sync helpers take it. */
export type App = Parameters<typeof push>[0];

/** The signature (magic bytes) the server looks for, per type. */
export const MAGIC: Record<PhotoType, readonly number[]> = {
  'image/jpeg': [0xff, 0xd8, 0xff, 0xe0],
  'image/png': [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  'image/webp': [0x52, 0x49, 0x46, 0x46, 0, 0, 0, 0, 0x57, 0x45, 0x42, 0x50],
};

/** Random bytes that start like an image of `type`, with `marker` after the signature (to look for it on disk). */
export function image(type: PhotoType, size: number, marker = ''): Buffer {
  const bytes = randomBytes(size);
  Buffer.from(MAGIC[type]).copy(bytes);
  Buffer.from(marker).copy(bytes, MAGIC[type].length);
  return bytes;
}

/** PNG-looking bytes (see {@link image}). */
export function png(size: number, marker = ''): Buffer {
  return image('image/png', size, marker);
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `PUT /v1/photos/:id`; without `offset` the query leaves it out (the server's default is 0). */
export function upload(app: App, token: string, photoId: string, recordId: string, body: Buffer, offset?: number) {
  const qs = `record=${recordId}${offset === undefined ? '' : `&offset=${offset}`}`;
  return app.inject({
    method: 'PUT',
    url: `/v1/photos/${photoId}?${qs}`,
    headers: { ...bearer(token), 'content-type': 'application/octet-stream' },
    payload: body,
  });
}

/** `GET /v1/photos/:id/upload`; throws unless the answer is 200. */
export async function uploadStatus(app: App, token: string, photoId: string, recordId: string): Promise<PhotoUploadStatus> {
  const res = await app.inject({ method: 'GET', url: `/v1/photos/${photoId}/upload?record=${recordId}`, headers: bearer(token) });
  if (res.statusCode !== 200) throw new Error(`status failed: ${res.statusCode} ${res.body}`);
  return res.json() as PhotoUploadStatus;
}

/** `GET /v1/photos/:id`. */
export function download(app: App, token: string, photoId: string) {
  return app.inject({ method: 'GET', url: `/v1/photos/${photoId}`, headers: bearer(token) });
}
