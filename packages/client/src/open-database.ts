import { dbFileName } from '@fieldvault/crypto';
import type { StorageAdapter, StorageHandle } from './storage-adapter.js';
import { ensureSchema } from './vault-schema.js';

/** Opens (or, with `create`, creates) the database `key` names, with its schema brought up to date. */
export async function openDatabase(storage: StorageAdapter, key: Uint8Array, create: boolean): Promise<StorageHandle> {
  const db = await storage.open(dbFileName(key), key, { create });
  try {
    await ensureSchema(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}
