import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import t from 'tap';
import { makeApp, selfSigned, startStore } from './helpers.js';

// Issue 3: served over TLS with HSTS; every response is uncacheable.
const couch = await startStore(t);

t.test('over TLS every response carries HSTS and no-store', async (t) => {
  const { app } = await makeApp(t, couch, { https: { ...selfSigned(t.testdir()), minVersion: 'TLSv1.2' } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const res = await new Promise<{ status: number; headers: Record<string, unknown>; protocol: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/auth/session', method: 'GET', rejectUnauthorized: false }, (r) => {
      const protocol = (r.socket as TLSSocket).getProtocol() ?? '';
      r.resume();
      r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, protocol }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(res.status, 401);
  t.match(res.headers['strict-transport-security'], /max-age=\d+/);
  t.equal(res.headers['cache-control'], 'no-store');
  t.equal(res.headers['www-authenticate'], 'Bearer');
  t.match(res.protocol, /^TLSv1\.[23]$/);
});

t.test('without TLS there is no HSTS header (it would be ignored and misleading)', async (t) => {
  const { app } = await makeApp(t, couch);
  const res = await app.inject({ method: 'GET', url: '/v1/auth/session' });
  t.equal(res.headers['strict-transport-security'], undefined);
  t.equal(res.headers['cache-control'], 'no-store');
});

t.test('issue 5: connections are kept alive between requests, with a bounded idle timeout', async (t) => {
  const { Agent } = await import('node:https');
  const { KEEP_ALIVE_TIMEOUT_MS } = await import('../src/app.js');
  const { app } = await makeApp(t, couch, { https: { ...selfSigned(t.testdir()), minVersion: 'TLSv1.2' } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  let connections = 0;
  app.server.on('secureConnection', () => (connections += 1));
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  t.teardown(() => agent.destroy());
  const keepAlive: string[] = [];
  for (let i = 0; i < 3; i += 1) {
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/v1/auth/session', method: 'GET', agent }, (r) => {
        keepAlive.push(String(r.headers['keep-alive']));
        r.resume();
        r.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
  }
  t.equal(connections, 1, 'three requests, one TLS connection');
  t.equal(app.server.keepAliveTimeout, KEEP_ALIVE_TIMEOUT_MS);
  t.same(keepAlive, Array(3).fill(`timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}`), 'the idle limit is announced to clients');
});
