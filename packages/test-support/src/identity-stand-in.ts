import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** What {@link startIdentityStandIn} gives a test. */
export interface IdentityStandIn {
  readonly url: string;
  /** The path of every request it received, in order. */
  readonly paths: string[];
  close(): Promise<void>;
}

/**
 * A local HTTPS server with a real server's certificate (so a phone pinned to that server trusts
 * it) whose login challenge names `serverId`, and which refuses everything else as a wrong
 * password would. For the server-identity tests: a server that names an id other than the one the
 * phone configured, and the proof (`paths`) that nothing after the challenge was sent.
 */
export async function startIdentityStandIn(server: { readonly certPem: string; readonly keyFile: string }, serverId: string): Promise<IdentityStandIn> {
  const paths: string[] = [];
  const https = createHttpsServer({ cert: server.certPem, key: readFileSync(server.keyFile, 'utf8') }, (req, res) => {
    paths.push(req.url ?? '');
    req.resume();
    req.on('end', () => {
      const challenge = req.url === '/v1/auth/challenge';
      const text = JSON.stringify(
        challenge
          ? { challenge: 'C'.repeat(43), expiresAt: new Date(Date.now() + 60_000).toISOString(), serverId }
          : { statusCode: 401, code: 'AUTH_INVALID_CREDENTIALS', error: 'Unauthorized', message: 'The user name or password is wrong.' },
      );
      res.writeHead(challenge ? 200 : 401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(https.address() as AddressInfo).port}`,
    paths,
    close: () => new Promise<void>((resolve) => https.close(() => resolve())),
  };
}
