// A plain-HTTP front for the embedded store that sends the store's credential with every request,
// whatever credential the client sent. The stand-in knows one credential (its per-start one) and
// no CouchDB users, so a test of something that brings its own CouchDB user (`fieldvault-admin
// setup`, a server run from the app user's URL file) talks to the store through this front, as
// it would to a CouchDB 3.x that has those users. Loopback only; never use it outside tests.
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the front needs of the store: `EmbeddedCouch` fits. */
export interface FrontedStore {
  /** `http://127.0.0.1:<port>` of the store. */
  readonly origin: string;
  /** The store's `Authorization` header value. */
  readonly authorization: string;
}

export interface CredentialFront {
  /** `http://127.0.0.1:<port>` of the front, without credentials (put any in front of the host). */
  readonly origin: string;
  stop(): Promise<void>;
}

/** Starts the front on a free loopback port. */
export async function startCredentialFront(store: FrontedStore): Promise<CredentialFront> {
  const target = new URL(store.origin);
  const server = createServer((req, res) => {
    const headers: IncomingHttpHeaders = { ...req.headers, host: target.host, authorization: store.authorization };
    const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
