import t from 'tap';
import nano from 'nano';
import { randomBytes } from 'node:crypto';
import { fromBase64, openWithKek, toHex } from '@fieldvault/crypto';
import {
  bearer,
  createUser,
  getChallenge,
  json,
  login,
  loginPayload,
  loginRaw,
  makeApp,
  newDevice,
  setupAdmin,
  startStore,
  storeSnapshot,
} from './helpers.js';

// Issue 3 item 8: input hardening; secrets never in logs, error bodies or the store.
const couch = await startStore(t);

t.test('bad inputs get a catalogued 4xx and leave every database unchanged', async (t) => {
  const { app, config } = await makeApp(t, couch, { bodyLimit: 4096 });
  const { token: admin } = await setupAdmin(app);
  await createUser(app, admin, 'alice');
  const prefix = config.couch.dbPrefix as string;
  const before = await storeSnapshot(couch.url, prefix);
  const raw = (payload: string, url = '/v1/users', headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json', ...bearer(admin), ...headers } });

  const cases: Array<[string, Promise<{ statusCode: number; body: string }>, string]> = [
    ['malformed JSON', raw('{"username": "bob", "role": '), 'INPUT_MALFORMED_JSON'],
    ['empty body', raw(''), 'INPUT_MALFORMED_JSON'],
    ['duplicate keys', raw('{"username": "bob", "role": "field_worker", "role": "admin"}'), 'INPUT_MALFORMED_JSON'],
    ['nested duplicate keys', raw('{"imei": "123456789012345", "x": {"a": 1, "a": 2}}', '/v1/auth/challenge'), 'INPUT_MALFORMED_JSON'],
    ['__proto__', raw('{"username": "bob", "role": "field_worker", "__proto__": {"role": "admin"}}'), 'INPUT_MALFORMED_JSON'],
    ['escaped __proto__', raw('{"username": "bob", "role": "field_worker", "\\u005f_proto__": {}}'), 'INPUT_MALFORMED_JSON'],
    ['constructor', raw('{"username": "bob", "role": "field_worker", "constructor": {"prototype": {}}}'), 'INPUT_MALFORMED_JSON'],
    ['deep nesting', raw(`${'['.repeat(100)}${']'.repeat(100)}`), 'INPUT_MALFORMED_JSON'],
    ['oversized body', raw(JSON.stringify({ username: 'bob', role: 'field_worker', pad: 'x'.repeat(5000) })), 'INPUT_TOO_LARGE'],
    ['unknown field', raw(JSON.stringify({ username: 'bob', role: 'field_worker', isAdmin: true })), 'INPUT_INVALID'],
    ['wrong type', raw(JSON.stringify({ username: 'bob', role: 1 })), 'INPUT_INVALID'],
    ['unknown role', raw(JSON.stringify({ username: 'bob', role: 'root' })), 'INPUT_INVALID'],
    ['bad username', raw(JSON.stringify({ username: 'Bob Smith', role: 'field_worker' })), 'INPUT_INVALID'],
    ['not JSON', raw('username=bob', '/v1/users', { 'content-type': 'application/x-www-form-urlencoded' }), 'INPUT_UNSUPPORTED_MEDIA_TYPE'],
    ['bad IMEI in a path', app.inject({ method: 'GET', url: '/v1/devices/12345', headers: bearer(admin) }), 'INPUT_ID_INVALID'],
    ['IMEI with letters in a path', app.inject({ method: 'POST', url: '/v1/devices/35000000000000a/blacklist', headers: bearer(admin), payload: {} }), 'INPUT_ID_INVALID'],
    ['selector-like username in a path', app.inject({ method: 'GET', url: `/v1/users/${encodeURIComponent('{"$gt":null}')}`, headers: bearer(admin) }), 'INPUT_ID_INVALID'],
    ['bad query value', app.inject({ method: 'GET', url: '/v1/audit?limit=100000', headers: bearer(admin) }), 'INPUT_INVALID'],
    ['unknown query field', app.inject({ method: 'GET', url: '/v1/audit?selector=x', headers: bearer(admin) }), 'INPUT_INVALID'],
    ['forged cursor', app.inject({ method: 'GET', url: `/v1/audit?cursor=${Buffer.from('["x",1,"y"]').toString('base64url')}`, headers: bearer(admin) }), 'INPUT_INVALID'],
    ['unknown route', app.inject({ method: 'GET', url: '/v1/nothing-here' }), 'INPUT_ROUTE_NOT_FOUND'],
    ['bad IMEI in a challenge', raw(JSON.stringify({ imei: '1234' }), '/v1/auth/challenge'), 'INPUT_INVALID'],
  ];
  for (const [name, pending, code] of cases) {
    const res = await pending;
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${name}: 4xx (${res.statusCode})`);
    t.equal((JSON.parse(res.body) as { code: string }).code, code, `${name}: ${code}`);
  }
  t.same(await storeSnapshot(couch.url, prefix), before, 'no database changed');
  const users = json(await app.inject({ method: 'GET', url: '/v1/users', headers: bearer(admin) }))['users'] as Array<{ username: string }>;
  t.same(users.map((u) => u.username).sort(), ['admin', 'alice'], 'no user was created');
});

t.test('a login body with extra fields or a half key offer is refused', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const device = newDevice();
  const extra = { ...loginPayload(device, { username: 'alice', password }, await getChallenge(app, device.imei)), role: 'admin' };
  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: extra });
  t.equal(json(res)['code'], 'INPUT_INVALID');
  const half = await app.inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload: { ...loginPayload(device, { username: 'alice', password }, await getChallenge(app, device.imei)), dbKey: 'A'.repeat(43) + '=' },
  });
  t.equal(json(half)['code'], 'INPUT_INVALID');
});

t.test('a canary password, token and DB key never appear in logs, error bodies or the store', async (t) => {
  const { app, logs, config } = await makeApp(t, couch, { logLevel: 'trace' });
  const { token: admin } = await setupAdmin(app);
  const canaryPassword = 'canary-PASSWORD-7f3a9c quiet meadow';
  const created = await app.inject({ method: 'POST', url: '/v1/users', headers: bearer(admin), payload: { username: 'alice', role: 'field_worker' } });
  const invitation = (json(created)['invitation'] as { token: string }).token;
  await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken: invitation, password: canaryPassword } });
  const device = newDevice();
  const session = await login(app, device, { username: 'alice', password: canaryPassword });
  const dbKeyBytes = fromBase64(session.key.dbKey);

  // Error paths that carry the secrets in their input.
  const failures = [
    await loginRaw(app, device, { username: 'alice', password: `${canaryPassword}-wrong` }),
    await loginRaw(app, device, { username: 'nobody', password: canaryPassword }),
    await app.inject({ method: 'POST', url: '/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: `{"password": "${canaryPassword}", "password": 1` }),
    await app.inject({ method: 'POST', url: '/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: `{"dbKey": "${session.key.dbKey}", ` }),
    await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken: invitation, password: canaryPassword } }),
    await app.inject({ method: 'GET', url: '/v1/users', headers: { authorization: `Bearer ${session.token}` } }),
    await app.inject({ method: 'GET', url: '/v1/auth/session', headers: { authorization: `Bearer ${session.token}x` } }),
  ];
  await app.inject({ method: 'POST', url: '/v1/auth/logout', headers: bearer(session.token) });

  const secrets: Array<[string, string]> = [
    ['password', canaryPassword],
    ['session token', session.token],
    ['invitation token', invitation],
    ['DB key (base64)', session.key.dbKey],
    ['DB key (base64url)', Buffer.from(dbKeyBytes).toString('base64url')],
    ['DB key (hex)', toHex(dbKeyBytes)],
  ];
  const logText = logs.text();
  t.ok(logText.length > 1000, 'the app logged');
  for (const [name, secret] of secrets) {
    t.notOk(logText.includes(secret), `${name} not in the logs`);
    for (const res of failures) t.notOk(res.body.includes(secret), `${name} not in an error body (${res.statusCode})`);
  }

  // A dump of every database holds no usable key, no password, no token.
  const server = nano(couch.url);
  let dump = '';
  for (const name of ['users', 'devices', 'sessions', 'audit']) {
    const all = await server.use(`${config.couch.dbPrefix as string}${name}`).list({ include_docs: true });
    dump += JSON.stringify(all.rows);
  }
  for (const [name, secret] of secrets) t.notOk(dump.includes(secret), `${name} not in the store`);
  const deviceDoc = await server.use<{ key: { sealed: string; record: { keyId: string } } }>(`${config.couch.dbPrefix as string}devices`).get(`device:${device.imei}`);
  t.match(deviceDoc.key.sealed, /^fv1/, 'the stored key is an envelope');
  t.equal(deviceDoc.key.record.keyId, session.key.record.keyId);
  t.notOk(Buffer.from(JSON.stringify(deviceDoc)).includes(Buffer.from(dbKeyBytes)), 'the raw key bytes are absent');
});

t.test('the store cannot open a sealed key with another KEK', async (t) => {
  const first = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(first.app);
  const password = await createUser(first.app, admin, 'alice');
  const device = newDevice();
  await login(first.app, device, { username: 'alice', password });
  const prefix = first.config.couch.dbPrefix as string;
  await first.app.close();
  // Same databases, wrong KEK: the server refuses to start (kek-guard.test.ts), so no login can
  // even try; the sealed key itself must not open under another KEK.
  await t.rejects(makeApp(t, couch, { couch: { dbPrefix: prefix } }), { code: 'CONFIG_KEK_MISMATCH' });
  const deviceDoc = await nano(couch.url).use<{ key: { sealed: string } }>(`${prefix}devices`).get(`device:${device.imei}`);
  t.throws(() => openWithKek(new Uint8Array(randomBytes(32)), deviceDoc.key.sealed, `x`), { code: 'CRYPTO_ENVELOPE_INVALID' });
});
