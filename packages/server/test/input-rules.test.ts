// Bad-input audit (session 16), server findings F1, F5, F6 and F9: requests a client gets wrong are
// refused with a catalogued 4xx naming what to fix, the same way on every route.
import t from 'tap';
import { SETUP_TOKEN, bearer, json, makeApp, setupAdmin, startStore } from './helpers.js';

const couch = await startStore(t);

const UUID = '0b8f7c1e-5d7a-4c1b-9f1e-2a3b4c5d6e7f';

t.test('F1: an audit query with from after to is INPUT_INVALID naming from, not an internal error', async (t) => {
  const { app, logs } = await makeApp(t, couch);
  const { token } = await setupAdmin(app);
  for (const extra of ['', '&username=admin', '&event=login.ok']) {
    const res = await app.inject({ method: 'GET', url: `/v1/audit?from=2030-01-01T00:00:00Z&to=2020-01-01T00:00:00Z${extra}`, headers: bearer(token) });
    t.equal(res.statusCode, 400, extra);
    t.equal(json(res)['code'], 'INPUT_INVALID');
    t.match(json(res)['message'], '(query.from: is after query.to)');
  }
  const same = await app.inject({ method: 'GET', url: '/v1/audit?from=2025-01-15T12:00:00Z&to=2025-01-15T12:00:00Z', headers: bearer(token) });
  t.equal(same.statusCode, 200, 'from equal to to is a range of one instant');
  t.notMatch(logs.text(), '"level":50', 'no error record');
});

t.test('F5: the restore route\'s 415 and the catalogue\'s advice agree (x-ndjson for a restore)', async (t) => {
  const { app } = await makeApp(t, couch);
  const res = await app.inject({
    method: 'POST',
    url: '/v1/setup/restore',
    headers: { authorization: `Setup ${SETUP_TOKEN}`, 'content-type': 'application/json' },
    payload: '{}',
  });
  t.equal(res.statusCode, 415);
  t.equal(json(res)['code'], 'INPUT_UNSUPPORTED_MEDIA_TYPE');
  const message = String(json(res)['message']);
  t.match(message, /application\/x-ndjson" for a restore/, 'the hint names the restore\'s type');
  t.notMatch(message, /Send JSON with/, 'and no longer tells every route to send JSON');
});

t.test('F6: numeric query parameters must be plain decimal on every route that takes one', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token } = await setupAdmin(app);
  const routes = [
    '/v1/users?',
    '/v1/devices?',
    '/v1/audit?',
    '/v1/signups?',
    `/v1/signups/admin?`,
    '/v1/sync/pull?',
    '/v1/records/search?',
    '/v1/admin/records/digests?',
  ];
  for (const route of routes) {
    for (const text of ['0x10', '1e1', '+16', '%2016', '16%20', '0b1', '']) {
      const res = await app.inject({ method: 'GET', url: `${route}limit=${text}`, headers: bearer(token) });
      t.equal(res.statusCode, 400, `${route}limit=${text}`);
      t.equal(json(res)['code'], 'INPUT_INVALID');
      t.match(json(res)['message'], '(query.limit: ', 'names the parameter');
    }
    const ok = await app.inject({ method: 'GET', url: `${route}limit=16`, headers: bearer(token) });
    t.not(json(ok)['code'], 'INPUT_INVALID', `${route}limit=16 is still accepted`);
  }
  // A number that may have a fraction: decimal with a point, never an exponent.
  t.equal((await app.inject({ method: 'GET', url: '/v1/records/search?ageMin=1.5', headers: bearer(token) })).statusCode, 200);
  const exp = await app.inject({ method: 'GET', url: '/v1/records/search?ageMin=1e1', headers: bearer(token) });
  t.equal(json(exp)['code'], 'INPUT_INVALID');
  t.match(json(exp)['message'], '(query.ageMin: ');
  // The photo upload's offset: refused before anything is read or stored.
  const put = await app.inject({
    method: 'PUT',
    url: `/v1/photos/${UUID}?record=${UUID}&offset=0x10`,
    headers: { ...bearer(token), 'content-type': 'image/jpeg' },
    payload: Buffer.alloc(16),
  });
  t.equal(put.statusCode, 400);
  t.equal(json(put)['code'], 'INPUT_INVALID');
  t.match(json(put)['message'], '(query.offset: ');
  // Out of range stays a range error.
  const negative = await app.inject({ method: 'GET', url: '/v1/users?limit=-1', headers: bearer(token) });
  t.match(json(negative)['message'], '(query.limit: must be >= 1)');
});

t.test('F6: a JSON body that declares a charset other than UTF-8 is refused with 415', async (t) => {
  const { app } = await makeApp(t, couch);
  const payload = JSON.stringify({ imei: '356938035643809' });
  for (const type of ['application/json; charset=latin1', 'application/json; charset="iso-8859-1"', 'application/json;charset=utf-16', 'application/json; charset=utf-8; charset=latin1']) {
    const res = await app.inject({ method: 'POST', url: '/v1/auth/challenge', headers: { 'content-type': type }, payload });
    t.equal(res.statusCode, 415, type);
    t.equal(json(res)['code'], 'INPUT_UNSUPPORTED_MEDIA_TYPE');
    t.match(json(res)['message'], 'a JSON body must be UTF-8');
  }
  for (const type of ['application/json', 'application/json; charset=utf-8', 'application/json; charset=UTF-8', 'application/json;charset="utf-8"']) {
    const res = await app.inject({ method: 'POST', url: '/v1/auth/challenge', headers: { 'content-type': type }, payload });
    t.equal(res.statusCode, 200, type);
  }
});

t.test('F9: the authorization scheme is case-insensitive (RFC 9110)', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token } = await setupAdmin(app);
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    const res = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: { authorization: `${scheme} ${token}` } });
    t.equal(res.statusCode, 200, scheme);
  }
  for (const header of [`Bearer${token}`, `Basic ${token}`, `Bearer ${token} x`, `Bearer ${token.slice(1)}`, `${token}`]) {
    const res = await app.inject({ method: 'GET', url: '/v1/auth/session', headers: { authorization: header } });
    t.equal(json(res)['code'], 'SESSION_INVALID', 'anything else is still refused');
  }
});

t.test('F9: the Setup scheme of a restore is case-insensitive too', async (t) => {
  const { app } = await makeApp(t, couch);
  const restore = (authorization: string) =>
    app.inject({ method: 'POST', url: '/v1/setup/restore', headers: { authorization, 'content-type': 'application/json' }, payload: '{}' });
  // The token is accepted, so the request goes on to the next check (the archive's content type).
  t.equal(json(await restore(`setup ${SETUP_TOKEN}`))['code'], 'INPUT_UNSUPPORTED_MEDIA_TYPE');
  t.equal(json(await restore(`SETUP ${SETUP_TOKEN}`))['code'], 'INPUT_UNSUPPORTED_MEDIA_TYPE');
  t.equal(json(await restore(`setup ${SETUP_TOKEN}x`))['code'], 'AUTH_SETUP_TOKEN_INVALID');
  t.equal(json(await restore(`Bearer ${SETUP_TOKEN}`))['code'], 'AUTH_SETUP_TOKEN_INVALID');
});

t.test('F9: an unknown query parameter is refused on every route, naming it', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token, device } = await setupAdmin(app);
  const routes = [
    ['GET', '/v1/auth/session'],
    ['GET', '/v1/users/admin'],
    ['GET', `/v1/devices/${device.imei}`],
    ['GET', '/v1/admin/backup/inventory'],
    ['GET', '/v1/admin/records/digest'],
    ['GET', `/v1/photos/${UUID}`],
    ['GET', '/v1/forms/child'],
    ['GET', '/v1/users'],
    ['POST', '/v1/auth/logout'],
    ['POST', `/v1/devices/${device.imei}/rekey`],
  ] as const;
  for (const [method, url] of routes) {
    const res = await app.inject({ method, url: `${url}?cachebuster=1`, headers: bearer(token), ...(method === 'POST' ? { payload: {} } : {}) });
    t.equal(res.statusCode, 400, `${method} ${url}`);
    t.equal(json(res)['code'], 'INPUT_INVALID');
    t.match(json(res)['message'], '(query.cachebuster: unknown parameter', 'names the parameter');
  }
  // A name that looks like a token is refused without being echoed.
  const secret = 'A'.repeat(43);
  const res = await app.inject({ method: 'GET', url: `/v1/auth/session?${secret}`, headers: bearer(token) });
  t.equal(json(res)['code'], 'INPUT_INVALID');
  t.notMatch(res.body, secret);
  // Without a query the routes answer as before.
  t.equal((await app.inject({ method: 'GET', url: '/v1/auth/session', headers: bearer(token) })).statusCode, 200);
  t.equal((await app.inject({ method: 'GET', url: '/v1/forms/child', headers: bearer(token) })).statusCode, 200);
});

t.test('F9: a sign-up list cursor that is not a username is INPUT_INVALID, like the other lists', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token } = await setupAdmin(app);
  for (const cursor of ['not%20a%20username', 'Upper', '%00', 'x'.repeat(65)]) {
    const res = await app.inject({ method: 'GET', url: `/v1/signups?cursor=${cursor}`, headers: bearer(token) });
    t.equal(json(res)['code'], 'INPUT_INVALID', cursor);
    t.match(json(res)['message'], '(query.cursor: ');
  }
  t.equal((await app.inject({ method: 'GET', url: '/v1/signups?cursor=amina', headers: bearer(token) })).statusCode, 200, 'a username is a cursor');
});
