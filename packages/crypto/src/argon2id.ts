import argon2 from 'argon2';
import { asBuffer, copyBytes, viewBytes } from './bytes.js';

export interface Argon2idInput {
  readonly password: Uint8Array;
  readonly salt: Uint8Array;
  /** Memory in KiB. */
  readonly m: number;
  readonly t: number;
  readonly p: number;
  readonly length: number;
  readonly secret?: Uint8Array;
  readonly associatedData?: Uint8Array;
}

/**
 * Raw Argon2id (version 0x13) with no clamping. Internal: production code reaches it only through
 * `deriveKek`, which clamps first; tests call it directly for the RFC 9106 vector, which needs
 * parameters below the floor and the secret/associated-data inputs.
 */
export async function argon2idRaw(input: Argon2idInput): Promise<Uint8Array> {
  const out = await argon2.hash(asBuffer(input.password), {
    raw: true,
    type: argon2.argon2id,
    version: 0x13,
    memoryCost: input.m,
    timeCost: input.t,
    parallelism: input.p,
    salt: asBuffer(input.salt),
    hashLength: input.length,
    ...(input.secret === undefined ? {} : { secret: asBuffer(input.secret) }),
    ...(input.associatedData === undefined ? {} : { associatedData: asBuffer(input.associatedData) }),
  });
  const key = copyBytes(viewBytes(out));
  out.fill(0);
  return key;
}
