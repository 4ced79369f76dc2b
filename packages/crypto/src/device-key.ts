import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { FieldvaultError } from '@fieldvault/protocol';
import { asBuffer, copyBytes, isBytes, viewBytes } from './bytes.js';
import { fromBase64Url } from './encoding.js';

export const DEVICE_PUBLIC_KEY_LENGTH = 32;
/** The private key is the raw 32-byte Ed25519 seed (RFC 8032 §5.1.5). */
export const DEVICE_PRIVATE_KEY_LENGTH = 32;
export const DEVICE_SIGNATURE_LENGTH = 64;

/** An Ed25519 device key pair as raw bytes. */
export interface DeviceKeyPair {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

// Fixed DER prefixes that wrap a raw Ed25519 key as PKCS#8 / SPKI (RFC 8410), since node:crypto
// imports only structured keys.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function keyInvalid(detail: string): FieldvaultError {
  return new FieldvaultError('CRYPTO_KEY_INVALID', { detail });
}

function privateKeyObject(privateKey: Uint8Array): KeyObject {
  if (!isBytes(privateKey) || privateKey.byteLength !== DEVICE_PRIVATE_KEY_LENGTH) {
    throw keyInvalid(`device private key must be ${DEVICE_PRIVATE_KEY_LENGTH} bytes`);
  }
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  if (!isBytes(publicKey) || publicKey.byteLength !== DEVICE_PUBLIC_KEY_LENGTH) {
    throw keyInvalid(`device public key must be ${DEVICE_PUBLIC_KEY_LENGTH} bytes`);
  }
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new FieldvaultError('CRYPTO_KEY_INVALID', { detail: 'device public key is not an Ed25519 key', cause });
  }
}

function rawFromJwk(jwkField: unknown): Uint8Array {
  if (typeof jwkField !== 'string') throw new FieldvaultError('INTERNAL_ERROR', { detail: 'Ed25519 JWK export' });
  return fromBase64Url(jwkField);
}

/** A new Ed25519 device key pair from the OS CSPRNG. */
export function generateDeviceKeyPair(): DeviceKeyPair {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { publicKey: rawFromJwk(jwk.x), privateKey: rawFromJwk(jwk.d) };
}

/**
 * The public key of a raw private key (seed), e.g. to re-send it at enrolment.
 * @throws CRYPTO_KEY_INVALID when `privateKey` is not 32 bytes.
 */
export function devicePublicKey(privateKey: Uint8Array): Uint8Array {
  const jwk = createPublicKey(privateKeyObject(privateKey)).export({ format: 'jwk' });
  return rawFromJwk(jwk.x);
}

/**
 * Signs `message` with the device's Ed25519 private key; returns the 64-byte signature.
 * @throws CRYPTO_KEY_INVALID when `privateKey` is not 32 bytes.
 */
export function signDevice(privateKey: Uint8Array, message: Uint8Array): Uint8Array {
  const key = privateKeyObject(privateKey);
  return copyBytes(viewBytes(sign(null, asBuffer(message), key)));
}

/**
 * Verifies an Ed25519 signature. Returns false for any wrong, malformed or wrong-length signature
 * (never throws for one), so a caller cannot forget to treat an exception as a failure.
 * @throws CRYPTO_KEY_INVALID when `publicKey` is not a 32-byte Ed25519 public key.
 */
export function verifyDevice(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const key = publicKeyObject(publicKey);
  if (!isBytes(signature) || signature.byteLength !== DEVICE_SIGNATURE_LENGTH || !isBytes(message)) return false;
  try {
    return verify(null, asBuffer(message), key, asBuffer(signature));
  } catch {
    return false;
  }
}
