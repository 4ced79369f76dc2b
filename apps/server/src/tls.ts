/**
 * TLS material for the HTTPS listener: the configured certificate and key, or — for `npm start`
 * on a developer machine — a self-signed certificate generated once into the data directory.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { generate } from 'selfsigned';
import { publicKeyPin } from '@fieldvault/crypto';
import { FieldvaultError } from '@fieldvault/protocol';
import type { AppConfig } from './config.js';
import { assertPrivateFile, writePrivateFile } from './secrets.js';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 fingerprint of the certificate, for pinning a self-signed deployment. */
  readonly fingerprint: string;
  /**
   * Public-key pin of the certificate (`sha256//` + base64 SHA-256 of its SubjectPublicKeyInfo,
   * curl's `--pinnedpubkey` form): it survives a renewal with the same key, where the fingerprint does not.
   */
  readonly keyPin: string;
  readonly selfSigned: boolean;
  readonly certFile: string;
  /** End of the certificate's validity (the first certificate of a chain). */
  readonly notAfter: Date;
}

/**
 * Life of a generated development certificate. Long on purpose (admin audit s16, F6): it is a
 * self-signed leaf that phones trust by its pin or as its own CA, so any new certificate — a
 * renewal included — means reconfiguring every phone; a short life only schedules that outage.
 * A dev certificate made by an older version (365 days) is kept as it is, since replacing it
 * would break those pins too: the expiry warning at start covers it (cert-expiry.ts).
 */
export const DEV_CERT_DAYS = 3650;

/**
 * @throws CONFIG_SECRET_FILE_INSECURE when the key file is not 0600; CONFIG_INVALID when a file is
 * missing or unreadable, not PEM, or the key is not the certificate's.
 */
export async function loadTls(config: AppConfig): Promise<TlsMaterial> {
  let certFile = config.tlsCertFile;
  let keyFile = config.tlsKeyFile;
  let selfSigned = false;
  if (certFile === null || keyFile === null) {
    certFile = join(config.dataDir, 'tls', 'dev-cert.pem');
    keyFile = join(config.dataDir, 'tls', 'dev-key.pem');
    selfSigned = true;
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
        keyType: 'ec',
        curve: 'P-256',
        algorithm: 'sha256',
        notAfterDate: new Date(Date.now() + DEV_CERT_DAYS * 86_400_000),
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
        ],
      });
      writePrivateFile(keyFile, pems.private);
      writePrivateFile(certFile, pems.cert);
    }
  }
  // Named as the operator set them: the variable, the file, and what to do (audit item 4).
  const certName = selfSigned ? `the development certificate ${certFile}` : `FIELDVAULT_TLS_CERT ${certFile}`;
  const keyName = selfSigned ? `the development key ${keyFile}` : `FIELDVAULT_TLS_KEY ${keyFile}`;
  const cert = readPem(certFile, certName, 'the PEM certificate chain of this server');
  const key = readPem(keyFile, keyName, 'the PEM private key of that certificate');
  assertPrivateFile(keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (cause) {
    throw new FieldvaultError('CONFIG_INVALID', { detail: `${certName} is not a PEM certificate (${reason(cause)}): it must start with -----BEGIN CERTIFICATE-----`, cause });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw new FieldvaultError('CONFIG_INVALID', {
      detail: `${keyName} is not an unencrypted PEM private key (${reason(cause)}): it must start with -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY); decrypt it with openssl pkey if it has a passphrase`,
      cause,
    });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new FieldvaultError('CONFIG_INVALID', { detail: `${keyName} is not the private key of ${certName} (key values mismatch): set the key that was issued with this certificate` });
  }
  try {
    createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (cause) {
    throw new FieldvaultError('CONFIG_INVALID', { detail: `${certName} and ${keyName} cannot be used for TLS (${reason(cause)})`, cause });
  }
  const fingerprint = x509.fingerprint256;
  const keyPin = publicKeyPin(x509);
  return { cert, key, fingerprint, keyPin, selfSigned, certFile, notAfter: new Date(x509.validTo) };
}

/** The text of a PEM file, or CONFIG_INVALID saying which file is missing or unreadable. */
function readPem(file: string, name: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this account' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot be read (${String(code)})`;
    throw new FieldvaultError('CONFIG_INVALID', { detail: `${name} ${why}: it must name ${what}`, cause });
  }
}

/** The first line of an error's message (OpenSSL's, e.g. "DECODER routines::unsupported"), no stack. */
function reason(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}
