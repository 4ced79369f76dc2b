import { FieldvaultError } from '@fieldvault/protocol';
import type { SqlExecutor, SqlRow, SqlValue, StorageHandle } from './storage-adapter.js';

/** What holds the gate: `hold()` resolves to the release, told whether the device was wiped meanwhile. */
export interface WriteGateHold {
  hold(): Promise<(wiped?: boolean) => void>;
}

/**
 * A session's database handle whose write transactions can be held back for a moment (`hold`).
 *
 * Why: a retired device checks that nothing on it is missing from any server, then wipes itself.
 * A record or photo saved by the app between the two would be wiped without ever reaching a
 * server — an acknowledged save lost. While the gate is held, new write transactions wait; those
 * already running finish first (`hold` resolves after them). After a wipe the waiting ones fail
 * with VAULT_WIPED: the app is told the save did not happen.
 *
 * Reads (`query`) and statements outside a transaction are never held: the check itself reads,
 * and the wipe closes the handle. Every write of records and photo refs runs in a transaction; a
 * photo's file is written between two of them (photo-store.ts), and one whose ref cannot be
 * committed is deleted again.
 */
export class GatedHandle implements StorageHandle, WriteGateHold {
  readonly #inner: StorageHandle;
  #gate: Promise<void> | undefined;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  #wiped = false;
  readonly bulkWrites?: <T>(fn: () => Promise<T>) => Promise<T>;

  constructor(inner: StorageHandle) {
    this.#inner = inner;
    const bulk = inner.bulkWrites?.bind(inner);
    if (bulk !== undefined) this.bulkWrites = <T>(fn: () => Promise<T>): Promise<T> => bulk(fn);
  }

  get name(): string {
    return this.#inner.name;
  }

  execute(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.#inner.execute(sql, params);
  }

  query<R extends SqlRow = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    return this.#inner.query<R>(sql, params);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    while (this.#gate !== undefined) await this.#gate;
    if (this.#wiped) throw new FieldvaultError('VAULT_WIPED');
    // Counted from here, with no await before the inner call: `hold` waits for this one.
    this.#inFlight += 1;
    try {
      return await this.#inner.transaction(fn);
    } finally {
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#drained?.();
    }
  }

  attach(alias: string, name: string, key: Uint8Array): Promise<void> {
    return this.#inner.attach(alias, name, key);
  }

  detach(alias: string): Promise<void> {
    return this.#inner.detach(alias);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /**
   * Holds back new write transactions until the returned function is called (with `true` when
   * the device was wiped meanwhile: they then fail with VAULT_WIPED); resolves once the
   * transactions already running have ended. One hold at a time (a second waits for the first).
   */
  async hold(): Promise<(wiped?: boolean) => void> {
    while (this.#gate !== undefined) await this.#gate;
    let open: () => void = () => undefined;
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#drained = undefined;
    }
    return (wiped = false) => {
      if (wiped) this.#wiped = true;
      this.#gate = undefined;
      open();
    };
  }
}
