import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import nano from 'nano';
import { signDevice, toBase64 } from '@fieldvault/crypto';
import { createClock, createRecord, signupSignatureMessage, type ChildRecord, type FieldValue, type SignupAction } from '@fieldvault/protocol';
import { bearer, getChallenge, json, login, loginRaw, makeApp, newDevice, setupAdmin, startStore, type Device, type FakeClock, type TestApp } from './helpers.js';
import { phoneFor, pullAll, push } from './sync-helpers.js';

// Issue 7 step 3: pending sign-ups — unverified phone users ask for an account; admins decide.
const couch = await startStore(t);

const PHONE_PASSWORD = 'the phone password chosen offline';

/** An unverified user's records, made on `device` (as the phone's unverified database holds them). */
function unverifiedRecords(device: Device, wall: FakeClock, username: string, names: readonly string[]): ChildRecord[] {
  const clock = createClock({ node: device.imei, now: wall.now });
  return names.map((name) =>
    createRecord({ id: randomUUID(), createdBy: username, device: device.imei, clockTs: clock.now(), fields: { name } as Record<string, FieldValue> }),
  );
}

interface SignupCall {
  readonly username: string;
  readonly password?: string;
  readonly records?: readonly unknown[];
  /** Sign with another device's keys (spoofing). */
  readonly signWith?: Device;
  readonly challenge?: string;
}

function signed(device: Device, action: SignupAction, username: string, challenge: string, signWith: Device = device): Record<string, unknown> {
  const signature = signDevice(signWith.keys.privateKey, signupSignatureMessage({ action, challenge, username, imei: device.imei }));
  return { username, imei: device.imei, devicePublicKey: signWith.publicKey, challenge, signature: toBase64(signature) };
}

async function requestRaw(app: FastifyInstance, device: Device, c: SignupCall): Promise<LightMyRequestResponse> {
  const challenge = c.challenge ?? (await getChallenge(app, device.imei));
  return app.inject({
    method: 'POST',
    url: '/v1/signups',
    payload: {
      ...signed(device, 'request', c.username, challenge, c.signWith),
      password: c.password ?? PHONE_PASSWORD,
      ...(c.records === undefined ? {} : { records: c.records }),
    },
  });
}

async function statusRaw(app: FastifyInstance, device: Device, username: string): Promise<LightMyRequestResponse> {
  const challenge = await getChallenge(app, device.imei);
  return app.inject({ method: 'POST', url: '/v1/signups/status', payload: signed(device, 'status', username, challenge) });
}

async function adminCall(app: FastifyInstance, token: string, method: 'GET' | 'POST', url: string, payload?: object): Promise<LightMyRequestResponse> {
  return app.inject({ method, url, headers: bearer(token), ...(payload === undefined ? {} : { payload }) });
}

async function recordsDocIds(ta: TestApp): Promise<string[]> {
  const db = nano(couch.url).use(`${ta.config.couch.dbPrefix as string}records`);
  return (await db.list()).rows.map((r) => r.id).filter((id) => id.startsWith('rec:'));
}

async function pendingDocIds(ta: TestApp): Promise<string[]> {
  const db = nano(couch.url).use(`${ta.config.couch.dbPrefix as string}pending`);
  return (await db.list()).rows.map((r) => r.id).filter((id) => !id.startsWith('_design/'));
}

t.test('request → list → approve: the user logs in with the phone password and the records are in the records database once', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const other = await phoneFor(app, admin, clock, 'bilal');
  const phone = newDevice();
  const records = unverifiedRecords(phone, clock, 'zara', ['Asha Okot', 'Asha Lam']);

  const res = await requestRaw(app, phone, { username: 'zara', records });
  t.equal(res.statusCode, 200, res.body);
  const body = json(res) as { status: string; quarantined: number; results: Array<{ id: string; status: string }> };
  t.equal(body.status, 'pending');
  t.equal(body.quarantined, 2);
  t.same(body.results.map((r) => [r.id, r.status]), records.map((r) => [r.id, 'ok']));

  // Not before approval: nothing in the records database, nothing in pull or search for others.
  t.same(await recordsDocIds(ta), []);
  t.equal((await pullAll(app, other.token)).records.length, 0);
  const search = await adminCall(app, other.token, 'GET', '/v1/records/search?name=asha');
  t.equal(search.statusCode, 200);
  t.same((json(search) as { records: unknown[] }).records, []);
  // And no account yet: the phone password does not log in.
  t.equal(json(await loginRaw(app, phone, { username: 'zara', password: PHONE_PASSWORD }))['code'], 'AUTH_INVALID_CREDENTIALS');

  const list = await adminCall(app, admin, 'GET', '/v1/signups?status=pending');
  t.equal(list.statusCode, 200);
  const listed = json(list) as { signups: Array<{ username: string; imei: string; records: number; status: string }> };
  t.same(listed.signups.map((s) => [s.username, s.imei, s.records, s.status]), [['zara', phone.imei, 2, 'pending']]);
  t.notOk(list.body.includes('argon2'), 'no password hash in the admin view');

  const show = await adminCall(app, admin, 'GET', '/v1/signups/zara');
  t.equal(show.statusCode, 200);
  t.same(
    (json(show) as { records: Array<{ record: ChildRecord }> }).records.map((q) => q.record.id).sort(),
    records.map((r) => r.id).sort(),
  );

  t.equal(json(await statusRaw(app, phone, 'zara'))['status'], 'pending');

  clock.advance(60_000);
  const approve = await adminCall(app, admin, 'POST', '/v1/signups/zara/approve', {});
  t.equal(approve.statusCode, 200, approve.body);
  const approved = json(approve) as { moved: number; failed: unknown[]; user: { role: string; hasPassword: boolean }; signup: { status: string; decidedBy: string } };
  t.equal(approved.moved, 2);
  t.same(approved.failed, []);
  t.same([approved.user.role, approved.user.hasPassword], ['field_worker', true]);
  t.same([approved.signup.status, approved.signup.decidedBy], ['approved', 'admin']);
  t.equal(json(await statusRaw(app, phone, 'zara'))['status'], 'approved');

  // The records are in the records database once, stamped as a push by zara from the phone.
  t.same((await recordsDocIds(ta)).sort(), records.map((r) => `rec:${r.id}`).sort());
  t.same(await pendingDocIds(ta), ['signup:zara'], 'quarantine emptied; only the outcome stays');
  const stored = await app.repo.getRecord(records[0]?.id as string);
  t.same([stored?.pushedBy, stored?.pushedFrom, stored?.firstPushedBy, stored?.receivedAt], ['zara', phone.imei, 'zara', clock.now()]);
  t.equal((await pullAll(app, other.token)).records.length, 2, 'visible to other users once approved');

  // The phone logs in online with the password chosen offline, then pushes its records (flow 1):
  // same ids, so the merge changes nothing and nothing is duplicated.
  const session = await login(app, phone, { username: 'zara', password: PHONE_PASSWORD });
  t.equal(session.user.role, 'field_worker');
  const pushed = await push(app, session.token, records);
  t.same(pushed.results.map((r) => [r.status, r.changed]), [['ok', false], ['ok', false]]);
  t.equal((await recordsDocIds(ta)).length, 2);

  const audit = await adminCall(app, admin, 'GET', '/v1/audit?username=zara');
  const events = (json(audit) as { events: Array<{ event: string; actor: string | null }> }).events;
  t.ok(events.some((e) => e.event === 'signup.requested' && e.actor === null));
  t.ok(events.some((e) => e.event === 'signup.approved' && e.actor === 'admin'));
  t.ok(events.some((e) => e.event === 'user.created' && e.actor === 'admin'));
  t.notOk(audit.body.includes(PHONE_PASSWORD));
});

t.test('approve can give the supervisor role, never admin', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  t.equal((await requestRaw(app, newDevice(), { username: 'sam' })).statusCode, 200);
  const asAdmin = await adminCall(app, admin, 'POST', '/v1/signups/sam/approve', { role: 'admin' });
  t.equal(json(asAdmin)['code'], 'SIGNUP_ROLE_INVALID');
  const ok = await adminCall(app, admin, 'POST', '/v1/signups/sam/approve', { role: 'supervisor' });
  t.equal((json(ok) as { user: { role: string } }).user.role, 'supervisor');
  const again = await adminCall(app, admin, 'POST', '/v1/signups/sam/approve', {});
  t.equal(json(again)['code'], 'SIGNUP_ALREADY_DECIDED');
});

t.test('reject deletes the request\'s password hash and records, and is audited', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const phone = newDevice();
  const res = await requestRaw(app, phone, { username: 'ruth', records: unverifiedRecords(phone, clock, 'ruth', ['A', 'B', 'C']) });
  t.equal(res.statusCode, 200);
  t.equal((await pendingDocIds(ta)).length, 4);

  const reject = await adminCall(app, admin, 'POST', '/v1/signups/ruth/reject', {});
  t.equal(reject.statusCode, 200, reject.body);
  t.equal(json(reject)['deleted'], 3);
  t.same(await pendingDocIds(ta), ['signup:ruth']);
  t.same(await recordsDocIds(ta), []);
  const left = (await app.repo.getUser('ruth')) === undefined;
  t.ok(left, 'no user created');
  t.equal(json(await statusRaw(app, phone, 'ruth'))['status'], 'rejected');
  t.equal(json(await adminCall(app, admin, 'POST', '/v1/signups/ruth/approve', {}))['code'], 'SIGNUP_ALREADY_DECIDED');
  t.equal(json(await adminCall(app, admin, 'POST', '/v1/signups/ruth/reject', {}))['code'], 'SIGNUP_ALREADY_DECIDED');

  const audit = await adminCall(app, admin, 'GET', '/v1/audit?event=signup.rejected');
  const events = (json(audit) as { events: Array<{ actor: string; username: string; details: Record<string, unknown> }> }).events;
  t.same(events.map((e) => [e.actor, e.username, e.details['deleted']]), [['admin', 'ruth', 3]]);

  // A rejected name may be asked for again (by any device).
  t.equal((await requestRaw(app, newDevice(), { username: 'ruth' })).statusCode, 200);
});

t.test('a username that exists is refused, and nothing is stored', async (t) => {
  const ta = await makeApp(t, couch);
  await setupAdmin(ta.app);
  const res = await requestRaw(ta.app, newDevice(), { username: 'admin' });
  t.equal(res.statusCode, 409);
  t.equal(json(res)['code'], 'SIGNUP_USERNAME_TAKEN');
  t.same(await pendingDocIds(ta), []);
});

t.test('a pending name asked for from another device is refused; the same device may renew with the same password', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  await setupAdmin(app);
  const phone = newDevice();
  const [a, b] = unverifiedRecords(phone, clock, 'kim', ['A', 'B']) as [ChildRecord, ChildRecord];
  t.equal((await requestRaw(app, phone, { username: 'kim', records: [a] })).statusCode, 200);

  const elsewhere = await requestRaw(app, newDevice(), { username: 'kim' });
  t.equal(elsewhere.statusCode, 409);
  t.equal(json(elsewhere)['code'], 'SIGNUP_PENDING_ELSEWHERE');

  const wrong = await requestRaw(app, phone, { username: 'kim', password: 'a different sentence typed later', records: [b] });
  t.equal(json(wrong)['code'], 'AUTH_INVALID_CREDENTIALS');

  const renewed = await requestRaw(app, phone, { username: 'kim', records: [a, b] });
  t.equal(renewed.statusCode, 200);
  const results = (json(renewed) as { quarantined: number; results: Array<{ changed: boolean }> });
  t.equal(results.quarantined, 2);
  t.same(results.results.map((r) => r.changed), [false, true], 'the record sent again changes nothing');

  // Another device cannot read the status either.
  t.equal(json(await statusRaw(app, newDevice(), 'kim'))['code'], 'SIGNUP_NOT_FOUND');
});

t.test('the password policy applies, and a refused password stores nothing', async (t) => {
  const ta = await makeApp(t, couch);
  await setupAdmin(ta.app);
  const short = await requestRaw(ta.app, newDevice(), { username: 'lee', password: 'short' });
  t.equal(json(short)['code'], 'PASSWORD_TOO_SHORT');
  const common = await requestRaw(ta.app, newDevice(), { username: 'lee', password: 'passwordpassword' });
  t.equal(json(common)['code'], 'PASSWORD_TOO_COMMON');
  t.same(await pendingDocIds(ta), []);
});

t.test('the device proof is checked: forged signature, replayed challenge, bound or blacklisted device', async (t) => {
  const ta = await makeApp(t, couch);
  const { app } = ta;
  const { token: admin } = await setupAdmin(app);
  const phone = newDevice();
  const forged = await requestRaw(app, phone, { username: 'max', signWith: newDevice() });
  // Signed with a key other than… itself is fine (unenrolled device); a signature over other bytes is not.
  t.equal(forged.statusCode, 200, 'an unenrolled IMEI may present any key that signs correctly');

  const challenge = await getChallenge(app, phone.imei);
  const tampered = await app.inject({
    method: 'POST',
    url: '/v1/signups',
    payload: { ...signed(phone, 'status', 'nia', challenge), password: PHONE_PASSWORD },
  });
  t.equal(json(tampered)['code'], 'DEVICE_SIGNATURE_INVALID', 'a status signature is not a request signature');
  const replay = await requestRaw(app, phone, { username: 'nia', challenge });
  t.equal(json(replay)['code'], 'DEVICE_SIGNATURE_INVALID', 'a used challenge is refused');

  // A device enrolled by a login only accepts its own key.
  const enrolled = newDevice();
  const password = 'a field worker password for the device';
  await app.inject({ method: 'POST', url: '/v1/users', headers: bearer(admin), payload: { username: 'olu', role: 'field_worker' } }).then(async (res) => {
    const token = (json(res) as { invitation: { token: string } }).invitation.token;
    await app.inject({ method: 'POST', url: '/v1/auth/password', payload: { resetToken: token, password } });
  });
  await login(app, enrolled, { username: 'olu', password });
  const spoof = await requestRaw(app, enrolled, { username: 'pia', signWith: newDevice() });
  t.equal(json(spoof)['code'], 'DEVICE_BINDING_MISMATCH');
  const blacklist = await adminCall(app, admin, 'POST', `/v1/devices/${enrolled.imei}/blacklist`, {});
  t.equal(blacklist.statusCode, 200, blacklist.body);
  t.equal(json(await requestRaw(app, enrolled, { username: 'pia' }))['code'], 'DEVICE_BLACKLISTED');
  t.same((await pendingDocIds(ta)).filter((id) => id.includes('pia') || id.includes('nia')), []);
});

t.test('records are validated one by one; another user\'s record is refused alone', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const phone = newDevice();
  const [mine] = unverifiedRecords(phone, clock, 'ada', ['Mine']) as [ChildRecord];
  const [theirs] = unverifiedRecords(phone, clock, 'eve', ['Theirs']) as [ChildRecord];
  const res = await requestRaw(app, phone, { username: 'ada', records: [mine, theirs, { id: 'nope' }, { ...mine, pushedBy: 'x' }] });
  t.equal(res.statusCode, 200, res.body);
  const body = json(res) as { quarantined: number; results: Array<{ id: string | null; status: string; code?: string }> };
  t.equal(body.quarantined, 1);
  t.same(body.results.map((r) => [r.status, r.code ?? null]), [
    ['ok', null],
    ['error', 'RECORD_FORBIDDEN'],
    ['error', 'RECORD_INVALID'],
    ['error', 'RECORD_FIELD_FORBIDDEN'],
  ]);
  const show = json(await adminCall(app, admin, 'GET', '/v1/signups/ada')) as { records: Array<{ record: ChildRecord }> };
  t.same(show.records.map((q) => q.record.id), [mine.id]);
});

t.test('admin routes refuse unauthenticated callers and field workers', async (t) => {
  const { app, clock } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  const worker = await phoneFor(app, admin, clock, 'fatou');
  t.equal((await requestRaw(app, newDevice(), { username: 'gil' })).statusCode, 200);
  const routes: Array<['GET' | 'POST', string]> = [
    ['GET', '/v1/signups'],
    ['GET', '/v1/signups/gil'],
    ['POST', '/v1/signups/gil/approve'],
    ['POST', '/v1/signups/gil/reject'],
  ];
  for (const [method, url] of routes) {
    const anon = await app.inject({ method, url, ...(method === 'POST' ? { payload: {} } : {}) });
    t.equal(json(anon)['code'], 'SESSION_INVALID', `${method} ${url} unauthenticated`);
    const fw = await adminCall(app, worker.token, method, url, method === 'POST' ? {} : undefined);
    t.equal(json(fw)['code'], 'AUTH_FORBIDDEN', `${method} ${url} as a field worker`);
  }
  const still = json(await adminCall(app, admin, 'GET', '/v1/signups/gil')) as { signup: { status: string } };
  t.equal(still.signup.status, 'pending', 'nothing was decided');
  t.equal(json(await adminCall(app, admin, 'GET', '/v1/signups/nobody'))['code'], 'SIGNUP_NOT_FOUND');
});

t.test('approval after an admin created the same username refuses and puts the request back to pending', async (t) => {
  const ta = await makeApp(t, couch);
  const { app } = ta;
  const { token: admin } = await setupAdmin(app);
  t.equal((await requestRaw(app, newDevice(), { username: 'hana' })).statusCode, 200);
  t.equal((await adminCall(app, admin, 'POST', '/v1/users', { username: 'hana', role: 'field_worker' })).statusCode, 201);
  t.equal(json(await adminCall(app, admin, 'POST', '/v1/signups/hana/approve', {}))['code'], 'SIGNUP_USERNAME_TAKEN');
  const show = json(await adminCall(app, admin, 'GET', '/v1/signups/hana')) as { signup: { status: string } };
  t.equal(show.signup.status, 'pending');
  t.equal((await adminCall(app, admin, 'POST', '/v1/signups/hana/reject', {})).statusCode, 200);
});

t.test('the list filters by status and pages by username', async (t) => {
  const { app } = await makeApp(t, couch);
  const { token: admin } = await setupAdmin(app);
  for (const name of ['cat', 'ben', 'dan', 'amy']) t.equal((await requestRaw(app, newDevice(), { username: name })).statusCode, 200);
  t.equal((await adminCall(app, admin, 'POST', '/v1/signups/ben/reject', {})).statusCode, 200);
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const res = await adminCall(app, admin, 'GET', `/v1/signups?status=pending&limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
    const page = json(res) as { signups: Array<{ username: string }>; nextCursor: string | null };
    pages.push(page.signups.map((s) => s.username));
    cursor = page.nextCursor;
  } while (cursor !== null);
  t.same(pages, [['amy', 'cat'], ['dan']]);
  const rejected = json(await adminCall(app, admin, 'GET', '/v1/signups?status=rejected')) as { signups: Array<{ username: string }> };
  t.same(rejected.signups.map((s) => s.username), ['ben']);
  const all = json(await adminCall(app, admin, 'GET', '/v1/signups?limit=3')) as { signups: Array<{ username: string }>; nextCursor: string | null };
  t.same([all.signups.map((s) => s.username), all.nextCursor], [['amy', 'ben', 'cat'], 'cat']);
});
