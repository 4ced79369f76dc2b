// The certificate's life (admin audit s16, F6 and F9): a generated development certificate lasts
// 10 years; a certificate in use that expires within 30 days is warned about at start (banner line
// and a `warn` log record), an expired one loudly (banner and an `error` record) without refusing
// to start (pinned phones still connect); the banner and the first log record name the version.
// Real server processes, with certificates made here by the server's own generator (selfsigned).
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { generate } from 'selfsigned';
import { certificateNotice } from '../src/cert-expiry.js';
import { runServer, stopServer, type Outcome } from './run-server.js';

const DAY = 86_400_000;
const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A self-signed P-256 certificate for 127.0.0.1/localhost valid from `from` to `to` (ms). */
async function certificate(from: number, to: number): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(from),
    notAfterDate: new Date(to),
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
  });
  return { cert: pems.cert, key: pems.private };
}

/** A data directory that already holds a development certificate, as one made by an older version. */
async function dataDirWithDevCert(dir: string, from: number, to: number): Promise<{ dataDir: string; certFile: string; cert: string }> {
  const dataDir = join(dir, 'data');
  mkdirSync(join(dataDir, 'tls'), { recursive: true, mode: 0o700 });
  const { cert, key } = await certificate(from, to);
  const certFile = join(dataDir, 'tls', 'dev-cert.pem');
  writeFileSync(certFile, cert, { mode: 0o600 });
  writeFileSync(join(dataDir, 'tls', 'dev-key.pem'), key, { mode: 0o600 });
  return { dataDir, certFile, cert };
}

/** The JSON log records the server wrote so far, waiting up to 5 s for one that `until` accepts. */
async function logRecords(o: Outcome, until: (r: Record<string, unknown>) => boolean): Promise<Array<Record<string, unknown>>> {
  const read = (): Array<Record<string, unknown>> =>
    o
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  for (let i = 0; i < 100 && !read().some(until); i++) await sleep(50);
  return read();
}

t.test('a generated development certificate is valid for 10 years, and nothing warns about it', async (t) => {
  const dataDir = join(t.testdir(), 'data');
  const o = await runServer(dataDir);
  t.teardown(() => stopServer(o));
  t.equal(o.state, 'started', o.output());
  const x509 = new X509Certificate(readFileSync(join(dataDir, 'tls', 'dev-cert.pem')));
  const days = (Date.parse(x509.validTo) - Date.parse(x509.validFrom)) / DAY;
  t.ok(days >= 3649 && days <= 3651, `valid for ${days} days`);
  t.notMatch(o.output(), /WARNING|ERROR|expire/);
  t.equal(await stopServer(o), 0);
});

t.test('the banner and the first log record name the version of apps/server/package.json', async (t) => {
  const o = await runServer(join(t.testdir(), 'data'), { FIELDVAULT_LOG_LEVEL: 'info' });
  t.teardown(() => stopServer(o));
  t.equal(o.state, 'started', o.output());
  t.match(o.output(), `  version: fieldvault-server ${version}\n`);
  const records = await logRecords(o, (r) => r['msg'] === `fieldvault server ${version} starting`);
  t.match(records[0], { level: 30, version, msg: `fieldvault server ${version} starting` }, 'the first record');
  t.equal(await stopServer(o), 0);
});

t.test('a development certificate that expires within 30 days is kept, and warned about in the banner and a warn log record', async (t) => {
  const { dataDir, certFile, cert } = await dataDirWithDevCert(t.testdir(), Date.now() - 345 * DAY, Date.now() + 20 * DAY + 3_600_000);
  const o = await runServer(dataDir);
  t.teardown(() => stopServer(o));
  t.equal(o.state, 'started', o.output());
  t.equal(readFileSync(certFile, 'utf8'), cert, 'not replaced: pinned phones keep working');
  t.match(o.output(), `  WARNING: the development certificate ${certFile} expires in 20 days (`);
  t.match(o.output(), 'Renew it now (a new one has a new fingerprint: add its pin on every phone before you switch): docs/operations.md, "Renewing or replacing the TLS certificate"');
  const records = await logRecords(o, (r) => r['level'] === 40);
  t.match(
    records.find((r) => r['level'] === 40),
    { level: 40, cert: certFile, daysLeft: 20, msg: /^the development certificate .* expires in 20 days/ },
  );
  t.equal(await stopServer(o), 0);
});

t.test('an expired certificate of FIELDVAULT_TLS_CERT does not stop the start: the banner and an error log record say so', async (t) => {
  const dir = t.testdir();
  const { cert, key } = await certificate(Date.now() - 400 * DAY, Date.now() - 3 * DAY - 3_600_000);
  const certFile = join(dir, 'cert.pem');
  writeFileSync(certFile, cert);
  writeFileSync(join(dir, 'key.pem'), key, { mode: 0o600 });
  const o = await runServer(join(dir, 'data'), { FIELDVAULT_TLS_CERT: certFile, FIELDVAULT_TLS_KEY: join(dir, 'key.pem') });
  t.teardown(() => stopServer(o));
  t.equal(o.state, 'started', o.output());
  t.match(o.output(), `  ERROR: the TLS certificate ${certFile} (FIELDVAULT_TLS_CERT) expired on `);
  t.match(o.output(), '(3 days ago): phones and admins that trust it by --ca are refused (CERT_HAS_EXPIRED), those that pin its fingerprint still connect');
  const records = await logRecords(o, (r) => r['level'] === 50);
  t.match(
    records.find((r) => r['level'] === 50),
    { level: 50, cert: certFile, daysLeft: -3, msg: /^the TLS certificate .* expired on / },
  );
  t.equal(await stopServer(o), 0);
});

t.test('the notice: none beyond 30 days, a warning within, an error from the end on', async (t) => {
  const now = Date.parse('2026-06-01T00:00:00Z');
  const at = (ms: number): Date => new Date(now + ms);
  const cert = (notAfter: Date): { certFile: string; selfSigned: boolean; notAfter: Date } => ({ certFile: '/srv/fv/cert.pem', selfSigned: false, notAfter });
  t.equal(certificateNotice(cert(at(30 * DAY + 1)), now), null);
  t.match(certificateNotice(cert(at(30 * DAY)), now), { level: 'warn', daysLeft: 30, text: /expires in 30 days \(2026-07-01T00:00:00\.000Z\)/ });
  t.match(certificateNotice(cert(at(DAY + 1)), now), { level: 'warn', daysLeft: 1, text: /expires in 1 day / });
  t.match(certificateNotice(cert(at(1)), now), { level: 'warn', daysLeft: 0, text: /expires within a day / });
  t.match(certificateNotice(cert(at(0)), now), { level: 'error', daysLeft: 0, text: /expired on 2026-06-01T00:00:00\.000Z: / });
  t.match(certificateNotice(cert(at(-2 * DAY)), now), { level: 'error', daysLeft: -2, text: /\(2 days ago\)/ });
  t.match(certificateNotice(cert(at(DAY)), now)?.text, 'with the same CA, phones that use --ca need nothing');
});
