/**
 * A first-come, first-served async lock. The device serialises every keyring read-modify-write
 * and every migration step through one of these, so two calls can never interleave their writes.
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /** Runs `fn` once every earlier `run` has settled; the lock is released however `fn` ends. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
