/**
 * What `npm start` prints once the server listens: where it is, its version, the store, the KEK
 * id, the certificate to trust (and whether it is about to expire) and, while no admin exists, how
 * to create the first one or restore a backup into it.
 *
 * The one-time setup token is printed only when the output is a terminal. Under a service manager
 * or a container, standard error ends up in the log store next to the JSON log, and the logs must
 * never hold a credential (operator audit #6): there the banner names the 0600 file that holds it.
 */
import type { AppConfig } from './config.js';
import { setupTokenFile } from './secrets.js';
import type { RunningServer } from './start.js';

type BannerServer = Pick<
  RunningServer,
  'url' | 'httpUrl' | 'serverId' | 'version' | 'tlsFingerprint' | 'tlsKeyPin' | 'selfSignedTls' | 'tlsCertFile' | 'tlsNotice' | 'setupToken' | 'store' | 'storeSource' | 'kekId' | 'passwordMinLength'
>;
type BannerConfig = Pick<AppConfig, 'dataDir' | 'kekFile' | 'couchDbPrefix'>;

/** The banner's lines; `terminal`: whether they go to a terminal (decides whether the setup token is shown). */
export function startBanner(server: BannerServer, config: BannerConfig, terminal: boolean): string {
  const store =
    server.store === 'embedded'
      ? `embedded (data in ${config.dataDir}/couch)`
      : `${server.storeSource === 'COUCHDB_URL' ? 'CouchDB at COUCHDB_URL' : `CouchDB at the URL in ${server.storeSource ?? '?'}`}, databases ${config.couchDbPrefix}*`;
  const trust = server.selfSignedTls ? `--ca ${server.tlsCertFile}` : `--pin ${server.tlsFingerprint}`;
  const tokenFile = setupTokenFile(config.dataDir);
  const lines: Array<string | null> = [
    '',
    `fieldvault server ${server.serverId} listening on ${server.url}`,
    server.httpUrl === null ? null : `  plain HTTP on ${server.httpUrl} redirects to HTTPS`,
    `  version: fieldvault-server ${server.version}`,
    `  store: ${store}`,
    `  KEK id ${server.kekId} (the KEK file ${config.kekFile}: back it up; the store needs this one)`,
    server.selfSignedTls ? `  TLS: self-signed development certificate ${server.tlsCertFile}` : `  TLS: certificate ${server.tlsCertFile}`,
    `       SHA-256 fingerprint ${server.tlsFingerprint}`,
    `       public-key pin ${server.tlsKeyPin} (stays the same when the certificate is renewed with the same key)`,
    server.selfSignedTls
      ? '       (clients: --ca with this certificate file, or --pin with this fingerprint; or configure FIELDVAULT_TLS_CERT/KEY)'
      : '       (clients: --ca with the CA that issued it, or --pin with this fingerprint)',
    server.tlsNotice === null ? null : `  ${server.tlsNotice.level === 'error' ? 'ERROR' : 'WARNING'}: ${server.tlsNotice.text}`,
  ];
  if (server.setupToken === null) {
    lines.push('  first admin: already set up');
  } else {
    lines.push(
      '',
      ...(terminal
        ? ['  No admin exists yet. Create the first one — or restore a backup into it — with this one-time setup token:', `    ${server.setupToken}`]
        : [
            `  No admin exists yet. Create the first one — or restore a backup into it — with the one-time setup token in ${tokenFile}`,
            '    (not printed here: this output is not a terminal and may be kept with the logs;',
            `     read it as the server's account, e.g. cat ${tokenFile})`,
          ]),
      `  e.g. fieldvault-admin init --server ${server.url} ${trust} --user admin`,
      '       (in this repository: npm run admin -- init …, which builds the admin CLI on first use)',
      '       (asks for the token and a password, then enrols an authenticator app for TOTP)',
      `  or   curl ${server.selfSignedTls ? `--cacert ${server.tlsCertFile}` : '--cacert <issuing CA file>'} -H 'content-type: application/json' \\`,
      `         -d '{"setupToken":"<token>","username":"admin","password":"<${server.passwordMinLength}+ characters of your own>"}' ${server.url}/v1/setup/admin`,
      // A new machine for a lost server must stay empty until the restore (BACKUP_SERVER_NOT_EMPTY):
      // said here, where an admin decides, not only in the restore drill (admin audit s16, F12).
      `  or restore a backup into it (then create no admin here: a restore needs an empty server):`,
      `       fieldvault-admin restore BACKUP.fvbk --identity backup-key.pem --server ${server.url} ${trust}`,
      '       (asks for the token; docs/operations.md, "Backups and restores")',
      ...(terminal ? [`  (the token is also kept, mode 0600, in ${tokenFile} until it is used)`] : []),
    );
  }
  lines.push('', 'Press Ctrl-C to stop.', '');
  return `${lines.filter((l): l is string => l !== null).join('\n')}\n`;
}
