import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import {
  ArchiveDigest,
  ArchiveReader,
  BACKUP_HEADER_LENGTH,
  FILE_CHUNK_SIZE,
  archiveLine,
  archiveLines,
  backupRecipientId,
  createBackupDecryptStream,
  createBackupEncryptStream,
  documentDigest,
  parseBackupIdentity,
  parseBackupRecipient,
} from '../src/index.js';

// Issue 7 step 7: the encrypted backup format (X25519-wrapped data key + the chunked AEAD file
// format) and the plaintext archive with its manifest digests.

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

async function encrypt(plain: Buffer, recipient = pair.publicKey): Promise<Buffer> {
  const enc = createBackupEncryptStream(recipient);
  const out = collect(enc);
  const [result] = await Promise.all([out, pipeline(Readable.from([plain.subarray(0, 1000), plain.subarray(1000)]), enc)]);
  return result;
}

async function decrypt(file: Buffer, identity = pair.privateKey): Promise<Buffer> {
  const dec = createBackupDecryptStream(identity);
  const out = collect(dec);
  // Odd slices: the header and chunks arrive split anywhere.
  const slices: Buffer[] = [];
  for (let i = 0; i < file.byteLength; i += 7_777) slices.push(file.subarray(i, i + 7_777));
  const [result] = await Promise.all([out, pipeline(Readable.from(slices), dec)]);
  return result;
}

const pair = generateKeyPairSync('x25519');
const plain = randomBytes(3 * FILE_CHUNK_SIZE + 123);

t.test('a backup round-trips with the recipient key, in any slicing', async (t) => {
  const file = await encrypt(plain);
  t.equal(file.subarray(0, 4).toString('latin1'), 'FVBK');
  t.equal(file.byteLength, BACKUP_HEADER_LENGTH + 20 + plain.byteLength + 4 * 16, 'header + FVF header + data + one tag per chunk');
  t.same(await decrypt(file), plain);
  t.same(await decrypt(await encrypt(Buffer.alloc(0))), Buffer.alloc(0), 'an empty archive');
  const again = await encrypt(plain);
  t.not(again.subarray(0, BACKUP_HEADER_LENGTH).toString('hex'), file.subarray(0, BACKUP_HEADER_LENGTH).toString('hex'), 'fresh ephemeral and data keys each time');
});

t.test('another identity, tampering, truncation and appended data are refused', async (t) => {
  const file = await encrypt(plain);
  const other = generateKeyPairSync('x25519');
  await t.rejects(decrypt(file, other.privateKey), { code: 'BACKUP_WRONG_IDENTITY' });
  for (const at of [10, 30, 60, 100, BACKUP_HEADER_LENGTH + 5, BACKUP_HEADER_LENGTH + 20 + 5, file.byteLength - 1]) {
    const bad = Buffer.from(file);
    bad[at] = (bad[at] ?? 0) ^ 0x40;
    await t.rejects(decrypt(bad), { code: at < 4 ? 'BACKUP_FORMAT_UNSUPPORTED' : at < 21 ? 'BACKUP_WRONG_IDENTITY' : 'BACKUP_TAMPERED' }, `byte ${at} changed`);
  }
  for (const length of [0, 50, BACKUP_HEADER_LENGTH, BACKUP_HEADER_LENGTH + 20 + FILE_CHUNK_SIZE + 16, file.byteLength - 1]) {
    await t.rejects(decrypt(file.subarray(0, length)), { code: 'BACKUP_TAMPERED' }, `cut to ${length} bytes`);
  }
  await t.rejects(decrypt(Buffer.concat([file, Buffer.from([0])])), { code: 'BACKUP_TAMPERED' }, 'a byte appended');
});

t.test('keys: only X25519 PEM is accepted, private keys can be passphrase-protected', async (t) => {
  const pub = pair.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  t.equal(backupRecipientId(parseBackupRecipient(pub)), backupRecipientId(pair.publicKey));
  t.match(backupRecipientId(pair.publicKey), /^[0-9a-f]{32}$/);
  const ed = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString();
  t.throws(() => parseBackupRecipient(ed), { code: 'BACKUP_RECIPIENT_INVALID' });
  t.throws(() => parseBackupRecipient('garbage'), { code: 'BACKUP_RECIPIENT_INVALID' });
  const priv = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  t.throws(() => parseBackupRecipient(priv), { code: 'BACKUP_RECIPIENT_INVALID' }, 'a private key is never sent as a recipient');
  const locked = pair.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pass phrase' }).toString();
  t.equal(parseBackupIdentity(locked, 'pass phrase').asymmetricKeyType, 'x25519');
  t.throws(() => parseBackupIdentity(locked, 'wrong'), { code: 'BACKUP_IDENTITY_INVALID' });
  t.throws(() => parseBackupIdentity(pub), { code: 'BACKUP_IDENTITY_INVALID' });
});

t.test('document digests ignore _rev and attachment metadata but not content', async (t) => {
  const data = Buffer.from('photo bytes').toString('base64');
  const a = documentDigest({ _id: 'p', b: 1, a: [1, 2], _attachments: { photo: { content_type: 'image/jpeg', data } } });
  const b = documentDigest({ a: [1, 2], _rev: '3-x', _id: 'p', b: 1, _attachments: { photo: { content_type: 'image/jpeg', data, digest: 'md5-x', revpos: 2 } } });
  t.equal(a.digest, b.digest, 'key order, _rev and store metadata do not matter');
  t.same([a.attachments, a.bytes], [1, 11]);
  const c = documentDigest({ _id: 'p', b: 1, a: [1, 2], _attachments: { photo: { content_type: 'image/jpeg', data: Buffer.from('photo bytez').toString('base64') } } });
  t.not(c.digest, a.digest, 'one attachment byte changes the digest');
  t.not(documentDigest({ _id: 'p', b: 2, a: [1, 2] }).digest, documentDigest({ _id: 'p', b: 1, a: [1, 2] }).digest);
});

t.test('the archive reader checks order, documents and the manifest', async (t) => {
  const header = { type: 'fieldvault-backup', version: 1, createdAt: '2026-01-01T00:00:00.000Z', createdBy: 'admin', serverId: 'srv-1', kekId: 'a'.repeat(32), databases: ['users', 'records'] };
  const docs = [
    { db: 'users', doc: { _id: 'user:a', role: 'admin' } },
    { db: 'records', doc: { _id: 'rec:1', record: { name: 'x' } } },
  ] as const;
  const digest = new ArchiveDigest(['users', 'records']);
  for (const d of docs) digest.add(d.db, d.doc);
  const manifest = digest.manifest();
  const text = [header, ...docs, manifest].map(archiveLine).join('');
  const lines: string[] = [];
  for await (const l of archiveLines(Readable.from([Buffer.from(text.slice(0, 10)), Buffer.from(text.slice(10))]), 1024)) lines.push(l);
  const reader = new ArchiveReader();
  for (const l of lines) reader.accept(JSON.parse(l));
  t.same(reader.finish().manifest, JSON.parse(JSON.stringify(manifest)));

  const fresh = (): ArchiveReader => {
    const r = new ArchiveReader();
    r.accept(header);
    return r;
  };
  t.throws(() => new ArchiveReader().accept(docs[0]), { code: 'BACKUP_FORMAT_UNSUPPORTED' }, 'no header');
  t.throws(() => fresh().accept({ db: 'photos', doc: { _id: 'x' } }), { code: 'BACKUP_INVALID' }, 'a database not in the backup');
  t.throws(() => fresh().accept({ db: 'users', doc: { _id: '_design/x' } }), { code: 'BACKUP_INVALID' }, 'a design document');
  t.throws(() => fresh().accept({ db: 'users', doc: { _id: 'u', _rev: '1-a' } }), { code: 'BACKUP_INVALID' }, 'a revision');
  const r = fresh();
  r.accept(docs[0]);
  r.accept(manifest);
  t.throws(() => r.finish(), { code: 'BACKUP_INVALID' }, 'a missing document does not match the manifest');
  t.throws(() => fresh().finish(), { code: 'BACKUP_INVALID' }, 'no manifest');
  await t.rejects(
    (async () => {
      for await (const _ of archiveLines(Readable.from([Buffer.from('x'.repeat(2000))]), 1024)) void _;
    })(),
    { code: 'BACKUP_INVALID' },
    'an overlong line',
  );
});
