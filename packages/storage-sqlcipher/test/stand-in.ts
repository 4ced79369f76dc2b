// A local HTTPS stand-in for server A: it presents A's own certificate (the phone's pin holds and
// the session token is A's real one) and answers as a test decides — garbage, cut-off bodies, or
// A's own answer forwarded. Shared by sync-hostile.test.ts (every answer made up) and
// sync-misbehaving-server.test.ts (A's answers forwarded, some replaced).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { createHttpTransport } from '@fieldvault/client';
import { startServerProcess, type ServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A } from './helpers.js';

/** One sync attempt, so a failure shows at once instead of after the backoff. */
export const NO_RETRY = { attempts: 1, baseDelayMs: 0 };

/**
 * Server A, a real process with rate limits out of the way (a test logs in many times), and the
 * user `amina` (password PASSWORD_A); stopped and removed with `t`'s end. `root` holds its data.
 */
export async function serverA(t: Test, name: string): Promise<{ A: ServerProcess; root: string }> {
  const root = mkdtempSync(join(tmpdir(), `fieldvault-${name}-`));
  const A = await startServerProcess(join(root, 'a'), 'server-a', { env: { FIELDVAULT_AUTH_RATE_LIMIT: '100000', FIELDVAULT_RATE_LIMIT: '100000' } });
  t.teardown(async () => {
    await A.stop();
    rmSync(root, { recursive: true, force: true });
  });
  await A.createUser('amina', PASSWORD_A);
  return { A, root };
}

/** What the stand-in sends. */
export interface Answer {
  readonly status?: number;
  readonly type?: string;
  readonly body: string | Uint8Array;
  /** Declare the full length but send only this many bytes, then reset. */
  readonly cutAt?: number;
  /** Declare this content length instead of the real one. */
  readonly length?: number;
}

export const json = (v: unknown): Answer => ({ body: JSON.stringify(v) });

/** Sends `a` on `res`. */
export function send(res: ServerResponse, a: Answer): void {
  const body = Buffer.from(a.body);
  res.writeHead(a.status ?? 200, { 'content-type': a.type ?? 'application/json', 'content-length': String(a.length ?? body.byteLength) });
  if (a.cutAt !== undefined) {
    res.write(body.subarray(0, a.cutAt));
    setTimeout(() => res.destroy(), 20);
  } else res.end(body);
}

/**
 * Starts the stand-in; `handle` gets each request with its whole body read. Closed with `t`'s end.
 * @returns its base URL
 */
export async function standIn(t: Test, A: ServerProcess, handle: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<string> {
  const server = createHttpsServer({ cert: A.certPem, key: readFileSync(A.keyFile, 'utf8') }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * A transport to the stand-in at `url`: it plays server A answering badly (a compromised A, or one
 * holding A's key), so the transport declares A's identity and the session's login to A is used
 * through it (SDK audit H2: otherwise the SDK would refuse to send A's token to another address).
 */
export function transportAs(A: ServerProcess, url: string, extra: { maxSyncResponseBytes?: number; timeoutMs?: number } = {}) {
  const transport = createHttpTransport({ baseUrl: url, serverId: 'server-a', tls: { pinSha256: A.fingerprint }, timeoutMs: extra.timeoutMs ?? 5_000, ...extra });
  return { ...transport, identity: A.transport().identity ?? '' };
}
