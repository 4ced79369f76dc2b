import { dbFileName, fromBase64, keyId } from '@fieldvault/crypto';
import type { KeyRecord, LoginResponse } from '@fieldvault/protocol';

/**
 * The server-issued keys a scenario has seen in login answers, by key id, with the database file
 * name each derives (DESIGN.md §2: the name is a one-way function of the key). It lets the
 * harness say which key every database file on a phone is under without any way into the phone.
 * Test-only: the keys stay in this process's memory and are never written anywhere.
 */
export class KeyBook {
  readonly #byKeyId = new Map<string, { record: KeyRecord; dbName: string }>();
  readonly #byDbName = new Map<string, string>();

  /** Records the key of a login answer (checked against its record like the SDK does). */
  see(response: LoginResponse): void {
    const key = fromBase64(response.key.dbKey);
    try {
      const id = keyId(key);
      if (id !== response.key.record.keyId) return; // the SDK refuses such an answer too
      const dbName = dbFileName(key);
      if (!this.#byKeyId.has(id)) this.#byKeyId.set(id, { record: response.key.record, dbName });
      this.#byDbName.set(dbName, id);
    } finally {
      key.fill(0);
    }
  }

  /** The key id of a database file name, or undefined for a key no server handed out (a phone-made unverified key). */
  keyIdOf(dbName: string): string | undefined {
    return this.#byDbName.get(dbName);
  }

  /** The database file name a server key's database has. */
  dbNameOf(id: string): string | undefined {
    return this.#byKeyId.get(id)?.dbName;
  }

  /** The first record seen for a key id. */
  recordOf(id: string): KeyRecord | undefined {
    return this.#byKeyId.get(id)?.record;
  }
}
