import { randomUUID } from 'node:crypto';
import t from 'tap';
import { defaultChildForm, type FormDefinition } from '@fieldvault/protocol';
import { bearer, json, makeApp, setupAdmin, startStore } from './helpers.js';
import { newRecord, phoneFor, push } from './sync-helpers.js';

// Issue 5 item 5: GET /v1/forms/child; pushed records are validated against the published form.
const couch = await startStore(t);

t.test('the server publishes the default child form', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token } = await setupAdmin(app);
  const res = await app.inject({ method: 'GET', url: '/v1/forms/child', headers: bearer(token) });
  t.equal(res.statusCode, 200);
  t.same(res.json(), defaultChildForm);
});

t.test('a configured form is published and enforced on push', async (t) => {
  const form: FormDefinition = {
    id: 'child',
    version: 2,
    fields: [
      { name: 'name', type: 'string', required: true, maxLength: 50 },
      { name: 'camp', type: 'select', options: ['north', 'south'] },
    ],
  };
  const { app, clock } = await makeApp(t, couch, { childForm: form });
  const { token: admin } = await setupAdmin(app);
  t.same((await app.inject({ method: 'GET', url: '/v1/forms/child', headers: bearer(admin) })).json(), form);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const res = await push(app, amina.token, [
    newRecord(amina, { name: 'A', camp: 'north' }),
    newRecord(amina, { name: 'B', camp: 'east' }),
    newRecord(amina, { name: 'C', age: 4 }),
  ]);
  t.same(res.results.map((r) => [r.status, r.code ?? null, r.field ?? null]), [
    ['ok', null, null],
    ['error', 'RECORD_INVALID', 'camp'],
    ['error', 'RECORD_INVALID', 'age'],
  ]);
});

t.test('an invalid configured form stops the server at start-up', async (t) => {
  const bad = { id: 'child', version: 1, fields: [{ name: 'x', type: 'select' }] } as unknown as FormDefinition;
  await t.rejects(makeApp(t, couch, { childForm: bad }), { code: 'CONFIG_INVALID' });
});

t.test('every sync, photo, search and form route needs a session', async (t) => {
  const { app } = await makeApp(t, couch);
  const id = randomUUID();
  const routes: Array<[string, string, unknown?]> = [
    ['POST', '/v1/sync/push', { records: [] }],
    ['GET', '/v1/sync/pull'],
    ['GET', `/v1/photos/${id}`],
    ['HEAD', `/v1/photos/${id}`],
    ['GET', `/v1/photos/${id}/upload?record=${id}`],
    ['PUT', `/v1/photos/${id}?record=${id}`, Buffer.from([0xff, 0xd8, 0xff])],
    ['GET', '/v1/records/search?name=a'],
    ['GET', '/v1/forms/child'],
  ];
  for (const [method, url, payload] of routes) {
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: 'Bearer not-a-token', ...(Buffer.isBuffer(payload) ? { 'content-type': 'application/octet-stream' } : {}) },
      ...(payload === undefined ? {} : { payload: payload as string }),
    });
    t.equal(res.statusCode, 401, `${method} ${url}`);
    if (method !== 'HEAD') t.equal(json(res)['code'], 'SESSION_INVALID', `${method} ${url}`);
    t.equal(res.headers['www-authenticate'], 'Bearer');
  }
});
