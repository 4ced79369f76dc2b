/**
 * TLS material for the HTTPS listener: the configured certificate and key, or — for `npm start`
 * on a developer machine — a self-signed certificate generated once into the data directory.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { FieldvaultError } from '@fieldvault/protocol';
import type { AppConfig } from './config.js';
import { assertPrivateFile, writePrivateFile } from './secrets.js';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** SHA-256 fingerprint of the certificate, for pinning a self-signed deployment. */
  readonly fingerprint: string;
  readonly selfSigned: boolean;
  readonly certFile: string;
}

/**
 * @throws CONFIG_SECRET_FILE_INSECURE when the key file is not 0600; CONFIG_INVALID when unreadable.
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
        notAfterDate: new Date(Date.now() + 365 * 86_400_000),
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
  assertPrivateFile(keyFile);
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certFile, 'utf8');
    key = readFileSync(keyFile, 'utf8');
  } catch (cause) {
    throw new FieldvaultError('CONFIG_INVALID', { detail: `cannot read TLS certificate or key (${certFile}, ${keyFile})`, cause });
  }
  let fingerprint: string;
  try {
    fingerprint = new X509Certificate(cert).fingerprint256;
  } catch (cause) {
    throw new FieldvaultError('CONFIG_INVALID', { detail: `${certFile} is not a PEM certificate`, cause });
  }
  return { cert, key, fingerprint, selfSigned, certFile };
}
