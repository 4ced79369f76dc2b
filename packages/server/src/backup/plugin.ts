import { createHash, timingSafeEqual } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';
import {
  ArchiveDigest,
  ArchiveReader,
  BACKUP_ARCHIVE_FORMAT,
  BACKUP_ARCHIVE_VERSION,
  BACKUP_DATABASES,
  archiveLine,
  archiveLines,
  backupRecipientId,
  createBackupEncryptStream,
  kekId,
  manifestDifferences,
  parseBackupRecipient,
  type ArchiveDoc,
  type ArchiveHeader,
  type ArchiveManifest,
  type BackupDatabase,
} from '@fieldvault/crypto';
import { CouchBackupStore } from '../couch/backup-store.js';
import { credentialsFor } from '../http/authorization.js';
import { responses } from '../http/schemas.js';
import { parseStrictJson } from '../http/strict-json.js';
import type { AuthContext } from '../sessions/plugin.js';

/*
 * Encrypted backups and restores (docs/operations.md, "Backups"):
 *
 * - `POST /v1/admin/backup {recipient}` (admin): the server reads every backed-up database and
 *   streams the archive (backup-archive.ts in @fieldvault/crypto) through the backup encryption
 *   to the recipient's X25519 public key, so plaintext never leaves the server and nothing is
 *   held whole in memory. Device keys and TOTP secrets stay sealed under the server KEK inside.
 * - `GET /v1/admin/backup/inventory` (admin): counts and digests of the live databases, computed
 *   as in a backup manifest (to compare a source and a restored server).
 * - `POST /v1/setup/restore` (the one-time setup token of a server that has no admin yet): the
 *   admin CLI decrypts a backup on the admin's machine, checks it completely, then streams the
 *   plaintext archive here over TLS. The server must be empty and hold the same KEK; it writes the
 *   documents, recomputes every count and digest from the store and compares them with the
 *   manifest. On any failure everything written is deleted again, so the server stays empty.
 *
 * Why the setup token and not an admin session for restore: a server that can take a restore has
 * no users at all (the users come from the backup, with their passwords and TOTP); creating an
 * admin first would make it non-empty and put a user in it that the backup does not know. The
 * setup token proves the same thing `init` relies on: access to the new server's data directory.
 */

const RecipientBodySchema = Type.Object(
  { recipient: Type.String({ minLength: 1, maxLength: 4096, description: 'X25519 public key, PEM (SPKI)' }) },
  { additionalProperties: false },
);

const countsSchema = Type.Object(Object.fromEntries(BACKUP_DATABASES.map((db) => [db, Type.Integer({ minimum: 0 })])), { additionalProperties: false });
const digestsSchema = Type.Object(Object.fromEntries(BACKUP_DATABASES.map((db) => [db, Type.String()])), { additionalProperties: false });

export const ManifestSchema = Type.Object(
  {
    counts: countsSchema,
    digests: digestsSchema,
    attachments: Type.Object({ count: Type.Integer({ minimum: 0 }), bytes: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);
type ManifestView = Static<typeof ManifestSchema>;

export const RestoreResultSchema = Type.Object(
  {
    verified: Type.Literal(true),
    backup: Type.Object(
      { createdAt: Type.String(), createdBy: Type.Union([Type.String(), Type.Null()]), serverId: Type.String(), kekId: Type.String() },
      { additionalProperties: false },
    ),
    restored: ManifestSchema,
  },
  { additionalProperties: false },
);

/** Documents per `_bulk_docs` during a restore, and the most bytes of JSON per batch. */
const RESTORE_BATCH_DOCS = 200;
const RESTORE_BATCH_BYTES = 8 * 1024 * 1024;
const SETUP_TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

function view(m: ArchiveManifest): ManifestView {
  return { counts: { ...m.counts }, digests: { ...m.digests }, attachments: { ...m.attachments } };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Flattened counts for audit details (numbers only). */
function countDetails(m: ArchiveManifest): Record<string, number> {
  return { ...Object.fromEntries(BACKUP_DATABASES.map((db) => [`${db}Count`, m.counts[db]])), attachments: m.attachments.count, attachmentBytes: m.attachments.bytes };
}

export const backupPlugin: FastifyPluginAsync = async (app) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const config = app.fieldvaultConfig;
  const store = new CouchBackupStore({ url: config.couch.url, dbPrefix: config.couch.dbPrefix, endpoint: app.storeEndpoint });
  const serverKekId = kekId(config.kek);
  // A photo line is its base64 (4/3 of the bytes) plus the document: anything longer is not ours.
  const maxLineBytes = Math.ceil((config.photos.maxBytes * 4) / 3) + 1024 * 1024;

  // Scoped to this plugin: the restore route reads the archive as a stream, line by line.
  app.addContentTypeParser('application/x-ndjson', (_request, payload, done) => {
    done(null, payload);
  });

  async function inventory(): Promise<ArchiveManifest> {
    const digests = new ArchiveDigest();
    for (const db of BACKUP_DATABASES) for await (const doc of store.documents(db)) digests.add(db, doc);
    return digests.manifest();
  }

  const admin = { onRequest: app.requireAuth(['admin']) };

  r.post(
    '/v1/admin/backup',
    {
      ...admin,
      schema: {
        body: RecipientBodySchema,
        response: responses({ 200: Type.Unsafe<Readable>({ description: 'the encrypted backup, application/octet-stream' }) }),
      },
    },
    async (request, reply) => {
      const recipient = parseBackupRecipient(request.body.recipient);
      const recipientId = backupRecipientId(recipient);
      const header: ArchiveHeader = {
        type: BACKUP_ARCHIVE_FORMAT,
        version: BACKUP_ARCHIVE_VERSION,
        createdAt: new Date(app.now()).toISOString(),
        createdBy: (request.auth as AuthContext).username,
        serverId: config.serverId,
        kekId: serverKekId,
        databases: BACKUP_DATABASES,
      };
      const digests = new ArchiveDigest();
      let manifest: ArchiveManifest | undefined;
      async function* lines(): AsyncGenerator<Buffer> {
        yield Buffer.from(archiveLine(header));
        for (const db of BACKUP_DATABASES) {
          for await (const doc of store.documents(db)) {
            digests.add(db, doc);
            yield Buffer.from(archiveLine({ db, doc }));
          }
        }
        manifest = digests.manifest();
        yield Buffer.from(archiveLine(manifest));
      }
      let bytes = 0;
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          bytes += chunk.byteLength;
          callback(null, chunk);
        },
      });
      pipeline(Readable.from(lines()), createBackupEncryptStream(recipient), counted, (err) => {
        const done = err === undefined || err === null;
        if (!done) request.log.warn({ code: isFieldvaultError(err) ? err.code : 'STREAM_ERROR' }, 'backup stream failed');
        app
          .audit(request, {
            event: done ? 'backup.created' : 'backup.failed',
            details: { recipient: recipientId, bytes, ...(done && manifest !== undefined ? countDetails(manifest) : {}) },
          })
          .catch((auditErr: unknown) => request.log.error({ code: (auditErr as { code?: unknown }).code }, 'audit of a backup failed'));
      });
      // An error after the first byte can only cut the response short: the CLI keeps the file
      // only when the stream ended complete, and restore refuses a cut file anyway.
      return reply
        .header('content-type', 'application/octet-stream')
        .header('content-disposition', 'attachment; filename="fieldvault-backup.fvbk"')
        .header('x-fieldvault-backup-recipient', recipientId)
        .send(counted);
    },
  );

  r.get('/v1/admin/backup/inventory', { ...admin, schema: { response: responses({ 200: ManifestSchema }) } }, async () => view(await inventory()));

  r.post(
    '/v1/setup/restore',
    {
      config: { rateLimit: { max: config.rateLimit.authMax, timeWindow: config.rateLimit.timeWindowMs } },
      schema: { response: responses({ 200: RestoreResultSchema }) },
    },
    async (request) => {
      const credentials = credentialsFor(request.headers.authorization, 'Setup');
      const presented = credentials !== undefined && SETUP_TOKEN.test(credentials) ? credentials : undefined;
      const expected = config.setupToken;
      // Compared as digests in constant time, like the first-admin setup route.
      if (presented === undefined || expected === undefined || !timingSafeEqual(digest(presented), digest(expected))) {
        throw new FieldvaultError('AUTH_SETUP_TOKEN_INVALID');
      }
      const body = request.body;
      if (!(body instanceof Readable)) {
        throw new FieldvaultError('INPUT_UNSUPPORTED_MEDIA_TYPE', { detail: 'send the archive as application/x-ndjson (fieldvault-admin restore does)' });
      }
      // One at a time with the first-admin setup too: each would find the other half done.
      const gate = app.setupGate;
      if (!gate.enter('restore')) {
        throw gate.busy === 'restore' ? new FieldvaultError('BACKUP_IN_PROGRESS') : new FieldvaultError('BACKUP_SERVER_NOT_EMPTY', { detail: 'the first admin is being created' });
      }
      let wrote = false;
      try {
        if (await app.repo.isSetupComplete()) throw new FieldvaultError('BACKUP_SERVER_NOT_EMPTY', { detail: 'an admin exists' });
        // A setup claim without its admin (a crash during setup) is no content: dropped, so the
        // server can still be restored (the archive brings its own claim and admins).
        const staleClaim = await app.repo.getSetupClaim();
        if (staleClaim !== undefined && (await app.repo.releaseSetup(staleClaim.rev))) {
          request.log.warn('restore: dropped a setup claim left without its admin (a crash during an earlier setup)');
        }
        const used = await store.nonEmpty(BACKUP_DATABASES);
        if (used.length > 0) throw new FieldvaultError('BACKUP_SERVER_NOT_EMPTY', { detail: `documents in ${used.join(', ')}` });

        const reader = new ArchiveReader();
        let batch: ArchiveDoc[] = [];
        let batchDb: BackupDatabase | undefined;
        let batchBytes = 0;
        const flush = async (): Promise<void> => {
          if (batchDb === undefined || batch.length === 0) return;
          wrote = true;
          await store.write(batchDb, batch);
          batch = [];
          batchBytes = 0;
        };
        for await (const line of archiveLines(body, maxLineBytes)) {
          let value: unknown;
          try {
            value = parseStrictJson(line);
          } catch {
            throw new FieldvaultError('BACKUP_INVALID', { detail: 'a line is not strict JSON' });
          }
          const entry = reader.accept(value);
          if (entry.kind === 'header') {
            // Checked before anything is written: sealed keys under another KEK would be dead data.
            if (entry.header.kekId !== serverKekId) {
              throw new FieldvaultError('BACKUP_KEK_MISMATCH', { detail: `the backup's KEK is ${entry.header.kekId}, this server's KEK is ${serverKekId}` });
            }
          } else if (entry.kind === 'doc') {
            if (entry.db !== batchDb) await flush();
            batchDb = entry.db;
            batch.push(entry.doc);
            batchBytes += line.length;
            if (batch.length >= RESTORE_BATCH_DOCS || batchBytes >= RESTORE_BATCH_BYTES) await flush();
          }
        }
        await flush();
        const { header, manifest } = reader.finish();
        const restored = await inventory();
        const differences = manifestDifferences(restored, manifest);
        if (differences.length > 0) throw new FieldvaultError('BACKUP_VERIFY_FAILED', { detail: differences.join('; ') });
        // Written after the verification, so the restored audit log matches the backup exactly.
        await app.audit(request, {
          event: 'backup.restored',
          actor: null,
          details: { via: 'setup-token', sourceServerId: header.serverId, backupCreatedAt: header.createdAt, backupCreatedBy: header.createdBy, ...countDetails(restored) },
        });
        request.log.info({ counts: restored.counts }, 'backup restored and verified');
        return {
          verified: true as const,
          backup: { createdAt: header.createdAt, createdBy: header.createdBy, serverId: header.serverId, kekId: header.kekId },
          restored: view(restored),
        };
      } catch (err) {
        if (wrote) {
          // Back to empty: a failed restore must leave nothing behind (and allow another try).
          await store.wipe(BACKUP_DATABASES).catch((wipeErr: unknown) =>
            request.log.error({ code: (wipeErr as { code?: unknown }).code }, 'could not undo a failed restore; start again on an empty store'),
          );
        }
        request.log.warn({ code: isFieldvaultError(err) ? err.code : 'INTERNAL_ERROR' }, 'restore refused');
        throw err;
      } finally {
        gate.leave();
        // Whatever is left of the upload is read and dropped, so the answer reaches the client.
        if (!body.readableEnded) body.resume();
      }
    },
  );
};
