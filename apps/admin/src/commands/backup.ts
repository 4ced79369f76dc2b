import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, fsyncSync, openSync, closeSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Transform, pipeline, type Readable } from 'node:stream';
import type { Command } from 'commander';
import {
  ArchiveReader,
  BACKUP_DATABASES,
  archiveLines,
  backupRecipientId,
  createBackupDecryptStream,
  isEncryptedPem,
  manifestDifferences,
  parseBackupIdentity,
  parseBackupRecipient,
  type ArchiveHeader,
  type ArchiveManifest,
} from '@fieldvault/crypto';
import { FieldvaultError } from '@fieldvault/protocol';
import type { Context, ServerOptions } from '../context.js';
import { CliError } from '../errors.js';
import { bytes, keyValues, table } from '../output.js';
import type { Action } from './action.js';

/*
 * Encrypted backups (docs/operations.md, "Backups and restores"):
 * - `backup` asks the logged-in server to stream a backup encrypted to the admin's X25519 public
 *   key and writes it to a file (a temporary name until the stream ended complete);
 * - `restore` decrypts a backup here with the private key (it never leaves this machine), checks
 *   ALL of it first (authentication of every chunk, the manifest's counts and digests), and only
 *   then streams the plaintext archive over TLS into an empty server, authorised by that server's
 *   one-time setup token; the server checks again what it wrote and answers with its own counts
 *   and digests, which are compared with the manifest here;
 * - `inventory` shows the counts and digests of a live server (to compare source and restore).
 */

/** Longest archive line the CLI accepts: a 64 MiB photo (the server's ceiling) in base64 plus its document. */
const MAX_LINE_BYTES = Math.ceil((64 * 1024 * 1024 * 4) / 3) + 1024 * 1024;

function readPem(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    throw new CliError('ADMIN_FILE_UNREADABLE', file);
  }
}

/** Why a file could not be written, in words (the errno code stays for searching). */
function writeProblem(err: unknown, file: string): string {
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
  const why: Record<string, string> = {
    ENOENT: `the directory ${dirname(file)} does not exist`,
    ENOTDIR: `a part of ${dirname(file)} is not a directory`,
    EACCES: `permission denied in ${dirname(file)}`,
    EPERM: `permission denied in ${dirname(file)}`,
    EROFS: `${dirname(file)} is on a read-only file system`,
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
  };
  return `${file}: ${why[code] ?? 'cannot write there'} (${code})`;
}

/**
 * Creates `partial` (0600, never an existing file) for `out`, before anything is asked of the
 * server: a missing or unwritable directory is a catalogued error naming the path (operator audit
 * s10, item 5: it was an unhandled stream error with a stack trace).
 * @throws ADMIN_FILE_EXISTS, ADMIN_FILE_UNWRITABLE
 */
function createPartial(out: string, partial: string): number {
  try {
    return openSync(partial, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError('ADMIN_FILE_EXISTS', `${partial}, left by an interrupted backup: delete it`);
    throw new CliError('ADMIN_FILE_UNWRITABLE', `--out ${writeProblem(err, out)}`);
  }
}

/**
 * Admin audit s16, F2: the users and devices databases come back as they were at the backup, so
 * every admin decision made after it is silently gone (a blacklisted phone syncs again, an old
 * password works again). The admin must redo them; only they (or the old server's log) know which.
 */
function restoreReminder(backupCreatedAt: string): string {
  return (
    `Every admin action on the backed-up server after ${backupCreatedAt} (the backup's time) is undone by this restore: ` +
    'blacklists, disables, password resets (the old passwords work again), TOTP resets, retirements, role changes. ' +
    'Redo each of them now, from your notes or the old server\'s log (its audit log ends at the backup too).'
  );
}

function manifestTable(m: Pick<ArchiveManifest, 'counts' | 'digests' | 'attachments'>): string {
  return table(
    BACKUP_DATABASES.map((db) => ({ db, count: m.counts[db], digest: m.digests[db] })),
    [
      { header: 'DATABASE', value: (r) => r.db },
      { header: 'DOCUMENTS', value: (r) => String(r.count) },
      { header: 'SHA-256 DIGEST', value: (r) => r.digest, max: 64 },
    ],
  ) + `\n\nattachments (photos): ${m.attachments.count}, ${bytes(m.attachments.bytes)}`;
}

function manifestJson(m: Pick<ArchiveManifest, 'counts' | 'digests' | 'attachments'>): Record<string, unknown> {
  return { counts: m.counts, digests: m.digests, attachments: m.attachments };
}

/**
 * Decrypts and checks a whole backup file without writing anything.
 * @throws BACKUP_TAMPERED, BACKUP_WRONG_IDENTITY, BACKUP_FORMAT_UNSUPPORTED, BACKUP_INVALID
 */
async function verifyFile(file: string, identity: ReturnType<typeof parseBackupIdentity>, onBytes: (n: number) => void): Promise<{ header: ArchiveHeader; manifest: ArchiveManifest }> {
  const reader = new ArchiveReader();
  const source = createReadStream(file);
  source.on('data', (d) => onBytes(d.length));
  const plain = pipeline(source, createBackupDecryptStream(identity), () => undefined);
  for await (const line of archiveLines(plain as AsyncIterable<Uint8Array>, MAX_LINE_BYTES)) {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new FieldvaultError('BACKUP_INVALID', { detail: 'a line is not JSON' });
    }
    reader.accept(value);
  }
  return reader.finish();
}

async function loadIdentity(ctx: Context, file: string): Promise<ReturnType<typeof parseBackupIdentity>> {
  const pem = readPem(file);
  const passphrase = isEncryptedPem(pem) ? await ctx.prompter.ask('Passphrase of the identity key') : undefined;
  return parseBackupIdentity(pem, passphrase);
}

export function registerBackupCommands(program: Command, action: Action): void {
  program
    .command('backup')
    .description('write an encrypted backup of the server (all databases and photos) to a file')
    .requiredOption('--recipient <file>', 'X25519 public key (PEM) the backup is encrypted to')
    .requiredOption('--out <file>', 'the backup file to write (not overwritten)')
    .action(
      action(async (ctx, opts) => {
        const o = opts as { recipient: string; out: string };
        const pem = readPem(o.recipient);
        const recipientId = backupRecipientId(parseBackupRecipient(pem));
        if (existsSync(o.out)) throw new CliError('ADMIN_FILE_EXISTS', o.out);
        const { client, token } = ctx.authed();
        const partial = `${o.out}.partial`;
        const file = createWriteStream(partial, { fd: createPartial(o.out, partial) });
        const hash = createHash('sha256');
        let size = 0;
        const progress = ctx.progress();
        const tee = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            size += chunk.length;
            progress.update({ label: 'backup', done: size, total: size, bytesDone: size, bytesTotal: size });
            cb(null, chunk);
          },
        });
        // A write failing half-way (a full disk) ends the download with a catalogued error.
        file.once('error', (err) => tee.destroy(new CliError('ADMIN_FILE_UNWRITABLE', writeProblem(err, partial))));
        tee.pipe(file);
        try {
          await client.download({ method: 'POST', path: '/v1/admin/backup', body: { recipient: pem }, token }, tee);
          await new Promise<void>((resolve, reject) => {
            if (file.closed) resolve();
            else file.once('close', resolve).once('error', reject);
          });
          const fd = openSync(partial, 'r');
          fsyncSync(fd);
          closeSync(fd);
          if (existsSync(o.out)) throw new CliError('ADMIN_FILE_EXISTS', o.out);
          renameSync(partial, o.out);
        } catch (err) {
          tee.destroy();
          file.destroy();
          rmSync(partial, { force: true });
          throw err;
        } finally {
          progress.stop();
        }
        const sha256 = hash.digest('hex');
        ctx.out.result({ file: o.out, bytes: statSync(o.out).size, sha256, recipient: recipientId }, () =>
          keyValues([
            ['backup written', o.out],
            ['size', bytes(size)],
            ['sha256', sha256],
            ['encrypted to', `key ${recipientId}`],
          ]) + '\nKeep the private key and the server KEK file apart from the backup: a restore needs both.',
        );
      }),
    );

  program
    .command('restore')
    .description('check a backup with the private key, then restore it into a new, empty server (its setup token)')
    .argument('<file>', 'the backup file')
    .requiredOption('--identity <file>', 'X25519 private key (PEM) the backup was encrypted to')
    .option('--verify-only', 'only decrypt and check the backup; restore nothing')
    .option('--server <url>', 'the new server, https://host:port')
    .option('--ca <file>', 'PEM certificate to trust for it (e.g. its data/tls/dev-cert.pem)')
    .option('--pin <sha256>', 'SHA-256 fingerprint of its certificate, as the server prints it at start')
    .action(
      action(async (ctx, file, opts) => {
        const path = file as string;
        const o = opts as ServerOptions & { identity: string; verifyOnly?: boolean };
        if (!existsSync(path)) throw new CliError('ADMIN_FILE_UNREADABLE', path);
        const identity = await loadIdentity(ctx, o.identity);
        const total = statSync(path).size;
        const progress = ctx.progress();
        let done = 0;
        let checked: { header: ArchiveHeader; manifest: ArchiveManifest };
        try {
          checked = await verifyFile(path, identity, (n) => {
            done += n;
            progress.update({ label: 'check', done, total, bytesDone: done, bytesTotal: total });
          });
        } finally {
          progress.stop();
        }
        const { header, manifest } = checked;
        const about: Array<readonly [string, string]> = [
          ['backup', path],
          ['made', `${header.createdAt} by ${header.createdBy ?? '—'} on ${header.serverId}`],
          ['KEK id', `${header.kekId} (the new server needs this KEK file)`],
        ];
        if (o.verifyOnly === true) {
          ctx.out.result({ verified: true, restored: false, backup: { createdAt: header.createdAt, createdBy: header.createdBy, serverId: header.serverId, kekId: header.kekId }, manifest: manifestJson(manifest) }, () =>
            `${keyValues([...about, ['check', 'every chunk authenticated; documents match the manifest']])}\n\n${manifestTable(manifest)}`,
          );
          return;
        }
        if (o.server === undefined) throw new CliError('ADMIN_USAGE', 'restore needs --server URL (with --ca or --pin) of the new server, or --verify-only');
        const trust = ctx.server(o);
        const setupToken = await ctx.prompter.ask('Setup token of the new server');
        const client = ctx.client(trust);
        // Decrypted again on the way out: every chunk is authenticated again, and a failure aborts
        // the upload, which the server undoes.
        const source: Readable = pipeline(createReadStream(path), createBackupDecryptStream(identity), () => undefined);
        let sent = 0;
        source.on('data', (d: Buffer) => {
          sent += d.length;
          progress.update({ label: 'restore', done: sent, total: Math.max(sent, total), bytesDone: sent, bytesTotal: Math.max(sent, total) });
        });
        let result: { verified: true; backup: Record<string, unknown>; restored: ArchiveManifest };
        try {
          result = await client.upload({ path: '/v1/setup/restore', headers: { 'content-type': 'application/x-ndjson', authorization: `Setup ${setupToken}` } }, source);
        } finally {
          progress.stop();
        }
        const differences = manifestDifferences({ ...result.restored, type: 'manifest' }, manifest);
        if (differences.length > 0) throw new FieldvaultError('BACKUP_VERIFY_FAILED', { detail: `the server reports: ${differences.join('; ')}` });
        const reminder = restoreReminder(header.createdAt);
        ctx.out.result(
          { verified: true, restored: true, server: trust.url, backup: result.backup, manifest: manifestJson(result.restored), adminActionsUndoneSince: header.createdAt, reminder },
          () =>
            `${keyValues([...about, ['restored into', trust.url], ['check', 'the server holds exactly the documents, photos and digests of the backup']])}\n\n${manifestTable(result.restored)}\n\n` +
            `Restart the server, then log in with an admin account of the backup: fieldvault-admin login --server URL --ca FILE\n\n${reminder}`,
        );
      }),
    );

  program
    .command('inventory')
    .description('counts and SHA-256 digests of the server\'s databases, as a backup manifest lists them')
    .action(
      action(async (ctx) => {
        const m = await ctx.api<Pick<ArchiveManifest, 'counts' | 'digests' | 'attachments'>>({ method: 'GET', path: '/v1/admin/backup/inventory' });
        ctx.out.result(manifestJson(m), () => manifestTable(m));
      }),
    );
}
