// Operator audit s10, item 7: a login that fails because the store is down is not a failed login
// (nothing about the credentials is known): it is not audited, and the log does not say "could
// not audit a failed login" as if credentials were the problem; the request log has the outage.
import t from 'tap';
import { startEmbeddedCouch } from '@fieldvault/couch-embedded';
import { createUser, getChallenge, json, loginPayload, makeApp, newDevice, setupAdmin } from './helpers.js';

t.test('a login during a store outage answers STORE_UNAVAILABLE and logs the outage, not a failed login', async (t) => {
  const own = await startEmbeddedCouch({ dataDir: t.testdir() });
  t.teardown(() => own.stop());
  const { app, logs } = await makeApp(t, own);
  const { token: admin } = await setupAdmin(app);
  const password = await createUser(app, admin, 'alice');
  const phone = newDevice();
  const challenge = await getChallenge(app, phone.imei);
  await own.stop();

  const res = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: loginPayload(phone, { username: 'alice', password }, challenge) });
  t.equal(res.statusCode, 503);
  t.equal(json(res)['code'], 'STORE_UNAVAILABLE');
  const records = logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string; code?: string; store?: string; details?: { cause?: string } });
  t.notOk(records.some((r) => r.msg.includes('failed login')), 'nothing about a failed login');
  const outage = records.find((r) => r.level === 50 && r.code === 'STORE_UNAVAILABLE');
  t.equal(outage?.msg, 'the store stopped answering', 'the outage is logged');
  // Where and why (operator audit s10, item 7), and never the store's credential.
  t.equal(outage?.store, `127.0.0.1:${new URL(own.url).port}`, 'the store is named by host:port');
  t.equal(outage?.details?.cause, 'ECONNREFUSED', 'with the connection error');
  const password64 = new URL(own.url).password;
  t.ok(password64.length > 0 && !logs.lines.some((l) => l.includes(password64)), 'the store credential is in no log line');
});
