import t from 'tap';
import { resolveConfig } from '../src/config.js';

// Issue 3: configuration is validated once, with defaults, every problem listed.
const kek = new Uint8Array(32).fill(7);

t.test('defaults are filled in and strong', async (t) => {
  const c = resolveConfig({ couch: { url: 'http://127.0.0.1:5984' }, kek, serverId: 'server-a' });
  t.equal(c.couch.dbPrefix, 'fieldvault_');
  t.same(c.password, { minLength: 15, maxLength: 256 });
  t.same(c.argon2, { memoryKiB: 65536, timeCost: 3, parallelism: 1, isolation: 'process', niceness: 10, maxQueued: 32, maxQueuedPerClient: 4 });
  t.same(c.http, { requestTimeoutMs: 300_000, connectionTimeoutMs: 120_000, maxConnections: 800, maxConnectionsPerClient: 64 });
  t.same(c.signups, { maxBytes: 2_097_152, maxRecords: 500, quarantineMaxRecords: 500, quarantineMaxBytes: 2_097_152, maxPending: 100, perClientPerHour: 5 });
  t.equal(c.maxSkewMs, 300_000);
  t.equal(c.throttle.maxFailures, 10);
  t.equal(c.session.ttlSeconds, 43_200);
  t.equal(c.bodyLimit, 1_048_576);
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.password), 'frozen');
  t.not(c.kek, kek, 'the KEK is copied');
  t.same(c.kek, kek);
});

t.test('every problem is listed at once, by setting name, without values', async (t) => {
  try {
    resolveConfig({
      couch: { url: 'ftp://x', dbPrefix: 'Bad Prefix' },
      kek: new Uint8Array(16),
      serverId: 'Server A',
      password: { minLength: 4 },
      throttle: { maxFailures: 500 },
      setupToken: 'short',
    });
    t.fail('accepted');
  } catch (err) {
    const e = err as { code: string; message: string };
    t.equal(e.code, 'CONFIG_INVALID');
    for (const name of ['couch.url', 'couch.dbPrefix', 'kek', 'serverId', 'password.minLength', 'throttle.maxFailures', 'setupToken']) {
      t.match(e.message, name, `names ${name}`);
    }
    t.notMatch(e.message, /ftp:\/\/x|Bad Prefix|Server A/, 'values are not echoed');
  }
});

t.test('unknown settings and inconsistent bounds are refused', async (t) => {
  t.throws(() => resolveConfig({ couch: { url: 'http://h' }, kek, serverId: 's', extra: 1 } as never), { code: 'CONFIG_INVALID' });
  t.throws(() => resolveConfig({ couch: { url: 'http://h' }, kek, serverId: 's', password: { minLength: 100, maxLength: 64 } }), { code: 'CONFIG_INVALID' });
});

t.test('argon2 isolation and niceness are checked', async (t) => {
  const base = { couch: { url: 'http://127.0.0.1:5984' }, kek, serverId: 'server-a' };
  t.throws(() => resolveConfig({ ...base, argon2: { niceness: 20 } }), { code: 'CONFIG_INVALID' });
  t.throws(() => resolveConfig({ ...base, argon2: { niceness: -1 } }), { code: 'CONFIG_INVALID' });
  t.throws(() => resolveConfig({ ...base, argon2: { isolation: 'worker' as 'process' } }), { code: 'CONFIG_INVALID' });
  t.equal(resolveConfig({ ...base, argon2: { isolation: 'threadpool', niceness: 19 } }).argon2.niceness, 19);
});
