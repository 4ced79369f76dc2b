import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { createDevice, type Device, type DeviceOptions, type Transport } from '@fieldvault/client';
import { generateDbKey, kdfBounds, keyId } from '@fieldvault/crypto';
import { formatHlc, type KeyRecord, type LoginBody } from '@fieldvault/protocol';
import { startServerProcess, type ServerProcess } from '@fieldvault/test-support';
import { SqlCipherStorage } from '../src/index.js';

export const IMEI = '490154203237518';
/** The cheapest Argon2id cost crypto accepts (its clamp floor): ~30 ms per wrap instead of ~150 ms. */
export const FAST_KDF = { m: kdfBounds.m.min, t: kdfBounds.t.min, p: 1 } as const;
export const PASSWORD_A = 'amber lantern over quiet harbour';
export const PASSWORD_B = 'seven copper kettles sing at dawn';
export const PASSWORD_C = 'granite owls measure the slow river';

/** A device on a fresh test directory, with fast KDF parameters. */
export async function newDevice(
  t: Test,
  extra: Partial<DeviceOptions> = {},
  dir: string = t.testdir(),
): Promise<{ dir: string; device: Device; storage: SqlCipherStorage }> {
  const storage = new SqlCipherStorage({ directory: join(dir, 'databases') });
  const device = await createDevice({ directory: dir, imei: IMEI, storage, kdf: FAST_KDF, ...extra });
  t.teardown(() => device.logout());
  return { dir, device, storage };
}

/** A server-issued key and its record, stamped at `wallMs` by `issuer`. */
export function serverKey(wallMs: number, issuer: string, counter = 0): { key: Uint8Array; record: KeyRecord } {
  const key = generateDbKey();
  return { key, record: { imei: IMEI, keyId: keyId(key), issuedAt: formatHlc({ wall: wallMs, counter, node: issuer }), issuer } };
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<{ code?: string; message?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string };
  }
  throw new Error('expected a rejection');
}

// Listings and snapshots are shared with the other suites (packages/test-support).
export { filesUnder, snapshot } from '@fieldvault/test-support';

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function bytesOf(text: string): number[] {
  return Array.from(Buffer.from(text, 'latin1'));
}

function segment(marker: number, payload: number[]): number[] {
  return [0xff, marker, ...u16(payload.length + 2), ...payload];
}

/** A big-endian TIFF/EXIF block whose GPS IFD holds GPSLatitudeRef "N" and GPSMapDatum = `canary`. */
export function exifWithGps(canary: string): number[] {
  const datum = [...bytesOf(canary), 0];
  const tiff = [
    ...bytesOf('MM'), ...u16(42), ...u32(8),
    // IFD0 at 8: one entry, GPSInfo → GPS IFD at 26
    ...u16(1), ...u16(0x8825), ...u16(4), ...u32(1), ...u32(26), ...u32(0),
    // GPS IFD at 26: GPSLatitudeRef "N", GPSMapDatum at 56
    ...u16(2), ...u16(0x0001), ...u16(2), ...u32(2), ...bytesOf('N'), 0, 0, 0,
    ...u16(0x0012), ...u16(2), ...u32(datum.length), ...u32(56), ...u32(0),
    ...datum,
  ];
  return [...bytesOf('Exif'), 0, 0, ...tiff];
}

/**
 * A structurally valid baseline JPEG (SOI, APP0, APP1 Exif with GPS, DQT, SOF0, DHT, SOS with
 * stuffed bytes and a restart marker, EOI) followed by trailing bytes. Not decodable pixels: the
 * SDK only parses the container.
 */
export function jpegWithGps(canary: string, scanBytes = 64): Uint8Array {
  const scan: number[] = [];
  for (let i = 0; i < scanBytes; i++) scan.push((i * 37) & 0xfe);
  scan.push(0xff, 0x00, 0x12, 0xff, 0xd0, 0x34);
  return new Uint8Array([
    0xff, 0xd8,
    ...segment(0xe0, [...bytesOf('JFIF'), 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]),
    ...segment(0xe1, exifWithGps(canary)),
    ...segment(0xdb, [0, ...Array.from({ length: 64 }, (_, i) => i + 1)]),
    ...segment(0xc0, [8, 0, 16, 0, 16, 1, 1, 0x11, 0]),
    ...segment(0xc4, [0, ...Array.from({ length: 16 }, () => 0), 0]),
    ...segment(0xda, [1, 1, 0, 0, 63, 0]),
    ...scan,
    0xff, 0xd9,
    ...bytesOf(`TRAILER-${canary}`),
  ]);
}

/** True when `needle` occurs in `haystack`. */
export function contains(haystack: Uint8Array, needle: string): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).includes(Buffer.from(needle, 'latin1'));
}

/** Rate limits lifted: every phone of a test comes from 127.0.0.1. */
export const NO_RATE_LIMITS = { FIELDVAULT_AUTH_RATE_LIMIT: '100000', FIELDVAULT_RATE_LIMIT: '100000' } as const;

/**
 * Real server processes for a test file, one per id (in parallel), each with the same users
 * (`[username, password, role?]`); stopped and their directories removed in `t`'s teardown.
 */
export async function startServers(
  t: Test,
  name: string,
  ids: readonly string[],
  users: ReadonlyArray<readonly [string, string, ('field_worker' | 'supervisor' | 'admin')?]>,
  env: Readonly<Record<string, string>> = {},
): Promise<ServerProcess[]> {
  const root = mkdtempSync(join(tmpdir(), `fieldvault-${name}-`));
  const servers: ServerProcess[] = [];
  t.teardown(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
  });
  await Promise.all(ids.map((id) => startServerProcess(join(root, id), id, { env }).then((s) => void servers.push(s))));
  // Back in the order asked for (they started in parallel).
  const ordered = ids.map((id) => servers.find((s) => s.serverId === id) as ServerProcess);
  for (const s of ordered) for (const [username, password, role] of users) await s.createUser(username, password, role);
  return ordered;
}

/** A real transport that also remembers the session tokens its logins returned. */
export function recording(transport: Transport): Transport & { tokens: string[] } {
  const tokens: string[] = [];
  return {
    ...transport,
    login: async (body: LoginBody) => {
      const res = await transport.login(body);
      tokens.push(res.token);
      return res;
    },
    tokens,
  };
}

/** Node arguments a child process needs to run a `.ts` fixture: tap's TypeScript loader (and nothing else of tap's). */
export const TS_LOADER: readonly string[] = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a === '--enable-source-maps');
