// The settings of security audit M1/M3/M4/L1: defaults, parsing, and refusal of bad values.
import t from 'tap';
import { loadConfig } from '../src/config.js';

t.test('connection, login-queue and sign-up limits have safe defaults', async (t) => {
  const c = loadConfig({}, '/srv/fv');
  t.equal(c.requestTimeoutMs, 300_000);
  t.equal(c.idleTimeoutMs, 120_000);
  t.equal(c.maxConnections, 800);
  t.equal(c.maxConnectionsPerClient, 64);
  t.equal(c.loginQueuePerClient, 4);
  t.same(c.publicHosts, []);
  t.same(c.signups, { maxBytes: 2_097_152, maxRecords: 500, quarantineMaxRecords: 500, quarantineMaxBytes: 2_097_152, maxPending: 100, perClientPerHour: 5 });
});

t.test('they are read from the environment', async (t) => {
  const c = loadConfig({
    FIELDVAULT_REQUEST_TIMEOUT: '600',
    FIELDVAULT_IDLE_TIMEOUT: '30',
    FIELDVAULT_MAX_CONNECTIONS: '0',
    FIELDVAULT_MAX_CONNECTIONS_PER_CLIENT: '200',
    FIELDVAULT_LOGIN_QUEUE_PER_CLIENT: '8',
    FIELDVAULT_PUBLIC_HOST: 'FV.example.org, 192.0.2.4 ,[2001:db8::1]',
    FIELDVAULT_SIGNUP_MAX_BYTES: '65536',
    FIELDVAULT_SIGNUP_MAX_RECORDS: '50',
    FIELDVAULT_SIGNUP_QUARANTINE_RECORDS: '60',
    FIELDVAULT_SIGNUP_QUARANTINE_BYTES: '1000000',
    FIELDVAULT_SIGNUP_MAX_PENDING: '20',
    FIELDVAULT_SIGNUPS_PER_ADDRESS: '2',
  });
  t.equal(c.requestTimeoutMs, 600_000);
  t.equal(c.idleTimeoutMs, 30_000);
  t.equal(c.maxConnections, 0);
  t.equal(c.maxConnectionsPerClient, 200);
  t.equal(c.loginQueuePerClient, 8);
  t.same(c.publicHosts, ['fv.example.org', '192.0.2.4', '[2001:db8::1]']);
  t.same(c.signups, { maxBytes: 65_536, maxRecords: 50, quarantineMaxRecords: 60, quarantineMaxBytes: 1_000_000, maxPending: 20, perClientPerHour: 2 });
});

t.test('bad values are all reported at once', async (t) => {
  const err = t.throws(() =>
    loadConfig({ FIELDVAULT_REQUEST_TIMEOUT: '0', FIELDVAULT_LOGIN_QUEUE_PER_CLIENT: 'many', FIELDVAULT_PUBLIC_HOST: 'evil.example.com/path', FIELDVAULT_SIGNUP_MAX_BYTES: '10' }),
  ) as { code?: string; message?: string };
  t.equal(err.code, 'CONFIG_INVALID');
  t.match(err.message, /FIELDVAULT_REQUEST_TIMEOUT must be an integer in 1\.\.3600/);
  t.match(err.message, /FIELDVAULT_LOGIN_QUEUE_PER_CLIENT must be an integer/);
  t.match(err.message, /FIELDVAULT_PUBLIC_HOST: "evil\.example\.com\/path" is not a host name/);
  t.match(err.message, /FIELDVAULT_SIGNUP_MAX_BYTES must be an integer/);
});
