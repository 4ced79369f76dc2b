import { devicePublicKey, fromBase64, generateDeviceKeyPair, signDevice, toBase64 } from '@fieldvault/crypto';
import { FieldvaultError } from '@fieldvault/protocol';
import type { FileSystem } from './file-system.js';

/**
 * Holds the device's Ed25519 key pair, which binds this phone to its IMEI on every server
 * (DESIGN.md §2). It serves every user of the phone, including one logging in for the first time,
 * so it is not wrapped under any password. On a phone the platform keystore implements this and
 * never lets the private key out: hence `sign`, not a getter for the private key.
 */
export interface DeviceKeyStore {
  /** The 32-byte Ed25519 public key; the key pair is created on first use. */
  publicKey(): Promise<Uint8Array>;
  /** A 64-byte Ed25519 signature of `message` with the device's private key. */
  sign(message: Uint8Array): Promise<Uint8Array>;
  /** Deletes the key pair (device wipe). */
  destroy(): Promise<void>;
}

export const DEVICE_KEY_FILE = 'device-key.json';
const FORMAT = 'fieldvault-device-key';

function invalid(detail: string, cause?: unknown): FieldvaultError {
  return new FieldvaultError('VAULT_DEVICE_KEY_INVALID', cause === undefined ? { detail } : { detail, cause });
}

/**
 * A `DeviceKeyStore` in a JSON file of mode 0600 beside the keyring
 * (`{ format, v: 1, publicKey, privateKey }`, raw keys in base64). A file readable or writable by
 * group or others is refused rather than used, like the server's secret files.
 * @throws VAULT_DEVICE_KEY_INVALID (from its methods) when the file is malformed, its keys do
 * not match, or its mode is not 0600.
 */
export function createFileDeviceKeyStore(fs: FileSystem, path: string = DEVICE_KEY_FILE): DeviceKeyStore {
  let cached: { publicKey: Uint8Array; privateKey: Uint8Array } | undefined;
  let creating: Promise<{ publicKey: Uint8Array; privateKey: Uint8Array }> | undefined;

  async function read(): Promise<{ publicKey: Uint8Array; privateKey: Uint8Array } | undefined> {
    const bytes = await fs.readFile(path);
    if (bytes === undefined) return undefined;
    const mode = await fs.mode(path);
    if (mode !== undefined && (mode & 0o077) !== 0) throw invalid(`mode ${mode.toString(8)}, expected 600`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes));
    } catch (cause) {
      throw invalid('not JSON', cause);
    }
    const o = parsed as Record<string, unknown> | null;
    if (o === null || typeof o !== 'object' || o['format'] !== FORMAT || o['v'] !== 1) throw invalid('not a device key file');
    try {
      const privateKey = fromBase64(String(o['privateKey']));
      const publicKey = fromBase64(String(o['publicKey']));
      const derived = devicePublicKey(privateKey);
      if (derived.byteLength !== publicKey.byteLength || derived.some((b, i) => b !== publicKey[i])) throw invalid('keys do not match');
      return { publicKey, privateKey };
    } catch (cause) {
      if ((cause as { code?: unknown }).code === 'VAULT_DEVICE_KEY_INVALID') throw cause;
      throw invalid('malformed keys', cause);
    }
  }

  async function pair(): Promise<{ publicKey: Uint8Array; privateKey: Uint8Array }> {
    if (cached !== undefined) return cached;
    const create = async (): Promise<{ publicKey: Uint8Array; privateKey: Uint8Array }> => {
      const existing = await read();
      if (existing !== undefined) return existing;
      const fresh = generateDeviceKeyPair();
      const file = { format: FORMAT, v: 1, publicKey: toBase64(fresh.publicKey), privateKey: toBase64(fresh.privateKey) };
      await fs.writeFileAtomic(path, new TextEncoder().encode(`${JSON.stringify(file)}\n`), { mode: 0o600 });
      return { publicKey: fresh.publicKey, privateKey: fresh.privateKey };
    };
    // Under the directory lock: two processes creating the pair at once would otherwise each keep
    // their own key in memory while only one reaches the file (audit H3).
    creating ??= (fs.withLock === undefined ? create() : fs.withLock(path, create)).finally(() => {
      creating = undefined;
    });
    cached = await creating;
    return cached;
  }

  return {
    async publicKey() {
      return new Uint8Array((await pair()).publicKey);
    },
    async sign(message) {
      return signDevice((await pair()).privateKey, message);
    },
    async destroy() {
      if (cached !== undefined) cached.privateKey.fill(0);
      cached = undefined;
      await fs.remove(path);
    },
  };
}
