// The start-up banner: the setup token only on a terminal (operator audit #6), the store's prefix.
import t from 'tap';
import { startBanner } from '../src/banner.js';

const server = {
  url: 'https://127.0.0.1:8443',
  httpUrl: null,
  serverId: 'server-a',
  tlsFingerprint: 'AA:BB',
  selfSignedTls: true,
  tlsCertFile: '/srv/fv/tls/dev-cert.pem',
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
