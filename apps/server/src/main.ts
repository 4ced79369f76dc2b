#!/usr/bin/env node
/**
 * `npm start`: reads the configuration, starts the server and prints what a new operator needs
 * (where it listens, the dev certificate to trust, how to create the first admin).
 * Ctrl-C / SIGTERM stop the listeners, the app and the embedded store cleanly.
 */
import { isFieldvaultError } from '@fieldvault/protocol';
import { loadConfig } from './config.js';
import { startServer } from './start.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const server = await startServer(config);
  const lines = [
    '',
    `fieldvault server ${server.serverId} listening on ${server.url}`,
    server.httpUrl === null ? null : `  plain HTTP on ${server.httpUrl} redirects to HTTPS`,
    `  store: ${
      server.store === 'embedded'
        ? `embedded (data in ${config.dataDir}/couch)`
        : server.storeSource === 'COUCHDB_URL'
          ? 'CouchDB at COUCHDB_URL'
          : `CouchDB at the URL in ${server.storeSource ?? '?'}`
    }`,
    `  KEK id ${server.kekId} (the KEK file ${config.kekFile}: back it up; the store needs this one)`,
    server.selfSignedTls
      ? `  TLS: self-signed development certificate ${server.tlsCertFile}`
      : `  TLS: certificate ${server.tlsCertFile}`,
    `       SHA-256 fingerprint ${server.tlsFingerprint}`,
    server.selfSignedTls
      ? '       (clients: --ca with this certificate file, or --pin with this fingerprint; or configure FIELDVAULT_TLS_CERT/KEY)'
      : '       (clients: --ca with the CA that issued it, or --pin with this fingerprint)',
    server.setupToken === null
      ? '  first admin: already set up'
      : [
          '',
          '  No admin exists yet. Create the first one with this one-time setup token:',
          `    ${server.setupToken}`,
          `  e.g. fieldvault-admin init --server ${server.url} ${server.selfSignedTls ? `--ca ${server.tlsCertFile}` : `--pin ${server.tlsFingerprint}`} --user admin`,
          '       (in this repository: npm run admin -- init …, which builds the admin CLI on first use)',
          '       (asks for the token and a password, then enrols an authenticator app for TOTP)',
          `  or   curl ${server.selfSignedTls ? `--cacert ${server.tlsCertFile}` : '--cacert <issuing CA file>'} -H 'content-type: application/json' \\`,
          `         -d '{"setupToken":"<token>","username":"admin","password":"<${server.passwordMinLength}+ characters of your own>"}' ${server.url}/v1/setup/admin`,
          '  (the token is also kept, mode 0600, in <data>/secrets/setup-token until it is used)',
        ].join('\n'),
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  process.stderr.write(`${lines.filter((l) => l !== null).join('\n')}\n`);

  let exiting = false;
  const shutdown = (signal: string, code = 0): void => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`\n${signal}: stopping fieldvault…\n`);
    server.stop().then(
      () => process.exit(code),
      (err: unknown) => {
        process.stderr.write(`error while stopping: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  void server.storeCrashed.then((reason) => {
    process.stderr.write(`\nfatal: ${reason}; acknowledged data is on disk — start the server again.\n`);
    shutdown('store crash', 1);
  });
}

main().catch((err: unknown) => {
  // Catalogued errors carry a message that says what to do; anything else is a bug.
  if (isFieldvaultError(err)) process.stderr.write(`fieldvault: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`fieldvault: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
