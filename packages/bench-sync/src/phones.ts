// The phone side of the bench: real SDK devices on SQLCipher files, realistic child records and
// JPEG photos of a phone camera's size.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createDevice, type Device, type Session, type SyncProgress, type Transport } from '@fieldvault/client';
import { concatBytes, kdfBounds } from '@fieldvault/crypto';
import type { ChildRecord } from '@fieldvault/protocol';
import { SqlCipherStorage } from '@fieldvault/storage-sqlcipher';

export const PASSWORD = 'amber lantern over quiet harbour';
export const USERNAME = 'amina';

/**
 * The cheapest Argon2id cost crypto accepts: key wrapping at login is not what this bench
 * measures (the storage bench does), and the phones are many.
 */
const FAST_KDF = { m: kdfBounds.m.min, t: kdfBounds.t.min, p: 1 } as const;

let imeiCounter = 0;
/** A distinct 15-digit IMEI per phone of this run. */
export function nextImei(): string {
  imeiCounter += 1;
  return `35${String(process.pid % 1e6).padStart(6, '0')}${String(imeiCounter).padStart(7, '0')}`;
}

export interface Phone {
  readonly dir: string;
  readonly imei: string;
  readonly device: Device;
}

/** A new phone on `dir` (SQLCipher 4 databases under `dir/databases`, photos in the SDK's folder). */
export async function newPhone(dir: string, imei = nextImei()): Promise<Phone> {
  const storage = new SqlCipherStorage({ directory: join(dir, 'databases') });
  const device = await createDevice({ directory: dir, imei, storage, kdf: FAST_KDF, photoMaxBytes: 64 * 1024 * 1024 });
  return { dir, imei, device };
}

/** Logs the bench user in online to the server behind `transport` (the key is issued or adopted there). */
export function loginTo(phone: Phone, transport: Transport): Promise<Session> {
  return phone.device.loginOnline(USERNAME, PASSWORD, { transport });
}

const NAMES = ['Amina', 'Kofi', 'Grace', 'Joseph', 'Fatuma', 'Peter', 'Esther', 'Moses', 'Ruth', 'Samuel', 'Achieng', 'Okello'];
const PLACES = ['Gulu', 'Kitgum', 'Lira', 'Arua', 'Mbale', 'Soroti', 'Moroto', 'Hoima'];
const CONCERNS = ['separated', 'unaccompanied', 'refugee', 'child_labour', 'serious_health_issue', 'street_child'];
const SEXES = ['female', 'male', 'other', 'unknown'];

/** The fields of the i-th bench record: what a field worker fills in (≈ 0.9 KB as stored, with timestamps). */
export function recordFields(i: number): Record<string, string | number | boolean | string[]> {
  return {
    name: `${NAMES[i % NAMES.length] ?? 'Child'} ${String.fromCharCode(65 + (i % 26))}. ${i}`,
    age: i % 18,
    sex: SEXES[i % SEXES.length] ?? 'unknown',
    location: `${PLACES[i % PLACES.length] ?? 'Camp'} camp, block ${i % 97}`,
    caregiver: `${NAMES[(i * 7) % NAMES.length] ?? 'Aunt'} (aunt)`,
    protection_concerns: [CONCERNS[i % CONCERNS.length] ?? 'other', CONCERNS[(i + 3) % CONCERNS.length] ?? 'other'],
    notes: `Registered at the ${PLACES[(i * 3) % PLACES.length] ?? ''} reception desk; referred for family tracing. Case ${i}.`,
    flagged: i % 11 === 0,
  };
}

/** Creates `n` records through the SDK (the path an app uses), reporting progress now and then. */
export async function createRecords(session: Session, n: number, onProgress: (done: number) => void): Promise<void> {
  for (let i = 0; i < n; i += 1) {
    await session.createRecord(recordFields(i));
    if ((i + 1) % 2000 === 0) onProgress(i + 1);
  }
}

/** Every record the session sees, oldest first (paged through the SDK). */
export async function allRecords(session: Session): Promise<ChildRecord[]> {
  const out: ChildRecord[] = [];
  for (let offset = 0; ; ) {
    const page = await session.listRecords({ limit: 500, offset });
    out.push(...page);
    offset += page.length;
    if (page.length < 500) return out;
  }
}

function segment(marker: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.byteLength);
  out.set([0xff, marker, ((payload.byteLength + 2) >> 8) & 0xff, (payload.byteLength + 2) & 0xff]);
  out.set(payload, 4);
  return out;
}

/**
 * A structurally valid baseline JPEG of about `bytes` bytes (JFIF, DQT, SOF0, DHT, SOS, random
 * entropy-coded data without markers, EOI): random data does not compress, like a camera's JPEG.
 * Not decodable pixels; the SDK and the server only parse the container.
 */
export function jpeg(bytes: number): Uint8Array {
  const scan = randomBytes(Math.max(1024, bytes - 200));
  // 0xFF would start a marker inside the entropy-coded segment.
  for (let i = 0; i < scan.length; i += 1) if (scan[i] === 0xff) scan[i] = 0xfe;
  const parts = [
    new Uint8Array([0xff, 0xd8]),
    segment(0xe0, new Uint8Array([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0])),
    segment(0xdb, new Uint8Array([0, ...Array.from({ length: 64 }, (_, i) => i + 1)])),
    segment(0xc0, new Uint8Array([8, 0x0c, 0x00, 0x10, 0x00, 1, 1, 0x11, 0])),
    segment(0xc4, new Uint8Array([0, ...Array.from({ length: 16 }, () => 0), 0])),
    segment(0xda, new Uint8Array([1, 1, 0, 0, 63, 0])),
    scan,
    new Uint8Array([0xff, 0xd9]),
  ];
  return concatBytes(parts);
}

/**
 * Times the phases of one `session.sync` from its progress events: a phase lasts from its first
 * event to the first event of the next phase (or the end of the sync). With `stopBefore`, the sync
 * is cancelled as that phase starts (SYNC_CANCELLED is expected then), so a push can be timed
 * without the pull that follows it.
 */
export async function timedSync(
  session: Session,
  transport: Transport,
  stopBefore?: SyncProgress['phase'],
): Promise<{ phaseMs: Partial<Record<SyncProgress['phase'], number>>; last: Partial<Record<SyncProgress['phase'], SyncProgress>> }> {
  const starts: Array<[SyncProgress['phase'], number]> = [];
  const last: Partial<Record<SyncProgress['phase'], SyncProgress>> = {};
  const abort = new AbortController();
  const onProgress = (p: SyncProgress): void => {
    if (starts[starts.length - 1]?.[0] !== p.phase) starts.push([p.phase, performance.now()]);
    last[p.phase] = p;
    if (p.phase === stopBefore) abort.abort();
  };
  try {
    await session.sync({ transport, onProgress, signal: abort.signal });
    if (stopBefore !== undefined) throw new Error(`the sync ended before its ${stopBefore} phase`);
  } catch (err) {
    if (stopBefore === undefined || (err as { code?: unknown }).code !== 'SYNC_CANCELLED') throw err;
  }
  const end = performance.now();
  const phaseMs: Partial<Record<SyncProgress['phase'], number>> = {};
  starts.forEach(([phase, t0], i) => {
    if (phase === stopBefore) return;
    phaseMs[phase] = (starts[i + 1]?.[1] ?? end) - t0;
  });
  return { phaseMs, last };
}
