/** A FIFO of byte chunks that hands out exact-size slices, without re-concatenating on every write. */
export class ByteQueue {
  #chunks: Uint8Array[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.#chunks.push(bytes);
    this.#length += bytes.byteLength;
  }

  /** A copy of the first `n` bytes (n ≤ length), leaving them queued. */
  peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.#chunks) {
      if (at === n) break;
      const part = c.subarray(0, n - at);
      out.set(part, at);
      at += part.byteLength;
    }
    return out;
  }

  /** Removes and returns the first `n` bytes (n ≤ length). */
  take(n: number): Uint8Array {
    if (n > this.#length) throw new RangeError('ByteQueue.take beyond queued length');
    const first = this.#chunks[0];
    if (first !== undefined && first.byteLength >= n) {
      // Common case (input chunks at least as large as ours): slice without copying.
      const out = first.subarray(0, n);
      if (first.byteLength === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#length -= n;
      return out;
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0];
      if (c === undefined) break;
      const part = c.subarray(0, n - at);
      out.set(part, at);
      at += part.byteLength;
      if (part.byteLength === c.byteLength) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(part.byteLength);
    }
    this.#length -= n;
    return out;
  }
}
