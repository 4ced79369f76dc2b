import { randomBytes } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import { generateDeviceKeyPair, signDevice, toBase64, type DeviceKeyPair } from '@fieldvault/crypto';
import { loginSignatureMessage, type KeyRecord } from '@fieldvault/protocol';

/** No bench request may hang the run. */
const REQUEST_TIMEOUT_MS = 30_000;

/** A simulated phone: an IMEI, its device key pair and, after its first login, the DB key it holds. */
export interface BenchDevice {
  readonly imei: string;
  readonly keys: DeviceKeyPair;
  held?: { readonly record: KeyRecord; readonly dbKey: string };
}

export interface BenchUser {
  readonly username: string;
  readonly password: string;
  readonly device: BenchDevice;
}

let imeis = 0;
export function newDevice(): BenchDevice {
  imeis += 1;
  return { imei: `35${String(process.pid % 1e6).padStart(6, '0')}${String(imeis).padStart(7, '0')}`, keys: generateDeviceKeyPair() };
}

export function newPassword(): string {
  return `quiet river bank at dawn ${randomBytes(6).toString('hex')}`;
}

/** The fieldvault HTTP API over one undici dispatcher (keep-alive connections to the server). */
export class BenchApi {
  constructor(
    private readonly origin: string,
    private readonly dispatcher: Dispatcher,
  ) {}

  /** Sends a request; throws unless the status is `expect`. The error names the route and code only. */
  async call<T>(expect: number, method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const res = await request(`${this.origin}${path}`, {
      method,
      headers,
      dispatcher: this.dispatcher,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    if (res.statusCode !== expect) {
      let code = 'unknown';
      try {
        code = String((JSON.parse(text) as { code?: unknown }).code);
      } catch {
        // not a catalogued body
      }
      throw new Error(`${method} ${path}: ${res.statusCode} ${code}`);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  async setupAdmin(setupToken: string, username: string, password: string): Promise<void> {
    await this.call(201, 'POST', '/v1/setup/admin', { setupToken, username, password });
  }

  /** Admin creates a field worker; the worker sets a password from the invitation. */
  async createUser(adminToken: string, username: string): Promise<string> {
    const created = await this.call<{ invitation: { token: string } }>(201, 'POST', '/v1/users', { username, role: 'field_worker' }, adminToken);
    const password = newPassword();
    await this.call(200, 'POST', '/v1/auth/password', { resetToken: created.invitation.token, password });
    return password;
  }

  /**
   * Challenge + signed login, as the SDK does it: a device that already holds a DB key offers it.
   * Returns the session token and remembers the key the server answered with.
   */
  async login(username: string, password: string, device: BenchDevice): Promise<string> {
    const { challenge } = await this.call<{ challenge: string }>(200, 'POST', '/v1/auth/challenge', { imei: device.imei });
    const held = device.held;
    const signature = signDevice(
      device.keys.privateKey,
      loginSignatureMessage({ challenge, username, imei: device.imei, keyId: held?.record.keyId ?? '' }),
    );
    const res = await this.call<{ token: string; key: { record: KeyRecord; dbKey: string } }>(200, 'POST', '/v1/auth/login', {
      username,
      password,
      imei: device.imei,
      devicePublicKey: toBase64(device.keys.publicKey),
      challenge,
      signature: toBase64(signature),
      ...(held === undefined ? {} : { dbKey: held.dbKey, keyRecord: held.record }),
    });
    device.held = res.key;
    return res.token;
  }

  /** The cheap authenticated request: 3 store reads, no Argon2. */
  async session(token: string): Promise<void> {
    await this.call(200, 'GET', '/v1/auth/session', undefined, token);
  }
}
