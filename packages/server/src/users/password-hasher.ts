import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';

export interface Argon2Params {
  readonly memoryKiB: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

/** Argon2id password hashing with the configured parameters (PHC strings carry their own). */
export interface PasswordHasher {
  /** Hashes an already NFKC-normalised password. */
  hash(password: string): Promise<string>;
  /** True when `password` matches `digest`; false for a wrong password or a malformed digest. */
  verify(digest: string, password: string): Promise<boolean>;
  /**
   * Spends the same time as `verify` against a hash of a random password, for unknown users,
   * so that "no such user" and "wrong password" cannot be told apart by timing.
   */
  verifyDummy(password: string): Promise<void>;
  /** True when `digest` was made with other parameters than the configured ones. */
  needsRehash(digest: string): boolean;
}

export function createPasswordHasher(params: Argon2Params): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: params.memoryKiB,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  } as const;
  let dummy: Promise<string> | undefined;
  const verify = async (digest: string, password: string): Promise<boolean> => {
    try {
      return await argon2.verify(digest, password);
    } catch {
      return false;
    }
  };
  return {
    hash: (password) => argon2.hash(password, options),
    verify,
    async verifyDummy(password) {
      dummy ??= argon2.hash(randomBytes(32).toString('base64url'), options);
      await verify(await dummy, password);
    },
    needsRehash: (digest) => {
      try {
        return argon2.needsRehash(digest, { memoryCost: params.memoryKiB, timeCost: params.timeCost, parallelism: params.parallelism });
      } catch {
        return true;
      }
    },
  };
}
