// The start-up banner: the setup token only on a terminal (operator audit #6), the store's prefix,
// the version, the certificate's expiry and restoring into a fresh server (admin audit s16, F6/F9/F12).
import t from 'tap';
import { startBanner } from '../src/banner.js';

const server = {
  url: 'https://127.0.0.1:8443',
  httpUrl: null,
  serverId: 'server-a',
  version: '0.1.0',
  tlsFingerprint: 'AA:BB',
  tlsKeyPin: 'sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=',
  selfSignedTls: true,
  tlsCertFile: '/srv/fv/tls/dev-cert.pem',
  tlsNotice: null,
  setupToken: 'tok_abcdefghijklmnopqrstuvwxyz0123456789ABCD',
  store: 'embedded' as const,
  storeSource: null,
  kekId: '3b7661b6',
  passwordMinLength: 15,
};
const config = { dataDir: '/srv/fv', kekFile: '/srv/fv/secrets/kek', couchDbPrefix: 'fieldvault_' };

t.test('a terminal sees the token; any other output only the file that holds it', async (t) => {
  const shown = startBanner(server, config, true);
  t.match(shown, `one-time setup token:\n    ${server.setupToken}\n`);
  t.match(shown, 'also kept, mode 0600, in /srv/fv/secrets/setup-token');
  const piped = startBanner(server, config, false);
  t.notOk(piped.includes(server.setupToken), 'no token where logs may keep it');
  t.match(piped, 'one-time setup token in /srv/fv/secrets/setup-token');
  t.match(piped, 'cat /srv/fv/secrets/setup-token');
  t.match(piped, 'fieldvault-admin init --server https://127.0.0.1:8443 --ca /srv/fv/tls/dev-cert.pem --user admin');
});

t.test('once an admin exists there is no token to show', async (t) => {
  const banner = startBanner({ ...server, setupToken: null }, config, true);
  t.match(banner, 'first admin: already set up');
  t.notMatch(banner, /setup token/);
});

t.test('a CouchDB store is shown with the database prefix (several servers may share one CouchDB)', async (t) => {
  const banner = startBanner({ ...server, store: 'couchdb', storeSource: 'COUCHDB_URL' }, { ...config, couchDbPrefix: 'fvb_' }, false);
  t.match(banner, 'store: CouchDB at COUCHDB_URL, databases fvb_*');
  t.match(startBanner(server, config, false), 'store: embedded (data in /srv/fv/couch)');
});

t.test('a fresh server offers restoring a backup into it, with the address and the certificate to trust', async (t) => {
  for (const terminal of [true, false]) {
    const banner = startBanner(server, config, terminal);
    t.match(banner, 'No admin exists yet. Create the first one — or restore a backup into it — with ');
    t.match(banner, 'or restore a backup into it (then create no admin here: a restore needs an empty server):');
    t.match(banner, 'fieldvault-admin restore BACKUP.fvbk --identity backup-key.pem --server https://127.0.0.1:8443 --ca /srv/fv/tls/dev-cert.pem\n');
  }
  t.match(startBanner({ ...server, selfSignedTls: false }, config, false), '--server https://127.0.0.1:8443 --pin AA:BB\n');
  t.notMatch(startBanner({ ...server, setupToken: null }, config, false), /restore/, 'not once an admin exists');
});

t.test('the version is named; a certificate notice is shown as WARNING or ERROR', async (t) => {
  t.match(startBanner(server, config, false), '\n  version: fieldvault-server 0.1.0\n');
  t.notMatch(startBanner(server, config, false), /WARNING|ERROR/);
  const notice = { notAfter: '2026-07-01T00:00:00.000Z', text: 'the TLS certificate … expires in 3 days' };
  t.match(startBanner({ ...server, tlsNotice: { ...notice, level: 'warn', daysLeft: 3 } }, config, false), '\n  WARNING: the TLS certificate … expires in 3 days\n');
  t.match(startBanner({ ...server, tlsNotice: { ...notice, level: 'error', daysLeft: -1 } }, config, false), '\n  ERROR: the TLS certificate … expires in 3 days\n');
});
