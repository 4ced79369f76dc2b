import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { pipeline } from 'node:stream';
import t from 'tap';
import { ArchiveDigest, archiveLines, createBackupDecryptStream, parseBackupIdentity, type ArchiveManifest } from '@fieldvault/crypto';
import { addPhoto, createClock, createRecord } from '@fieldvault/protocol';
import { ADMIN_PASSWORD, cli, cliEnrolling, errorCode, json, startServer, totp, type ServerProcess } from './helpers.js';

// Issue 7 step 7: encrypted backups and verified restores, with real server processes on the
// embedded store. A source server gets users, a phone, records and a photo; its backup is
// restored into a fresh server with the same KEK; tampered, cut, mis-keyed backups and wrong
// targets are refused and leave the target empty.
const dir = t.testdir();
const AMINA_PASSWORD = 'amber lantern over quiet harbour';
const IMEI = '490154203237518';

function keyPair(name: string, passphrase?: string): { pub: string; priv: string } {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const pub = join(dir, `${name}-pub.pem`);
  const priv = join(dir, `${name}-key.pem`);
  writeFileSync(pub, publicKey.export({ format: 'pem', type: 'spki' }));
  writeFileSync(
    priv,
    privateKey.export({ format: 'pem', type: 'pkcs8', ...(passphrase === undefined ? {} : { cipher: 'aes-256-cbc', passphrase }) }),
    { mode: 0o600 },
  );
  return { pub, priv };
}

/** Raw HTTPS call with any body (photo bytes, a plaintext archive) trusting the server's certificate. */
function raw(server: ServerProcess, method: string, path: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${server.url}${path}`, { method, ca: readFileSync(server.certFile, 'utf8'), agent: false, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const me = keyPair('admin');
const other = keyPair('other');
const locked = keyPair('locked', 'a passphrase for the backup key');

const source = await startServer(join(dir, 'source'));
t.teardown(() => source.stop());
const kekFile = join(dir, 'source', 'secrets', 'kek');
const home = join(dir, 'home');
const photoBytes = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(150_000)]);
const photoSha = createHash('sha256').update(photoBytes).digest('hex');
let recoveryCode = '';
let sourceInventory: ArchiveManifest;
let deviceBefore: unknown;
const backupFile = join(dir, 'source.fvbk');

t.before(async () => {
  const init = await cliEnrolling(home, ['--json', 'init', '--server', source.url, '--ca', source.certFile], [source.setupToken, ADMIN_PASSWORD], (s) => [totp(s)]);
  if (init.code !== 0) throw new Error(init.stderr);
  recoveryCode = json<{ recoveryCodes: string[] }>(init).recoveryCodes[0] ?? '';
  const added = json<{ invitation: { token: string } }>(await cli(home, ['--json', 'users', 'add', 'amina', '--role', 'field_worker']));
  await source.call('POST', '/v1/auth/password', { resetToken: added.invitation.token, password: AMINA_PASSWORD });
  const login = await source.deviceLogin('amina', AMINA_PASSWORD, IMEI);
  if (login.status !== 200) throw new Error(JSON.stringify(login.body));
  const token = login.body['token'] as string;
  const clock = createClock({ node: IMEI, now: Date.now });
  const records = ['Amani', 'Baraka', 'Chiku'].map((name) => createRecord({ id: randomUUID(), createdBy: 'amina', device: IMEI, clockTs: clock.now(), fields: { name } }));
  const photoId = randomUUID();
  records[0] = addPhoto(records[0]!, photoId, { sha256: photoSha, size: photoBytes.byteLength, type: 'image/jpeg', by: 'amina', ts: clock.now() });
  const pushed = await source.call('POST', '/v1/sync/push', { records }, token);
  if (pushed.status !== 200) throw new Error(JSON.stringify(pushed.body));
  const up = await raw(source, 'PUT', `/v1/photos/${photoId}?record=${records[0]!.id}`, { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, photoBytes);
  if (up.status >= 300) throw new Error(JSON.stringify(up.body));
  // Key history: a rekey by the admin replaces the device's key record.
  const rekey = await cli(home, ['--json', 'devices', 'rekey', IMEI]);
  if (rekey.code !== 0) throw new Error(rekey.stderr);
  deviceBefore = json(await cli(home, ['--json', 'devices', 'show', IMEI]));
  sourceInventory = json<ArchiveManifest>(await cli(home, ['--json', 'inventory']));
});

t.test('inventory lists the live counts and digests of the source', async (t) => {
  t.match(sourceInventory.counts, { users: 3, devices: 1, records: 3, photos: 1 }, 'meta:setup + admin + amina; one phone; three records; one photo');
  t.ok(sourceInventory.counts.audit > 0);
  t.same(sourceInventory.attachments, { count: 1, bytes: photoBytes.byteLength });
  for (const d of Object.values(sourceInventory.digests)) t.match(d, /^[0-9a-f]{64}$/);
});

t.test('backup writes an encrypted file (0600) and refuses a key that is not X25519 or an existing file', async (t) => {
  const r = await cli(home, ['--json', 'backup', '--recipient', me.pub, '--out', backupFile]);
  t.equal(r.code, 0, r.stderr);
  const out = json<{ bytes: number; sha256: string; recipient: string }>(r);
  const bytes = readFileSync(backupFile);
  t.equal(out.bytes, bytes.byteLength);
  t.equal(out.sha256, createHash('sha256').update(bytes).digest('hex'));
  t.equal(statSync(backupFile).mode & 0o777, 0o600);
  t.equal(bytes.subarray(0, 4).toString('latin1'), 'FVBK');
  for (const plain of ['Amani', 'amina', 'user:admin', '"records"']) t.notOk(bytes.includes(Buffer.from(plain)), `no plaintext "${plain}" in the file`);
  t.notOk(bytes.includes(photoBytes.subarray(4, 64)), 'no photo bytes in clear');

  const again = await cli(home, ['--json', 'backup', '--recipient', me.pub, '--out', backupFile]);
  t.equal(errorCode(again), 'ADMIN_FILE_EXISTS');
  const rsa = join(dir, 'rsa-pub.pem');
  writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }));
  const wrongKind = await cli(home, ['--json', 'backup', '--recipient', rsa, '--out', join(dir, 'x.fvbk')]);
  t.equal(errorCode(wrongKind), 'BACKUP_RECIPIENT_INVALID');

  const audit = json<{ events: Array<{ event: string; actor: string | null; details: Record<string, unknown> }> }>(await cli(home, ['--json', 'audit', '--event', 'backup.created']));
  t.equal(audit.events.length, 1);
  t.equal(audit.events[0]?.actor, 'admin', 'the backup is audited with the acting admin');
  t.equal(audit.events[0]?.details['recipient'], out.recipient);
  t.equal(audit.events[0]?.details['recordsCount'], 3);
});

// Operator audit s10, item 5: a missing --out directory was an unhandled stream error with a stack.
t.test('backup --out into a missing directory, under a file or onto a left-over .partial is refused before anything is sent', async (t) => {
  const missingDir = join(dir, 'no-such-dir');
  const missing = await cli(home, ['backup', '--recipient', me.pub, '--out', join(missingDir, 'fv.fvbk')]);
  t.equal(missing.code, 1);
  t.equal(errorCode(missing), 'ADMIN_FILE_UNWRITABLE');
  t.match(missing.stderr, `--out ${join(missingDir, 'fv.fvbk')}: the directory ${missingDir} does not exist (ENOENT)`);
  t.notMatch(missing.stderr, /at |node:events|Unhandled/, 'no stack trace');
  const underFile = await cli(home, ['--json', 'backup', '--recipient', me.pub, '--out', join(me.pub, 'fv.fvbk')]);
  t.equal(errorCode(underFile), 'ADMIN_FILE_UNWRITABLE');
  t.match(underFile.stderr, '(ENOTDIR)');
  const leftOver = join(dir, 'left.fvbk');
  writeFileSync(`${leftOver}.partial`, 'an interrupted backup');
  const partial = await cli(home, ['--json', 'backup', '--recipient', me.pub, '--out', leftOver]);
  t.equal(errorCode(partial), 'ADMIN_FILE_EXISTS');
  t.match(partial.stderr, `${leftOver}.partial, left by an interrupted backup`);
  t.equal(readFileSync(`${leftOver}.partial`, 'utf8'), 'an interrupted backup', 'not touched');
  const audit = json<{ events: unknown[] }>(await cli(home, ['--json', 'audit', '--event', 'backup.failed']));
  t.equal(audit.events.length, 0, 'the server was never asked');
  t.equal(json<{ events: unknown[] }>(await cli(home, ['--json', 'audit', '--event', 'backup.created'])).events.length, 1, 'only the backup of the test before');
});

t.test('restore --verify-only decrypts and checks the whole file; the manifest matches the source', async (t) => {
  const r = await cli(home, ['--json', 'restore', backupFile, '--identity', me.priv, '--verify-only']);
  t.equal(r.code, 0, r.stderr);
  const out = json<{ verified: boolean; restored: boolean; manifest: ArchiveManifest; backup: { createdBy: string } }>(r);
  t.equal(out.verified, true);
  t.equal(out.restored, false);
  t.equal(out.backup.createdBy, 'admin');
  for (const db of ['users', 'devices', 'records', 'photos'] as const) {
    t.equal(out.manifest.counts[db], sourceInventory.counts[db], `${db} count`);
    t.equal(out.manifest.digests[db], sourceInventory.digests[db], `${db} digest`);
  }
  t.same(out.manifest.attachments, sourceInventory.attachments);
  const human = await cli(home, ['restore', backupFile, '--identity', me.priv, '--verify-only']);
  t.match(human.stdout, /^records\s+3\s+[0-9a-f]{64}$/m);
});

t.test('the wrong identity, a tampered and a truncated backup are refused', async (t) => {
  const wrong = await cli(home, ['--json', 'restore', backupFile, '--identity', other.priv, '--verify-only']);
  t.equal(errorCode(wrong), 'BACKUP_WRONG_IDENTITY');
  const notAKey = await cli(home, ['--json', 'restore', backupFile, '--identity', other.pub, '--verify-only']);
  t.equal(errorCode(notAKey), 'BACKUP_IDENTITY_INVALID');

  const bytes = readFileSync(backupFile);
  const tampered = join(dir, 'tampered.fvbk');
  const flipped = Buffer.from(bytes);
  const mid = Math.floor(bytes.byteLength / 2);
  flipped[mid] = (flipped[mid] ?? 0) ^ 0x01;
  writeFileSync(tampered, flipped);
  t.equal(errorCode(await cli(home, ['--json', 'restore', tampered, '--identity', me.priv, '--verify-only'])), 'BACKUP_TAMPERED', 'one flipped bit');

  const header = Buffer.from(bytes);
  header[40] = (header[40] ?? 0) ^ 0x01; // inside the ephemeral public key of the header
  writeFileSync(tampered, header);
  t.equal(errorCode(await cli(home, ['--json', 'restore', tampered, '--identity', me.priv, '--verify-only'])), 'BACKUP_TAMPERED', 'a changed header');

  const cut = join(dir, 'cut.fvbk');
  writeFileSync(cut, bytes);
  truncateSync(cut, bytes.byteLength - 100);
  t.equal(errorCode(await cli(home, ['--json', 'restore', cut, '--identity', me.priv, '--verify-only'])), 'BACKUP_TAMPERED', 'cut inside the last chunk');
  truncateSync(cut, 113 + 20 + 65_552); // header, FVF header, exactly one whole chunk
  t.equal(errorCode(await cli(home, ['--json', 'restore', cut, '--identity', me.priv, '--verify-only'])), 'BACKUP_TAMPERED', 'cut at a chunk boundary');

  const notBackup = join(dir, 'not.fvbk');
  writeFileSync(notBackup, 'hello, this is not a backup at all');
  t.equal(errorCode(await cli(home, ['--json', 'restore', notBackup, '--identity', me.priv, '--verify-only'])), 'BACKUP_FORMAT_UNSUPPORTED');
});

t.test('an encrypted identity key asks for its passphrase', async (t) => {
  const file = join(dir, 'locked.fvbk');
  t.equal((await cli(home, ['--json', 'backup', '--recipient', locked.pub, '--out', file])).code, 0);
  const ok = await cli(home, ['--json', 'restore', file, '--identity', locked.priv, '--verify-only'], ['a passphrase for the backup key']);
  t.equal(ok.code, 0, ok.stderr);
  const bad = await cli(home, ['--json', 'restore', file, '--identity', locked.priv, '--verify-only'], ['not the passphrase']);
  t.equal(errorCode(bad), 'BACKUP_IDENTITY_INVALID');
});

t.test('restore into a fresh server with the same KEK gives identical data; a second restore is refused', async (t) => {
  const target = await startServer(join(dir, 'target'), { FIELDVAULT_KEK_FILE: kekFile, FIELDVAULT_SERVER_ID: 'srv-restored' });
  t.teardown(() => target.stop());
  const trust = ['--server', target.url, '--ca', target.certFile];

  const wrongToken = await cli(home, ['--json', 'restore', backupFile, '--identity', me.priv, ...trust], ['x'.repeat(43)]);
  t.equal(errorCode(wrongToken), 'AUTH_SETUP_TOKEN_INVALID');

  // A tampered file is refused before anything is sent: the target stays empty (the real restore below works).
  const tampered = Buffer.from(readFileSync(backupFile));
  tampered[tampered.byteLength - 5] = (tampered[tampered.byteLength - 5] ?? 0) ^ 0x80;
  const tamperedFile = join(dir, 'tampered-target.fvbk');
  writeFileSync(tamperedFile, tampered);
  t.equal(errorCode(await cli(home, ['--json', 'restore', tamperedFile, '--identity', me.priv, ...trust], [target.setupToken])), 'BACKUP_TAMPERED');

  const r = await cli(home, ['--json', 'restore', backupFile, '--identity', me.priv, ...trust], [target.setupToken]);
  t.equal(r.code, 0, r.stderr);
  const out = json<{ verified: boolean; restored: boolean; manifest: ArchiveManifest; backup: { createdAt: string }; adminActionsUndoneSince: string; reminder: string }>(r);
  t.equal(out.verified, true);
  t.equal(out.restored, true);
  // Admin audit s16, F2: the restore says which admin actions it undid (those after the backup's time).
  t.match(out.backup.createdAt, /^\d{4}-\d\d-\d\dT/);
  t.equal(out.adminActionsUndoneSince, out.backup.createdAt);
  t.match(out.reminder, `Every admin action on the backed-up server after ${out.backup.createdAt} (the backup's time) is undone by this restore`);
  for (const db of ['users', 'devices', 'records', 'photos'] as const) {
    t.equal(out.manifest.counts[db], sourceInventory.counts[db], `${db} count`);
    t.equal(out.manifest.digests[db], sourceInventory.digests[db], `${db} digest (photo bytes included)`);
  }

  const again = await cli(home, ['--json', 'restore', backupFile, '--identity', me.priv, ...trust], [target.setupToken]);
  t.equal(errorCode(again), 'BACKUP_SERVER_NOT_EMPTY');

  // The restored admin logs in with the same password and second factor (sealed under the KEK).
  const home2 = join(dir, 'home2');
  // (A recovery code, not a TOTP code: the source's init used this time step, and replay
  // protection is restored with the account.)
  const login = await cli(home2, ['--json', 'login', ...trust, '--user', 'admin'], [ADMIN_PASSWORD, recoveryCode]);
  t.equal(login.code, 0, login.stderr);
  t.same(json(await cli(home2, ['--json', 'devices', 'show', IMEI])), deviceBefore, 'device and key history identical');
  const inv = json<ArchiveManifest>(await cli(home2, ['--json', 'inventory']));
  // (users changed since: the login used a recovery code, which the account no longer holds.)
  for (const db of ['devices', 'records', 'photos'] as const) t.equal(inv.digests[db], sourceInventory.digests[db], `${db} digest on the live restored server`);
  t.not(inv.digests.users, sourceInventory.digests.users, 'the digest sees a changed account (so equal digests above are meaningful)');
  const restoredAudit = json<{ events: Array<{ event: string; details: Record<string, unknown> }> }>(await cli(home2, ['--json', 'audit', '--event', 'backup.restored']));
  t.equal(restoredAudit.events.length, 1, 'the restore is in the audit log');
  t.equal(restoredAudit.events[0]?.details['backupCreatedBy'], 'admin');
  t.equal(restoredAudit.events[0]?.details['sourceServerId'], 'srv-admin-cli');
  const users = json<{ users: Array<{ username: string }> }>(await cli(home2, ['--json', 'users', 'list']));
  t.same(users.users.map((u) => u.username).sort(), ['admin', 'amina']);
});

/** The plaintext archive of the backup file, decrypted in the test. */
async function plaintextLines(): Promise<string[]> {
  const identity = parseBackupIdentity(readFileSync(me.priv, 'utf8'));
  const plain = pipeline(createReadStream(backupFile), createBackupDecryptStream(identity), () => undefined);
  const lines: string[] = [];
  for await (const line of archiveLines(plain as AsyncIterable<Uint8Array>, 64 * 1024 * 1024)) lines.push(line);
  return lines;
}

t.test('the server refuses a KEK mismatch, an inconsistent or cut archive, and undoes partial writes', async (t) => {
  const other = await startServer(join(dir, 'other-kek'), { FIELDVAULT_SERVER_ID: 'srv-other' });
  t.teardown(() => other.stop());
  const auth = { authorization: `Setup ${other.setupToken}`, 'content-type': 'application/x-ndjson' };
  const lines = await plaintextLines();
  const body = (ls: readonly string[]): Buffer => Buffer.from(ls.map((l) => `${l}\n`).join(''));

  const mismatch = await raw(other, 'POST', '/v1/setup/restore', auth, body(lines));
  t.equal(mismatch.body['code'], 'BACKUP_KEK_MISMATCH', 'a server with another KEK could not open the sealed keys');

  // Same KEK id as this server, so the documents are written; then the manifest does not match.
  const kekId = (await import('@fieldvault/crypto')).kekId(new Uint8Array(Buffer.from(readFileSync(join(dir, 'other-kek', 'secrets', 'kek'), 'utf8').trim(), 'base64')));
  const header = { ...(JSON.parse(lines[0]!) as Record<string, unknown>), kekId };
  const manifest = JSON.parse(lines.at(-1)!) as ArchiveManifest;
  const forged = { ...manifest, digests: { ...manifest.digests, records: '0'.repeat(64) } };
  const inconsistent = await raw(other, 'POST', '/v1/setup/restore', auth, body([JSON.stringify(header), ...lines.slice(1, -1), JSON.stringify(forged)]));
  t.equal(inconsistent.status, 400);
  t.equal(inconsistent.body['code'], 'BACKUP_INVALID', 'documents that do not match the manifest');

  const cut = await raw(other, 'POST', '/v1/setup/restore', auth, body([JSON.stringify(header), ...lines.slice(1, -1)]));
  t.equal(cut.body['code'], 'BACKUP_INVALID', 'no manifest: cut short');

  const digest = new ArchiveDigest();
  const docs = lines.slice(1, -1).map((l) => JSON.parse(l) as { db: 'users'; doc: Record<string, unknown> });
  for (const d of docs) digest.add(d.db, d.doc);
  const reserved = await raw(other, 'POST', '/v1/setup/restore', auth, body([JSON.stringify(header), JSON.stringify({ db: 'users', doc: { _id: '_design/evil', views: {} } })]));
  t.equal(reserved.body['code'], 'BACKUP_INVALID', 'design documents are not restored');

  // Nothing stayed behind: a consistent archive (same KEK id) is accepted now, into the still empty server.
  const ok = await raw(other, 'POST', '/v1/setup/restore', auth, body([JSON.stringify(header), ...lines.slice(1)]));
  t.equal(ok.status, 200, JSON.stringify(ok.body));
  t.same((ok.body['restored'] as ArchiveManifest).counts, digest.manifest().counts, 'exactly the archive, nothing from the refused attempts');
  const admin = await other.call('POST', '/v1/setup/admin', { setupToken: other.setupToken, username: 'late', password: ADMIN_PASSWORD });
  t.equal(admin.body['code'], 'AUTH_SETUP_COMPLETED', 'after a restore the setup token creates no admin');
});

// Operator audit s10, item 1: BACKUP_KEK_MISMATCH says "start this server with the KEK file of the
// backed-up server, then restore again": a fresh target that made its own KEK must take it.
t.test('a restore target started without the KEK: after BACKUP_KEK_MISMATCH it restarts with the KEK file and the restore works', async (t) => {
  const drillDir = join(dir, 'drill');
  const first = await startServer(drillDir, { FIELDVAULT_SERVER_ID: 'srv-drill' });
  const trustOf = (s: ServerProcess): string[] => ['--server', s.url, '--ca', s.certFile];
  const refused = await cli(home, ['--json', 'restore', backupFile, '--identity', me.priv, ...trustOf(first)], [first.setupToken]);
  t.equal(errorCode(refused), 'BACKUP_KEK_MISMATCH');
  t.match(refused.stderr, 'Start this server with the KEK file of the backed-up server');
  await first.stop();

  const again = await startServer(drillDir, { FIELDVAULT_SERVER_ID: 'srv-drill', FIELDVAULT_KEK_FILE: kekFile });
  t.teardown(() => again.stop());
  const made = json<{ backup: { createdAt: string } }>(await cli(home, ['--json', 'restore', backupFile, '--identity', me.priv, '--verify-only'])).backup.createdAt;
  const restored = await cli(home, ['restore', backupFile, '--identity', me.priv, ...trustOf(again)], [again.setupToken]);
  t.equal(restored.code, 0, restored.stderr);
  t.match(restored.stdout, /^check\s+the server holds exactly the documents, photos and digests of the backup$/m);
  // Admin audit s16, F2: the output ends with what the restore undid and what to redo.
  const last = restored.stdout.trim().split('\n').at(-1) ?? '';
  t.match(last, `Every admin action on the backed-up server after ${made} (the backup's time) is undone by this restore: `);
  t.match(last, 'blacklists, disables, password resets (the old passwords work again), TOTP resets, retirements, role changes. Redo each of them now');
});

t.test("a server restored under the source's own id refuses the source's pull checkpoints (another copy of the store, another change sequence); a pull from the start gives everything", async (t) => {
  // A phone pulled from the source, so it holds a checkpoint into the source store's sequence.
  const onSource = await source.deviceLogin('amina', AMINA_PASSWORD, '356938035644005');
  t.equal(onSource.status, 200);
  const sourceToken = onSource.body['token'] as string;
  const page = await source.call('GET', '/v1/sync/pull?limit=2', undefined, sourceToken);
  t.equal(page.status, 200);
  const checkpoint = page.body['checkpoint'] as string;
  t.equal((await source.call('GET', `/v1/sync/pull?limit=2&since=${encodeURIComponent(checkpoint)}`, undefined, sourceToken)).status, 200, 'the source takes its own checkpoint (its generation is stable)');

  // Restored with the same KEK, server id and database names: only the store is another copy.
  const target = await startServer(join(dir, 'same-id'), { FIELDVAULT_KEK_FILE: kekFile });
  t.teardown(() => target.stop());
  const r = await cli(join(dir, 'home-same-id'), ['--json', 'restore', backupFile, '--identity', me.priv, '--server', target.url, '--ca', target.certFile], [target.setupToken]);
  t.equal(r.code, 0, r.stderr);
  const onTarget = await target.deviceLogin('amina', AMINA_PASSWORD, '356938035644013');
  t.equal(onTarget.status, 200);
  const token = onTarget.body['token'] as string;
  const stale = await target.call('GET', `/v1/sync/pull?limit=2&since=${encodeURIComponent(checkpoint)}`, undefined, token);
  t.same([stale.status, stale.body['code']], [400, 'SYNC_CHECKPOINT_INVALID'], "the source's checkpoint is refused");
  const fresh = await target.call('GET', '/v1/sync/pull?limit=100', undefined, token);
  t.equal(fresh.status, 200);
  t.equal((fresh.body['records'] as unknown[]).length, 3, 'a pull from the start gives every restored record');
  const next = await target.call('GET', `/v1/sync/pull?limit=100&since=${encodeURIComponent(fresh.body['checkpoint'] as string)}`, undefined, token);
  t.same([next.status, (next.body['records'] as unknown[] | undefined)?.length], [200, 0], "and the restored server's own checkpoints work");
});
