import { createHash, type Hash } from 'node:crypto';

/** SHA-256 of `data` as lowercase hex (photo digests and the keyring checksum; not a secret-keyed hash). */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** An incremental SHA-256 for streamed photo bytes. */
export function createSha256(): { update(chunk: Uint8Array): void; hex(): string } {
  const hash: Hash = createHash('sha256');
  return {
    update(chunk) {
      hash.update(chunk);
    },
    hex() {
      return hash.digest('hex');
    },
  };
}
