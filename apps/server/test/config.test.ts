import t from 'tap';
import { loadConfig } from '../src/config.js';

t.test('defaults give an HTTPS server on loopback with the embedded store', async (t) => {
  const c = loadConfig({}, '/srv/fv');
  t.equal(c.host, '127.0.0.1');
  t.equal(c.port, 8443);
  t.equal(c.httpPort, 8080);
  t.equal(c.couchdbUrl, null);
  t.equal(c.dataDir, '/srv/fv/data');
  t.equal(c.kekFile, '/srv/fv/data/secrets/kek');
  t.equal(c.passwordMinLength, 15);
  t.ok(Object.isFrozen(c));
});

t.test('every problem is reported at once, including unknown FIELDVAULT_ variables', async (t) => {
  const err = t.throws(() =>
    loadConfig({ FIELDVAULT_PORTT: '1', FIELDVAULT_PORT: 'abc', FIELDVAULT_TLS_CERT: 'c.pem', FIELDVAULT_LOG_LEVEL: 'loud' }),
  ) as { code?: string; message?: string };
  t.equal(err.code, 'CONFIG_INVALID');
  t.match(err.message, /unsupported FIELDVAULT_PORTT/);
  t.match(err.message, /FIELDVAULT_PORT must be an integer/);
  t.match(err.message, /FIELDVAULT_TLS_CERT and FIELDVAULT_TLS_KEY must be set together/);
  t.match(err.message, /FIELDVAULT_LOG_LEVEL/);
});

t.test("the other fieldvault programs' variables are not taken for typos", async (t) => {
  // A shell that runs the CLIs and the server has their home variables set.
  const c = loadConfig({ FIELDVAULT_ADMIN_HOME: '/home/a/.fv-admin', FIELDVAULT_FIELD_HOME: '/home/a/.fv-field', FIELDVAULT_EXAMPLE_PASSWORD: 'x' }, '/srv/fv');
  t.equal(c.port, 8443);
  const err = t.throws(() => loadConfig({ FIELDVAULT_FIELD_HOME: '/x', FIELDVAULT_ADMIN_HOMES: '/y' })) as { message?: string };
  t.match(err.message, /unsupported FIELDVAULT_ADMIN_HOMES/, 'a typo of them still is');
  t.notMatch(err.message ?? '', /unsupported FIELDVAULT_FIELD_HOME\b/);
});

// s17 task E: a typo used to get all ~35 supported names; now the one it most likely meant.
t.test('a mistyped variable gets the closest supported name; the whole list only when none is close', async (t) => {
  const problem = (env: NodeJS.ProcessEnv): string => (t.throws(() => loadConfig(env)) as { message?: string }).message ?? '';
  for (const [typo, meant] of [
    ['FIELDVAULT_PULL_READAHEAD', 'FIELDVAULT_PULL_READ_AHEAD'],
    ['FIELDVAULT_PROT', 'FIELDVAULT_PORT'],
    ['FIELDVAULT_RATELIMIT', 'FIELDVAULT_RATE_LIMIT'],
    ['FIELDVAULT_MAX_CONNECTION_PER_CLIENT', 'FIELDVAULT_MAX_CONNECTIONS_PER_CLIENT'],
    ['FIELDVAULT_log_level', 'FIELDVAULT_LOG_LEVEL'],
    ['FIELDVAULT_ADMIN_HOMES', 'FIELDVAULT_ADMIN_HOME'],
  ] as const) {
    const message = problem({ [typo]: '1' });
    t.match(message, `unsupported ${typo}: did you mean ${meant}?`, typo);
    t.notMatch(message, 'FIELDVAULT_SIGNUPS_PER_ADDRESS', `${typo}: not the whole list`);
  }
  t.match(problem({ FIELDVAULT_FIELD_HOEM: '/x' }), 'unsupported FIELDVAULT_FIELD_HOEM: did you mean FIELDVAULT_FIELD_HOME? (read by the field CLI, not by the server)');
  t.notMatch(problem({ FIELDVAULT_PROT: '1' }), 'not by the server', "the server's own names need no such note");
  const far = problem({ FIELDVAULT_COLOUR: 'blue' });
  t.notMatch(far, 'did you mean', 'nothing close: no guess');
  t.match(far, /unsupported FIELDVAULT_COLOUR; supported: FIELDVAULT_DATA_DIR, .*FIELDVAULT_SIGNUPS_PER_ADDRESS/, 'but the list');
});

t.test('an invalid COUCHDB_URL is reported without echoing its credentials', async (t) => {
  const err = t.throws(() => loadConfig({ COUCHDB_URL: 'not a url with s3cretpw' })) as { code?: string; message?: string };
  t.equal(err.code, 'CONFIG_INVALID');
  t.notMatch(err.message ?? '', /s3cretpw/);
});

t.test('HTTP redirect can be switched off, in any case; a bad value says "off" is possible', async (t) => {
  t.equal(loadConfig({ FIELDVAULT_HTTP_PORT: 'off' }).httpPort, null);
  t.equal(loadConfig({ FIELDVAULT_HTTP_PORT: 'OFF' }).httpPort, null);
  t.equal(loadConfig({ FIELDVAULT_HTTP_PORT: 'Off' }).httpPort, null);
  const err = t.throws(() => loadConfig({ FIELDVAULT_HTTP_PORT: 'none' })) as { message?: string };
  t.match(err.message, /FIELDVAULT_HTTP_PORT must be an integer in 0\.\.65535 or "off"/);
});

t.test('an empty FIELDVAULT_* value is an error, not the default (a value forgotten in an env file)', async (t) => {
  const err = t.throws(() => loadConfig({ FIELDVAULT_PORT: '', FIELDVAULT_KEK_FILE: '  ' })) as { code?: string; message?: string };
  t.equal(err.code, 'CONFIG_INVALID');
  t.match(err.message, /FIELDVAULT_PORT is set but empty/);
  t.match(err.message, /FIELDVAULT_KEK_FILE is set but empty/);
  // The other programs' variables are theirs to judge.
  t.equal(loadConfig({ FIELDVAULT_ADMIN_HOME: '' }, '/srv/fv').port, 8443);
});

t.test('rate limits and proxy trust are configurable for phones sharing one address', async (t) => {
  const c = loadConfig({ FIELDVAULT_AUTH_RATE_LIMIT: '600', FIELDVAULT_RATE_LIMIT: '6000', FIELDVAULT_TRUST_PROXY: 'true' });
  t.equal(c.authRateLimitPerMinute, 600);
  t.equal(c.rateLimitPerMinute, 6000);
  t.equal(c.trustProxy, true);
  const err = t.throws(() => loadConfig({ FIELDVAULT_TRUST_PROXY: 'yes' })) as { code?: string };
  t.equal(err.code, 'CONFIG_INVALID');
});

t.test('the CouchDB URL can come from a secret file (issue 7 setup), not together with COUCHDB_URL', async (t) => {
  const dir = t.testdir({ secrets: { 'couchdb-url': 'http://app:pw@127.0.0.1:5984\n' } });
  t.equal(loadConfig({ FIELDVAULT_DATA_DIR: dir }, dir).couchdbUrlFile, `${dir}/secrets/couchdb-url`, 'the default file is used when it exists');
  t.equal(loadConfig({ FIELDVAULT_DATA_DIR: `${dir}/none` }, dir).couchdbUrlFile, null, 'no file, no URL: the embedded store');
  t.equal(loadConfig({ FIELDVAULT_COUCHDB_URL_FILE: 'x/url' }, dir).couchdbUrlFile, `${dir}/x/url`);
  t.equal(loadConfig({ FIELDVAULT_DATA_DIR: dir, COUCHDB_URL: 'http://a:b@h:1' }, dir).couchdbUrlFile, null, 'COUCHDB_URL wins over the default file');
  t.throws(() => loadConfig({ FIELDVAULT_COUCHDB_URL_FILE: 'x/url', COUCHDB_URL: 'http://a:b@h:1' }, dir), { code: 'CONFIG_INVALID' });
});
