/*
 * One upload of a photo at a time per server process: the offset check, the read and the write
 * of the partial upload happen under a lease, so two requests for the same photo never interleave
 * their bytes (across processes, the `_rev` check of the upload document catches it instead:
 * PHOTO_OFFSET_MISMATCH, and the client asks the offset again).
 *
 * A live request takes over from the holder: a phone that lost its connection retries at once,
 * while the server may still be waiting on the old, half-open connection. The holder is told to
 * stop (`superseded`), keeps what it read so far, and releases; the newcomer then checks its
 * offset against what was kept. A request whose connection is already gone never takes over: it
 * queues, saves its bytes if they still continue the upload, and drops them otherwise. Nor does
 * a request of someone who may not continue the holder's upload (`mayTakeOver` says who may): the
 * ownership check comes after the slot, and stopping first would let any reader of the record
 * break someone else's upload at every request, only to be refused afterwards.
 */

/** Who holds (or asks for) a photo's slot: the request's user and phone. */
export interface SlotHolder {
  readonly username: string;
  readonly imei: string;
}

export interface UploadLease {
  /** Resolves when a newer upload of the same photo asks this one to stop. */
  readonly superseded: Promise<void>;
  release(): void;
}

export class UploadSlots {
  readonly #tails = new Map<string, Promise<void>>();
  readonly #holders = new Map<string, { readonly who: SlotHolder; readonly supersede: () => void; readonly released: Promise<void> }>();

  /**
   * Waits for the photo's slot as `who`; first tells the current holder to stop when
   * `mayTakeOver(holder)` allows it (else queues behind it).
   */
  async acquire(photoId: string, who: SlotHolder, mayTakeOver: (holder: SlotHolder) => boolean): Promise<UploadLease> {
    const holder = this.#holders.get(photoId);
    if (holder !== undefined && mayTakeOver(holder.who)) holder.supersede();
    const previous = this.#tails.get(photoId) ?? Promise.resolve();
    let done: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    const tail = previous.then(() => mine);
    this.#tails.set(photoId, tail);
    await previous;
    let supersede: () => void = () => undefined;
    const superseded = new Promise<void>((resolve) => {
      supersede = resolve;
    });
    const entry = { who, supersede, released: mine };
    this.#holders.set(photoId, entry);
    let released = false;
    return {
      superseded,
      release: () => {
        if (released) return;
        released = true;
        if (this.#holders.get(photoId) === entry) this.#holders.delete(photoId);
        if (this.#tails.get(photoId) === tail) this.#tails.delete(photoId);
        done();
      },
    };
  }

  /**
   * For a status read: when the photo's slot is held by a request `mayTakeOver` allows to stop,
   * tells it to stop and returns a promise that resolves once it has released the slot (after
   * saving what it kept); undefined when there is nothing to wait for. The reader never takes
   * the slot itself, so it never waits behind an upload it may not stop.
   */
  settle(photoId: string, mayTakeOver: (holder: SlotHolder) => boolean): Promise<void> | undefined {
    const holder = this.#holders.get(photoId);
    if (holder === undefined || !mayTakeOver(holder.who)) return undefined;
    holder.supersede();
    return holder.released;
  }

  /** Photos with an upload in progress or queued (for tests and shutdown checks). */
  get busy(): number {
    return this.#tails.size;
  }
}
