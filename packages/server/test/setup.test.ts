import t, { type Test } from 'tap';
import type { FastifyInstance } from 'fastify';
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

// Crash audit s16 #1: a kill between setup's two writes (the claim, then the admin) left the claim
// alone, and the server answered AUTH_SETUP_COMPLETED with no admin to log in as. Here the store
// is left exactly as that kill leaves it: the claim document as the route writes it, no user.
async function crashedMidSetup(t: Test, app: FastifyInstance): Promise<void> {
  t.ok(await app.repo.claimSetup(app.now(), 'admin'), 'the claim is written as the route writes it');
  t.equal(await app.repo.getUser('admin'), undefined, 'and the admin never was');
}

t.test('a setup claim without its admin (a crash mid-setup) is stale: the token still creates the admin, once', async (t) => {
  const { app } = await makeApp(t, couch);
  await crashedMidSetup(t, app);
  t.equal(await app.repo.isSetupComplete(), false, 'setup is not done while no admin exists');
  const res = await app.inject(setup({ setupToken: SETUP_TOKEN, username: 'root', password: ADMIN_PASSWORD }));
  t.equal(res.statusCode, 201, JSON.stringify(json(res)));
  t.equal(await app.repo.isSetupComplete(), true);
  t.match(await app.repo.getSetupClaim(), { username: 'root' }, 'the claim now names the admin that exists');
  await t.resolves(login(app, newDevice(), { username: 'root', password: ADMIN_PASSWORD }), 'the admin can log in');
  const again = await app.inject(setup({ setupToken: SETUP_TOKEN, username: 'admin', password: ADMIN_PASSWORD }));
  t.equal(json(again)['code'], 'AUTH_SETUP_COMPLETED', 'the token is single-use once an admin exists');
  t.equal(await app.repo.getUser('admin'), undefined);
});

t.test('concurrent setup calls over a stale claim create exactly one admin', async (t) => {
  const { app } = await makeApp(t, couch);
  await crashedMidSetup(t, app);
  const names = ['r1', 'r2', 'r3', 'r4'];
  const results = await Promise.all(names.map((username) => app.inject(setup({ setupToken: SETUP_TOKEN, username, password: ADMIN_PASSWORD }))));
  t.equal(results.filter((r) => r.statusCode === 201).length, 1);
  t.equal(results.filter((r) => json(r)['code'] === 'AUTH_SETUP_COMPLETED').length, 3);
  const users = await app.repo.listUsers(10, undefined);
  t.equal(users.items.length, 1, 'one user in the store');
});

t.test('restore and setup: a stale claim does not block a restore; a completed setup does', async (t) => {
  const { app } = await makeApp(t, couch);
  const restore = () =>
    app.inject({ method: 'POST', url: '/v1/setup/restore', headers: { authorization: `Setup ${SETUP_TOKEN}`, 'content-type': 'application/x-ndjson' }, payload: 'not json\n' });
  await crashedMidSetup(t, app);
  // Past the "server not empty" checks, the archive itself is refused: nothing else stood in the way.
  t.equal(json(await restore())['code'], 'BACKUP_INVALID', 'the stale claim is no content');
  t.equal(await app.repo.getSetupClaim(), undefined, 'the restore dropped it');
  t.equal((await app.inject(setup({ setupToken: SETUP_TOKEN, username: 'root', password: ADMIN_PASSWORD }))).statusCode, 201, 'setup still works after the refused restore');
  const after = await restore();
  t.equal(json(after)['code'], 'BACKUP_SERVER_NOT_EMPTY', 'no restore once the admin exists');
});
