// `GET /v1/health` (s17, task E): the unauthenticated probe of load balancers, watchdogs and
// monitoring. Up or down and nothing else; quiet in the log; on a rate-limit counter of its own so
// monitoring can't use up the phones' budget. Real embedded stores, a real app; no fakes but time.
import t from 'tap';
import { startEmbeddedCouch } from '@fieldvault/couch-embedded';
import { HEALTH_REUSE_MS } from '../src/health/plugin.js';
import { json, makeApp, startStore, storeRecorder, type LogCapture } from './helpers.js';

const couch = await startStore(t);

interface LogRecord {
  readonly level: number;
  readonly msg: string;
  readonly req?: { readonly url?: string };
}
const records = (logs: LogCapture): LogRecord[] => logs.lines.map((l) => JSON.parse(l) as LogRecord);

t.test('200 {"status":"ok"} without authentication, after one store read and no write', async (t) => {
  const recorder = await storeRecorder(t, couch);
  const { app } = await makeApp(t, { url: recorder.url, crashed: false });
  const before = recorder.requests.length;
  const res = await app.inject({ method: 'GET', url: '/v1/health' });
  t.equal(res.statusCode, 200);
  t.equal(res.body, '{"status":"ok"}', 'nothing else: no version, no server id');
  t.equal(res.headers['cache-control'], 'no-store');
  const made = recorder.requests.slice(before);
  t.equal(made.length, 1, 'one store request');
  t.match(made[0], /^GET \/[a-z0-9_]+$/, 'a database info read: no audit or other write');
});

t.test('a store check, successful or failed, is reused for 1 s; probes together share one request', async (t) => {
  let refusing = false;
  let release: (() => void) | undefined;
  let held: Promise<void> | undefined;
  const recorder = await storeRecorder(t, couch, { refuse: () => refusing, hold: () => held });
  const { app, clock } = await makeApp(t, { url: recorder.url, crashed: false });
  const probe = async (): Promise<number> => (await app.inject({ method: 'GET', url: '/v1/health' })).statusCode;
  const asked = (since: number): number => recorder.requests.slice(since).length;

  let mark = recorder.requests.length;
  t.same([await probe(), await probe()], [200, 200]);
  clock.advance(HEALTH_REUSE_MS - 1);
  t.equal(await probe(), 200);
  t.equal(asked(mark), 1, 'three probes within 1 s of a successful check: one store request');

  clock.advance(1);
  mark = recorder.requests.length;
  t.equal(await probe(), 200);
  t.equal(asked(mark), 1, '1 s after the check: the store is asked again');

  clock.advance(HEALTH_REUSE_MS);
  refusing = true;
  mark = recorder.requests.length;
  const failed = await app.inject({ method: 'GET', url: '/v1/health' });
  t.equal(failed.statusCode, 503);
  clock.advance(HEALTH_REUSE_MS - 1);
  const reused = await app.inject({ method: 'GET', url: '/v1/health' });
  t.equal(reused.statusCode, 503);
  t.equal(reused.body, failed.body, 'the same answer, Retry-After included');
  t.equal(reused.headers['retry-after'], failed.headers['retry-after']);
  t.equal(asked(mark), 1, 'a flood of probes against a failing store: one store request a second');
  refusing = false;
  mark = recorder.requests.length;
  t.equal(await probe(), 503, 'the store back: still the remembered failure within the second');
  clock.advance(1);
  t.equal(await probe(), 200, 'and ok once the second is over');
  t.equal(asked(mark), 1);

  clock.advance(HEALTH_REUSE_MS);
  held = new Promise<void>((resolve) => {
    release = resolve;
  });
  mark = recorder.requests.length;
  const together = Promise.all([probe(), probe(), probe()]);
  while (asked(mark) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  // Past the reuse window before the answer: a probe that did not share the request would ask anew.
  clock.advance(HEALTH_REUSE_MS);
  held = undefined;
  release?.();
  t.same(await together, [200, 200, 200]);
  t.equal(asked(mark), 1, 'probes arriving together: one store request');
});

t.test('query parameters are refused as on every route', async (t) => {
  const { app } = await makeApp(t, couch);
  const res = await app.inject({ method: 'GET', url: '/v1/health?verbose=1' });
  t.equal(res.statusCode, 400);
  t.equal(json(res)['code'], 'INPUT_INVALID');
});

t.test('a probe is not logged at info, and once at debug', async (t) => {
  const quiet = await makeApp(t, couch, { logLevel: 'info' });
  const mark = quiet.logs.lines.length;
  for (let i = 0; i < 3; i++) t.equal((await quiet.app.inject({ method: 'GET', url: '/v1/health' })).statusCode, 200);
  t.same(quiet.logs.lines.slice(mark), [], 'three probes, no record at info');

  const verbose = await makeApp(t, couch, { logLevel: 'debug' });
  const start = verbose.logs.lines.length;
  t.equal((await verbose.app.inject({ method: 'GET', url: '/v1/health' })).statusCode, 200);
  const probe = records(verbose.logs).slice(start);
  t.equal(probe.length, 1, 'one record per probe');
  t.match(probe[0], { level: 20, msg: 'probe answered', req: { url: '/v1/health' } });

  // Other routes keep Fastify's request log.
  const before = quiet.logs.lines.length;
  await quiet.app.inject({ method: 'GET', url: '/v1/users' });
  t.ok(records(quiet.logs).slice(before).some((r) => r.msg === 'incoming request'), 'other requests are still logged at info');
});

t.test('probes count against their own limit, never against the address shared with phones', async (t) => {
  const { app } = await makeApp(t, couch, { rateLimit: { max: 3, authMax: 100, timeWindowMs: 60_000 } });
  const remoteAddress = '10.7.0.1';
  const probes = [];
  for (let i = 0; i < 5; i++) probes.push((await app.inject({ method: 'GET', url: '/v1/health', remoteAddress })).statusCode);
  t.same(probes, [200, 200, 200, 429, 429], 'a flood of probes is refused');
  const codes = [];
  for (let i = 0; i < 3; i++) codes.push(json(await app.inject({ method: 'GET', url: '/v1/users', remoteAddress }))['code']);
  t.same(codes, ['SESSION_INVALID', 'SESSION_INVALID', 'SESSION_INVALID'], 'the phones behind that address keep their whole budget');
});

t.test('503 STORE_UNAVAILABLE while the store is stopped, 200 again once it is back', async (t) => {
  const dataDir = t.testdir();
  const first = await startEmbeddedCouch({ dataDir });
  let store = first;
  t.teardown(() => store.stop());
  const { app, logs, clock } = await makeApp(t, first);
  t.equal((await app.inject({ method: 'GET', url: '/v1/health' })).statusCode, 200);
  await first.stop();
  clock.advance(HEALTH_REUSE_MS);

  const down = await app.inject({ method: 'GET', url: '/v1/health' });
  t.equal(down.statusCode, 503);
  t.same(Object.keys(json(down)).sort(), ['code', 'error', 'message', 'statusCode'], 'the catalogued error body, nothing more');
  t.equal(json(down)['code'], 'STORE_UNAVAILABLE');
  t.ok(Number(down.headers['retry-after']) > 0, 'with Retry-After');
  t.notMatch(down.body, String(first.port), 'the store address is not told');
  t.ok(records(logs).some((r) => r.level === 50 && r.msg === 'the store stopped answering'), 'the outage log records it');

  store = await startEmbeddedCouch({ dataDir, port: first.port, credential: first.credential });
  clock.advance(HEALTH_REUSE_MS);
  t.equal((await app.inject({ method: 'GET', url: '/v1/health' })).statusCode, 200, 'up again once the failure is a second old');
});
