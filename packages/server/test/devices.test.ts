import t from 'tap';
import { bearer, createUser, json, login, loginRaw, makeApp, newDevice, setupAdmin, startStore } from './helpers.js';

// Issue 3 item 6 and 8: the admin devices API, and roles checked on every admin route.
const couch = await startStore(t);

interface DeviceView {
  imei: string;
  status: string;
  bound: boolean;
  boundAt: string | null;
  firstSeenAt: string;
  lastSeenAt: string;
  usersSeen: string[];
  key: { imei: string; keyId: string; issuedAt: string; issuer: string } | null;
}

t.test('admins list and show devices without any key material', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin, device: adminPhone } = await setupAdmin(app);
  const alice = await createUser(app, admin, 'alice');
  const bob = await createUser(app, admin, 'bob');
  const phone = newDevice();
  const first = await login(app, phone, { username: 'alice', password: alice });
  clock.advance(5_000);
  await login(app, phone, { username: 'bob', password: bob });

  const show = await app.inject({ method: 'GET', url: `/v1/devices/${phone.imei}`, headers: bearer(admin) });
  t.equal(show.statusCode, 200);
  const d = json(show)['device'] as DeviceView;
  t.equal(d.imei, phone.imei);
  t.equal(d.status, 'active');
  t.equal(d.bound, true);
  t.same(d.usersSeen, ['alice', 'bob']);
  t.same(d.key, first.key.record, 'key id, timestamp and issuer');
  t.equal(Date.parse(d.lastSeenAt) - Date.parse(d.firstSeenAt), 5_000);
  t.notOk(show.body.includes(first.key.dbKey), 'no key on the admin route');
  t.notMatch(show.body, /sealed|dbKey|publicKey/);

  const list = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(admin) });
  const imeis = (json(list)['devices'] as DeviceView[]).map((x) => x.imei).sort();
  t.same(imeis, [adminPhone.imei, phone.imei].sort());
  t.notOk(list.body.includes(first.key.dbKey));

  await app.inject({ method: 'POST', url: `/v1/devices/${phone.imei}/blacklist`, headers: bearer(admin), payload: {} });
  const blacklisted = await app.inject({ method: 'GET', url: '/v1/devices?status=blacklisted', headers: bearer(admin) });
  t.same((json(blacklisted)['devices'] as DeviceView[]).map((x) => x.imei), [phone.imei]);
  const active = await app.inject({ method: 'GET', url: '/v1/devices?status=active', headers: bearer(admin) });
  t.same((json(active)['devices'] as DeviceView[]).map((x) => x.imei), [adminPhone.imei]);
});

// Operator audit s10, item 4: a blacklisted phone wipes its device key, so after a reinstate its
// next login offers a new one; it must enrol, not fail DEVICE_BINDING_MISMATCH until an unbind.
t.test('reinstating a blacklisted device clears its key binding (audited); its next login with a new device key enrols', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const phone = newDevice();
  await login(app, phone, { username: 'alice', password });
  t.equal((await app.inject({ method: 'POST', url: `/v1/devices/${phone.imei}/blacklist`, headers: bearer(admin), payload: { reason: 'stolen' } })).statusCode, 200);
  t.equal(json(await loginRaw(app, phone, { username: 'alice', password }))['code'], 'DEVICE_BLACKLISTED', 'the phone is told to wipe');

  const wiped = newDevice(phone.imei);
  const res = await app.inject({ method: 'POST', url: `/v1/devices/${phone.imei}/reinstate`, headers: bearer(admin), payload: { reason: 'found again' } });
  t.equal(res.statusCode, 200);
  t.match(json(res)['device'], { status: 'active', bound: false, boundAt: null });
  const audit = json(await app.inject({ method: 'GET', url: `/v1/audit?event=device.reinstated&imei=${phone.imei}`, headers: bearer(admin) }))['events'] as Array<{ actor: string; details: Record<string, unknown> }>;
  t.equal(audit.length, 1);
  t.same(audit[0]?.details, { reason: 'found again', previousStatus: 'blacklisted', bindingCleared: true });
  t.equal(audit[0]?.actor, 'admin');

  const again = await loginRaw(app, wiped, { username: 'alice', password });
  t.equal(again.statusCode, 200, again.body);
  const shown = json(await app.inject({ method: 'GET', url: `/v1/devices/${phone.imei}`, headers: bearer(admin) }))['device'] as DeviceView;
  t.equal(shown.bound, true, 'bound to the new device key');
  const enrolled = json(await app.inject({ method: 'GET', url: `/v1/audit?event=device.enrolled&imei=${phone.imei}`, headers: bearer(admin) }))['events'] as unknown[];
  t.equal(enrolled.length, 2, 'enrolled at first login and again after the reinstate');
  const mismatches = json(await app.inject({ method: 'GET', url: `/v1/audit?event=device.binding_mismatch&imei=${phone.imei}`, headers: bearer(admin) }))['events'] as unknown[];
  t.equal(mismatches.length, 0, 'no binding mismatch raised');
});

t.test('reinstating a retired device keeps its binding: another device key on its IMEI is still refused', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const phone = newDevice();
  await login(app, phone, { username: 'alice', password });
  await app.inject({ method: 'POST', url: `/v1/devices/${phone.imei}/retire`, headers: bearer(admin), payload: {} });
  const res = await app.inject({ method: 'POST', url: `/v1/devices/${phone.imei}/reinstate`, headers: bearer(admin), payload: {} });
  t.match(json(res)['device'], { status: 'active', bound: true });
  const audit = json(await app.inject({ method: 'GET', url: `/v1/audit?event=device.reinstated&imei=${phone.imei}`, headers: bearer(admin) }))['events'] as Array<{ details: Record<string, unknown> }>;
  t.same(audit[0]?.details, { reason: null, previousStatus: 'retired', bindingCleared: false });
  t.equal(json(await loginRaw(app, newDevice(phone.imei), { username: 'alice', password }))['code'], 'DEVICE_BINDING_MISMATCH');
  t.equal((await loginRaw(app, phone, { username: 'alice', password })).statusCode, 200, 'the phone itself logs in');
});

t.test('device lists are paged', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  for (let i = 0; i < 4; i += 1) await login(app, newDevice(), { username: 'alice', password });
  for (const filter of ['', '&status=active']) {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/devices?limit=2${filter}${cursor === null ? '' : `&cursor=${cursor}`}`;
      const page = json(await app.inject({ method: 'GET', url, headers: bearer(admin) }));
      seen.push(...(page['devices'] as DeviceView[]).map((x) => x.imei));
      cursor = page['nextCursor'] as string | null;
    } while (cursor !== null);
    t.equal(seen.length, 5, `the admin phone and four more (${filter || 'all'})`);
    t.equal(new Set(seen).size, 5, 'no device twice');
  }
});

t.test('unknown devices are 404 on every action', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  for (const action of ['blacklist', 'retire', 'reinstate', 'rekey', 'unbind']) {
    const res = await app.inject({ method: 'POST', url: `/v1/devices/350000000000001/${action}`, headers: bearer(admin), payload: {} });
    t.equal(res.statusCode, 404);
    t.equal(json(res)['code'], 'DEVICE_NOT_FOUND', action);
  }
});

t.test('a field worker or supervisor on any admin route gets 403', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin, device: adminPhone } = await setupAdmin(app);
  for (const role of ['field_worker', 'supervisor']) {
    const username = role === 'field_worker' ? 'fw' : 'sv';
    const password = await createUser(app, admin, username, role);
    const { token } = await login(app, newDevice(), { username, password });
    const imei = adminPhone.imei;
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/v1/users'],
      ['GET', '/v1/users/admin'],
      ['POST', '/v1/users', { username: 'eve', role: 'admin' }],
      ['PATCH', '/v1/users/admin', { disabled: true }],
      ['POST', '/v1/users/admin/password-reset'],
      ['GET', '/v1/devices'],
      ['GET', `/v1/devices/${imei}`],
      ['POST', `/v1/devices/${imei}/blacklist`, {}],
      ['POST', `/v1/devices/${imei}/retire`, {}],
      ['POST', `/v1/devices/${imei}/reinstate`, {}],
      ['POST', `/v1/devices/${imei}/rekey`, {}],
      ['POST', `/v1/devices/${imei}/unbind`, {}],
      ['GET', '/v1/audit'],
    ];
    for (const [method, url, payload] of routes) {
      const res = await app.inject({ method: method as 'GET', url, headers: bearer(token), ...(payload === undefined ? {} : { payload: payload as object }) });
      t.equal(res.statusCode, 403, `${role} ${method} ${url}`);
      t.equal(json(res)['code'], 'AUTH_FORBIDDEN');
    }
    // And without a token at all.
    const anon = await app.inject({ method: 'GET', url: '/v1/devices' });
    t.equal(json(anon)['code'], 'SESSION_INVALID');
  }
  const still = await app.inject({ method: 'GET', url: '/v1/users/admin', headers: bearer(admin) });
  t.equal((json(still)['user'] as { disabled: boolean }).disabled, false, 'nothing was changed by them');
});

t.test('an admin cannot disable or demote the last enabled admin', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const disable = await app.inject({ method: 'PATCH', url: '/v1/users/admin', headers: bearer(admin), payload: { disabled: true } });
  t.equal(disable.statusCode, 409);
  t.equal(json(disable)['code'], 'USER_LAST_ADMIN');
  const demote = await app.inject({ method: 'PATCH', url: '/v1/users/admin', headers: bearer(admin), payload: { role: 'supervisor' } });
  t.equal(json(demote)['code'], 'USER_LAST_ADMIN');
  await createUser(app, admin, 'second', 'admin');
  const ok = await app.inject({ method: 'PATCH', url: '/v1/users/admin', headers: bearer(admin), payload: { role: 'supervisor' } });
  t.equal(ok.statusCode, 200, 'with a second admin it is allowed');
});

t.test('user management: create, duplicate, show, list, unknown', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const created = await app.inject({ method: 'POST', url: '/v1/users', headers: bearer(admin), payload: { username: 'dora', role: 'supervisor' } });
  t.equal(created.statusCode, 201);
  const body = json(created);
  t.match(body['user'], { username: 'dora', role: 'supervisor', disabled: false, hasPassword: false, createdBy: 'admin' });
  t.match((body['invitation'] as { token: string }).token, /^[A-Za-z0-9_-]{43}$/);
  const dup = await app.inject({ method: 'POST', url: '/v1/users', headers: bearer(admin), payload: { username: 'dora', role: 'field_worker' } });
  t.equal(json(dup)['code'], 'USER_EXISTS');
  const missing = await app.inject({ method: 'GET', url: '/v1/users/nobody', headers: bearer(admin) });
  t.equal(json(missing)['code'], 'USER_NOT_FOUND');
  const list = json(await app.inject({ method: 'GET', url: '/v1/users?limit=1', headers: bearer(admin) }));
  t.equal((list['users'] as unknown[]).length, 1);
  t.type(list['nextCursor'], 'string');
  const next = json(await app.inject({ method: 'GET', url: `/v1/users?limit=1&cursor=${list['nextCursor'] as string}`, headers: bearer(admin) }));
  t.same((next['users'] as Array<{ username: string }>).map((u) => u.username), ['dora']);
  t.equal(next['nextCursor'], null);
  t.notMatch(JSON.stringify(list) + JSON.stringify(next), /passwordHash|argon2/);
});
