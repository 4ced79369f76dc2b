/**
 * Whether the TLS certificate in use is about to expire or has expired, said at every start (banner
 * and log) and once a day in the log while the server runs (admin audit s16, F6: a certificate
 * that lapsed without a word cut every phone that trusts it by --ca at once). An expired
 * certificate does not stop the start: phones that pin it still connect (pins ignore dates).
 */

/** Warn this long before the end. */
export const EXPIRY_WARNING_DAYS = 30;
const DAY_MS = 86_400_000;

export interface CertificateNotice {
  readonly level: 'warn' | 'error';
  /** One sentence for the banner and the log record's message. */
  readonly text: string;
  readonly notAfter: string;
  /** Whole days left (negative once expired). */
  readonly daysLeft: number;
}

export interface CertificateInUse {
  readonly certFile: string;
  readonly selfSigned: boolean;
  readonly notAfter: Date;
}

/** Null while more than {@link EXPIRY_WARNING_DAYS} days are left. */
export function certificateNotice(cert: CertificateInUse, now: number): CertificateNotice | null {
  const left = cert.notAfter.getTime() - now;
  if (left > EXPIRY_WARNING_DAYS * DAY_MS) return null;
  const notAfter = cert.notAfter.toISOString();
  const name = cert.selfSigned ? `the development certificate ${cert.certFile}` : `the TLS certificate ${cert.certFile} (FIELDVAULT_TLS_CERT)`;
  const how = cert.selfSigned
    ? 'a new one has a new fingerprint: add its pin on every phone before you switch'
    : 'with the same CA, phones that use --ca need nothing; add the new pin on phones that use --pin before you switch';
  const see = 'docs/operations.md, "Renewing or replacing the TLS certificate"';
  if (left <= 0) {
    const ago = Math.floor(-left / DAY_MS);
    return {
      level: 'error',
      notAfter,
      daysLeft: -ago,
      text: `${name} expired on ${notAfter}${ago > 0 ? ` (${ago} day${ago === 1 ? '' : 's'} ago)` : ''}: phones and admins that trust it by --ca are refused (CERT_HAS_EXPIRED), those that pin its fingerprint still connect. Replace it (${how}): ${see}`,
    };
  }
  const days = Math.floor(left / DAY_MS);
  const when = days === 0 ? 'within a day' : `in ${days} day${days === 1 ? '' : 's'}`;
  return {
    level: 'warn',
    notAfter,
    daysLeft: days,
    text: `${name} expires ${when} (${notAfter}): then phones and admins that trust it by --ca are refused (CERT_HAS_EXPIRED). Renew it now (${how}): ${see}`,
  };
}
