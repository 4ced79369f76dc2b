import t from 'tap';
import { ADMIN_PASSWORD, SETUP_TOKEN, json, login, makeApp, newDevice, startStore } from './helpers.js';

// Issue 3: no default credentials; the first admin comes from a one-time setup token.
const couch = await startStore(t);

const setup = (payload: object) => ({ method: 'POST' as const, url: '/v1/setup/admin', payload });

t.test('the setup token creates the first admin once; afterwards setup is gone', async (t) => {
  const { app } = await makeApp(t, couch);
  t.equal(await app.repo.isSetupComplete(), false);
  const res = await app.inject(setup({ setupToken: SETUP_TOKEN, username: 'root', password: ADMIN_PASSWORD }));
  t.equal(res.statusCode, 201);
  t.match(json(res)['user'], { username: 'root', role: 'admin', disabled: false, hasPassword: true, createdBy: 'setup' });
  t.equal(await app.repo.isSetupComplete(), true);
  const again = await app.inject(setup({ setupToken: SETUP_TOKEN, username: 'root2', password: ADMIN_PASSWORD }));
  t.equal(again.statusCode, 410);
  t.equal(json(again)['code'], 'AUTH_SETUP_COMPLETED');
  const wrongAfter = await app.inject(setup({ setupToken: 'x', username: 'root3', password: ADMIN_PASSWORD }));
  t.equal(json(wrongAfter)['code'], 'AUTH_SETUP_COMPLETED');
  await t.resolves(login(app, newDevice(), { username: 'root', password: ADMIN_PASSWORD }), 'the admin can log in');
});

t.test('a wrong setup token, or none configured, is refused', async (t) => {
  const { app } = await makeApp(t, couch);
  const wrong = await app.inject(setup({ setupToken: `${SETUP_TOKEN}x`, username: 'root', password: ADMIN_PASSWORD }));
  t.equal(wrong.statusCode, 403);
  t.equal(json(wrong)['code'], 'AUTH_SETUP_TOKEN_INVALID');
  const none = await makeApp(t, couch, { setupToken: null });
  const res = await none.app.inject(setup({ setupToken: SETUP_TOKEN, username: 'root', password: ADMIN_PASSWORD }));
  t.equal(json(res)['code'], 'AUTH_SETUP_TOKEN_INVALID');
});

t.test('the first admin password follows the policy and setup stays open after a refusal', async (t) => {
  const { app } = await makeApp(t, couch);
  const short = await app.inject(setup({ setupToken: SETUP_TOKEN, username: 'root', password: 'short' }));
  t.equal(json(short)['code'], 'PASSWORD_TOO_SHORT');
  const common = await app.inject(setup({ setupToken: SETUP_TOKEN, username: 'root', password: 'qwertyuiopasdfghjkl' }));
  t.equal(json(common)['code'], 'PASSWORD_TOO_COMMON');
  const ok = await app.inject(setup({ setupToken: SETUP_TOKEN, username: 'root', password: ADMIN_PASSWORD }));
  t.equal(ok.statusCode, 201);
});

t.test('concurrent setup calls create exactly one admin', async (t) => {
  const { app } = await makeApp(t, couch);
  const results = await Promise.all(
    ['r1', 'r2', 'r3'].map((username) => app.inject(setup({ setupToken: SETUP_TOKEN, username, password: ADMIN_PASSWORD }))),
  );
  t.equal(results.filter((r) => r.statusCode === 201).length, 1);
  t.equal(results.filter((r) => json(r)['code'] === 'AUTH_SETUP_COMPLETED').length, 2);
});
