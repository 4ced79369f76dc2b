// A tour of the SDK, quoted region by region in docs/sdk.md: every code block of the guide is a
// `#region` of this file, and test/sdk-examples.test.ts checks that and runs the tour against a
// real server process, so the guide cannot drift from the API. Run it yourself (built by
// `npm run build`):
//
//   FIELDVAULT_EXAMPLE_PASSWORD='…' npm run example:sdk -- --dir /tmp/phone \
//     --url https://127.0.0.1:8443 --server-id srv-… --pin AB:CD:… --user amina --photo child.jpg
//
// Without --url it runs the offline part only. The user must exist on the server with that
// password (an admin creates them; the invitation lets them set it).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type { ChildRecord, Device, HttpTransport, Session, SyncSummary } from '@fieldvault/client';
// #region imports
import { join } from 'node:path';
import { createDevice, createHttpTransport, isFieldvaultError } from '@fieldvault/client';
import { SqlCipherStorage } from '@fieldvault/storage-sqlcipher';
// #endregion

export interface TourServer {
  readonly baseUrl: string;
  readonly serverId: string;
  /** The server certificate's SHA-256 fingerprint, as `npm start` prints it. */
  readonly pinSha256: string;
}

export interface TourConfig {
  /** The app's private data directory for fieldvault. */
  readonly directory: string;
  readonly imei: string;
  /** A user the server knows, with their password (online part). */
  readonly username: string;
  readonly password: string;
  /** A newcomer who signs up offline (unverified until a server knows them). */
  readonly newcomer: string;
  readonly newcomerPassword: string;
  readonly server?: TourServer;
  /** JPEG, PNG or WebP bytes to attach (the photo part is skipped without one). */
  readonly photo?: Uint8Array;
  readonly log?: (line: string) => void;
}

export interface TourResult {
  readonly offlineRecord: ChildRecord;
  readonly wrongPasswordCode: string | undefined;
  readonly record?: ChildRecord;
  readonly found?: readonly ChildRecord[];
  readonly photo?: string;
  readonly summary?: SyncSummary;
  readonly pending?: { readonly records: number; readonly photos: number };
}

async function setUp(directory: string, imei: string): Promise<Device> {
  // #region setup
  const device = await createDevice({
    directory,                       // keyring, device key, hidden photo folder
    imei,                            // public identifier of the phone, 15 digits
    storage: new SqlCipherStorage({ directory: join(directory, 'databases') }),
    // logger, now, kdf, passwordPolicy, form, photoMaxBytes, fileSystem, deviceKeyStore: optional
  });
  // #endregion
  return device;
}

async function offline(device: Device, username: string, password: string, newPassword: string): Promise<ChildRecord> {
  // #region offline
  await device.signUpOffline(username, password);                 // an unverified user
  const session = await device.loginOffline(username, password);
  const record = await session.createRecord({ name: 'Child A', age: 7, location: 'Camp 3' });
  await session.logout();                                         // keys dropped from memory
  await device.changePassword(username, password, newPassword);   // re-wraps her keys
  // #endregion
  return record;
}

async function wrongPassword(device: Device, username: string): Promise<string | undefined> {
  let code: string | undefined;
  // #region errors
  try {
    await device.loginOffline(username, 'not her passphrase at all, sorry');
  } catch (err) {
    if (!isFieldvaultError(err)) throw err;
    code = err.code;   // VAULT_WRONG_PASSWORD: ask again; nothing on disk changed
  }
  // #endregion
  return code;
}

async function online(device: Device, server: TourServer, username: string, password: string): Promise<{ session: Session; transport: HttpTransport }> {
  // #region online
  const transport = createHttpTransport({
    baseUrl: server.baseUrl,          // e.g. https://fieldvault.example.org:8443
    serverId: server.serverId,        // as the server prints at start
    tls: { pinSha256: server.pinSha256 },  // and/or { ca: pemString }
  });
  const session = await device.loginOnline(username, password, { transport });
  session.serverLogins;   // [{ serverId, role, expiresAt }]: tokens stay in memory only
  // #endregion
  return { session, transport };
}

async function records(session: Session): Promise<{ record: ChildRecord; found: ChildRecord[]; matching: number }> {
  // #region records
  const r = await session.createRecord({ name: 'Child B', age: 7, sex: 'female', location: 'Camp 3' });
  await session.updateRecord(r.id, { caregiver: 'Aunt' });
  const record = await session.getRecord(r.id);
  await session.listRecords({ limit: 50, offset: 0 });
  const found = await session.searchRecords({ name: 'child', ageMin: 5, ageMax: 10 });
  await session.searchRecords({ flags: { flagged: true }, needsReview: true });
  const matching = await session.countRecords({ name: 'child' }); // on all pages, no record read
  const scratch = await session.createRecord({ name: 'Entered by mistake', age: 3 });
  await session.deleteRecord(scratch.id);                         // a tombstone that syncs
  // #endregion
  return { record, found, matching };
}

async function photos(session: Session, recordId: string, jpegBytes: Uint8Array): Promise<string> {
  // #region photos
  const photo = await session.addPhoto(recordId, jpegBytes);     // Uint8Array or AsyncIterable<Uint8Array>
  const { bytes, type, sha256 } = await session.readPhoto(recordId, photo.photoId); // after full verification
  let streamed = 0;
  for await (const chunk of session.photoStream(recordId, photo.photoId)) streamed += chunk.length; // untrusted until the loop ends
  const mistaken = await session.addPhoto(recordId, jpegBytes);
  await session.removePhoto(recordId, mistaken.photoId);          // a tombstone: the ref stays, the file goes
  // #endregion
  if (streamed !== bytes.length) throw new Error('photo read back inconsistently');
  return `${bytes.length} bytes of ${type}, sha256 ${sha256}`;
}

async function sync(session: Session, transport: HttpTransport, log: (line: string) => void): Promise<{ summary: SyncSummary; pending: { records: number; photos: number } }> {
  // #region sync
  const controller = new AbortController();                       // controller.abort() cancels: SYNC_CANCELLED
  const summary = await session.sync({
    transport,                                                    // a server this session logged into online
    onProgress: (p) => log(`${p.phase} ${p.recordsDone}/${p.recordsTotal} records, ${p.bytesDone}/${p.bytesTotal} bytes`),
    signal: controller.signal,
    retry: { attempts: 5, baseDelayMs: 500 },                     // optional
    servers: ['server-a', 'server-b'],                            // optional: the servers the app still syncs with (retired device)
  });
  // { serverId, pushed, pulled, pulledChanged, failed: [{ id, code, photoId? }], conflicts,
  //   photos: { uploaded, alreadyOnServer, downloaded, failed: [{ photoId, code }] }, deviceStatus, wiped }
  const pending = await session.pendingCounts(transport.serverId); // { records, photos } not yet acknowledged
  await session.knownServers();                 // [{ serverId, loggedIn, role, lastSyncAt, pending }]
  await session.searchServer(transport, { name: 'child', ageMin: 5 });   // { records, nextCursor }
  await session.serverForm(transport);          // the form the server publishes
  // #endregion
  return { summary, pending };
}

/** Runs the whole tour on one phone directory; returns what each part produced. */
export async function sdkTour(config: TourConfig): Promise<TourResult> {
  const log = config.log ?? ((line: string) => console.log(line));
  const device = await setUp(config.directory, config.imei);
  try {
    const offlineRecord = await offline(device, config.newcomer, config.newcomerPassword, `${config.newcomerPassword} again`);
    log(`offline: ${config.newcomer} signed up and registered ${offlineRecord.id}`);
    const wrongPasswordCode = await wrongPassword(device, config.newcomer);
    log(`offline: a wrong password gives ${String(wrongPasswordCode)}`);
    if (config.server === undefined) return { offlineRecord, wrongPasswordCode };

    const { session, transport } = await online(device, config.server, config.username, config.password);
    log(`online: ${config.username} logged into ${config.server.serverId}`);
    const { record, found, matching } = await records(session);
    log(`records: ${record.id} created, local search found ${found.length} (${matching} named "child")`);
    const photo = config.photo === undefined ? undefined : await photos(session, record.id, config.photo);
    if (photo !== undefined) log(`photos: ${photo} stored encrypted and read back`);
    const { summary, pending } = await sync(session, transport, log);
    log(`sync: pushed ${summary.pushed}, pulled ${summary.pulled}, failed ${summary.failed.length}, photos up ${summary.photos.uploaded}; pending ${pending.records}`);
    await session.logout();
    return { offlineRecord, wrongPasswordCode, record, found, ...(photo === undefined ? {} : { photo }), summary, pending };
  } finally {
    await device.logout();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      imei: { type: 'string', default: '490154203237518' },
      url: { type: 'string' },
      'server-id': { type: 'string' },
      pin: { type: 'string' },
      user: { type: 'string', default: 'amina' },
      photo: { type: 'string' },
    },
  });
  const password = process.env['FIELDVAULT_EXAMPLE_PASSWORD'];
  if (values.dir === undefined || password === undefined) {
    console.error('usage: FIELDVAULT_EXAMPLE_PASSWORD=… example:sdk --dir DIR [--url URL --server-id ID --pin SHA256 --user NAME --photo FILE]');
    process.exitCode = 2;
    return;
  }
  const server =
    values.url === undefined ? undefined : { baseUrl: values.url, serverId: values['server-id'] ?? '', pinSha256: values.pin ?? '' };
  await sdkTour({
    directory: values.dir,
    imei: values.imei,
    username: values.user,
    password,
    newcomer: 'noor',
    newcomerPassword: 'quiet river stones under moonlight',
    ...(server === undefined ? {} : { server }),
    ...(values.photo === undefined ? {} : { photo: new Uint8Array(await readFile(values.photo)) }),
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(isFieldvaultError(err) ? `${err.code}: ${err.message}` : err);
    process.exitCode = 1;
  });
}
