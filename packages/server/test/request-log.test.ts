// Query strings in the request log are redacted except for parameters known to be harmless
// (operations audit, item 9: `GET /v1/users?access_token=<token>` put the token in the log).
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { redactPath, redactQuery } from '../src/http/logger.js';
import { makeApp, startStore } from './helpers.js';

const couch = await startStore(t);

t.test('a token in the query string never reaches the request log; harmless parameters stay readable', async (t) => {
  const { app, logs } = await makeApp(t, couch);
  const token = randomBytes(32).toString('base64url');
  const res = await app.inject({ method: 'GET', url: `/v1/users?access_token=${token}&limit=5&${token}` });
  t.equal(res.statusCode, 401);
  const text = logs.text();
  t.notMatch(text, token, 'the token appears nowhere in the log');
  t.match(text, '/v1/users?access_token=[redacted]&limit=5&[redacted]', 'the logged URL shows names and harmless values');
});

t.test('search terms (personal data) and opaque cursors are redacted, flags and limits are not', async (t) => {
  t.equal(redactQuery('/v1/records/search?name=Amina%20K&limit=20&flagged=true&cursor=abc'), '/v1/records/search?name=[redacted]&limit=20&flagged=true&cursor=[redacted]');
  t.equal(redactQuery('/v1/sync/pull?since=xyz&limit=100'), '/v1/sync/pull?since=[redacted]&limit=100');
  t.equal(redactQuery('/v1/users'), '/v1/users');
  t.equal(redactQuery('/v1/users?%E0%A4%A=1'), '/v1/users?[redacted]', 'an undecodable name is not shown');
});

// Secrets audit s15, F1: a token put into a path (a client's mistake, or sprayed guesses) was
// logged verbatim by the request log, which runs before routing.
t.test('a token in the path never reaches the request log; ids and route words stay readable', async (t) => {
  const { app, logs } = await makeApp(t, couch);
  const token = randomBytes(32).toString('base64url');
  for (const url of [`/v1/users/${token}`, `/v1/devices/${token}/blacklist`, `/${token}`, `/v1/photos/${encodeURIComponent('Amina K')}`]) {
    const res = await app.inject({ method: 'GET', url });
    t.ok(res.statusCode >= 400, url);
  }
  const text = logs.text();
  t.notMatch(text, token, 'the token appears nowhere in the log');
  t.notMatch(text, 'Amina', 'nor does a name');
  t.match(text, '/v1/devices/[redacted]/blacklist', 'the route words stay');
  const id = '0b8f7c1e-5d7a-4c1b-9f1e-2a3b4c5d6e7f';
  t.equal(redactPath(`/v1/photos/${id}/upload?record=${id}`), `/v1/photos/${id}/upload?record=${id}`, 'UUIDs stay, the query is left to redactQuery');
  t.equal(redactPath('/v1/admin/devices/356938035643809/retire'), '/v1/admin/devices/356938035643809/retire', 'IMEIs stay');
  t.equal(redactPath('/v1/users/amina.k'), '/v1/users/amina.k', 'usernames stay');
});

// Multi-server audit #8: merged logs of several servers must say which server wrote each record.
t.test('every log record names the server (with pid and hostname, as before)', async (t) => {
  const { app, logs } = await makeApp(t, couch, { serverId: 'region-a' });
  await app.inject({ method: 'GET', url: '/v1/users' });
  const records = logs.lines.map((l) => JSON.parse(l) as { serverId?: string; pid?: number; hostname?: string });
  t.ok(records.length > 0);
  t.same(records.filter((r) => r.serverId !== 'region-a' || typeof r.pid !== 'number' || typeof r.hostname !== 'string'), [], 'each record has serverId, pid and hostname');
});
