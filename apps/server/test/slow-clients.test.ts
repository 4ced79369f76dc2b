// Security audit M1 and L1 against the real server process: a slow body is cut after the request
// timeout, a 429 answer closes its connection even while the body is still coming, one address
// cannot hold more than its connections, and plain HTTP redirects only to hosts of this server.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import t, { type Test } from 'tap';
import { hostOf, redirectHost, redirectTargets } from '../src/redirect-target.js';
import { startServerChild } from './server-child.js';

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
  readonly httpPort: number;
  readonly ca: string;
}

async function startProcess(t: Test, extraEnv: Record<string, string>): Promise<Started> {
  const dataDir = join(t.testdir(), 'data');
  const s = await startServerChild(dataDir, extraEnv);
  t.teardown(() => {
    if (s.child.exitCode === null) s.child.kill('SIGKILL');
  });
  return { child: s.child, port: Number(new URL(s.url).port), httpPort: Number(new URL(s.httpUrl ?? 'http://x:0').port), ca: readFileSync(join(dataDir, 'tls/dev-cert.pem'), 'utf8') };
}

/** A TLS connection to the server, resolved once the handshake is done. */
function tlsConnect(s: Started): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: s.port, ca: s.ca, servername: 'localhost' }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves with what the server sent once it closed the connection. */
function closed(socket: TLSSocket): Promise<string> {
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString()));
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve(received)));
}

const slowPost = (length: number): string =>
  `POST /v1/auth/challenge HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n{`;

t.test('redirect targets: a known Host is kept, an unknown one goes to the configured name or is refused', async (t) => {
  t.equal(hostOf('Example.ORG:8080'), 'example.org');
  t.equal(hostOf('[::1]:80'), '[::1]');
  t.equal(hostOf('evil.example.com/../x'), '', 'a malformed Host matches nothing');
  const configured = redirectTargets('0.0.0.0', ['fv.example.org', 'fv.local']);
  t.equal(redirectHost(configured, 'fv.local:8080'), 'fv.local');
  t.equal(redirectHost(configured, 'evil.example.com'), 'fv.example.org');
  const own = redirectTargets('0.0.0.0', []);
  t.equal(redirectHost(own, 'localhost:8080'), 'localhost');
  t.equal(redirectHost(own, '127.0.0.1'), '127.0.0.1');
  t.equal(redirectHost(own, 'evil.example.com'), null);
});

t.test('server with a short request timeout and a per-address connection cap', async (t) => {
  const s = await startProcess(t, { FIELDVAULT_REQUEST_TIMEOUT: '2', FIELDVAULT_MAX_CONNECTIONS_PER_CLIENT: '3' });

  await t.test('a client sending its body one byte at a time is cut after the request timeout', async (t) => {
    const socket = await tlsConnect(s);
    const done = closed(socket);
    socket.write(slowPost(100_000));
    // Keeps making progress, as the audit's slow.mjs did (which stayed open for 400 s).
    const drip = setInterval(() => {
      if (!socket.destroyed) socket.write(' ');
    }, 200);
    t.teardown(() => clearInterval(drip));
    await done;
    clearInterval(drip);
    t.ok(socket.destroyed, 'the server closed the connection');
  });

  await t.test('one address holds at most its connections; a closed one frees its place', async (t) => {
    const held = [await tlsConnect(s), await tlsConnect(s), await tlsConnect(s)];
    const fourth = connect({ host: '127.0.0.1', port: s.port, ca: s.ca, servername: 'localhost' });
    const fourthClosed = new Promise<boolean>((resolve) => {
      fourth.once('secureConnect', () => resolve(false));
      fourth.once('error', () => resolve(true));
      fourth.once('close', () => resolve(true));
    });
    t.equal(await fourthClosed, true, 'the fourth connection was closed before TLS');
    const gone = closed(held[0] as TLSSocket);
    held[0]?.destroy();
    await gone;
    // The server sees the close a moment after this side does: retry until it has.
    let again: TLSSocket | undefined;
    for (let attempt = 0; again === undefined; attempt++) {
      again = await tlsConnect(s).catch((err: unknown) => {
        if (attempt >= 50) throw err;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 100));
      });
    }
    const answer = closed(again);
    again.end('GET /v1/no-such-route HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    t.match(await answer, /^HTTP\/1\.1 404/, 'a new connection is served once one closed');
    for (const h of held) h?.destroy();
  });

  await t.test('plain HTTP refuses a Host that is not this server\'s, and redirects one that is', async (t) => {
    const ask = (host: string): Promise<{ status: number; location?: string; code?: string }> =>
      new Promise((resolve, reject) => {
        httpRequest({ host: '127.0.0.1', port: s.httpPort, path: '/v1/auth/session', headers: { host } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              ...(res.headers.location === undefined ? {} : { location: res.headers.location }),
              ...(text === '' ? {} : { code: (JSON.parse(text) as { code: string }).code }),
            }),
          );
        })
          .on('error', reject)
          .end();
      });
    t.same(await ask('evil.example.com'), { status: 400, code: 'INPUT_HOST_UNKNOWN' });
    t.same(await ask(`localhost:${s.httpPort}`), { status: 308, location: `https://localhost:${s.port}/v1/auth/session` });
  });
});

t.test('a 429 answer closes its connection, even while the refused body is still coming', async (t) => {
  const s = await startProcess(t, { FIELDVAULT_RATE_LIMIT: '2', FIELDVAULT_PUBLIC_HOST: 'fv.example.org' });
  for (let i = 0; i < 2; i++) {
    const socket = await tlsConnect(s);
    const answer = closed(socket);
    socket.end('GET /v1/no-such-route HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    t.match(await answer, /^HTTP\/1\.1 404/);
  }
  const socket = await tlsConnect(s);
  const answer = closed(socket);
  // Half a body, and never the rest: only the server can end this connection.
  socket.write(slowPost(100_000));
  const received = await answer;
  t.match(received, /^HTTP\/1\.1 429/);
  t.match(received, /\r\nconnection: close\r\n/i);

  // With FIELDVAULT_PUBLIC_HOST, any Host is sent to the configured name.
  const location = await new Promise<string | undefined>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: s.httpPort, path: '/x', headers: { host: 'evil.example.com' } }, (res) => {
      res.resume();
      resolve(res.headers.location);
    })
      .on('error', reject)
      .end();
  });
  t.equal(location, `https://fv.example.org:${s.port}/x`);
});
