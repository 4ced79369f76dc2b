// A front for the embedded store that sends the store's credential with every request, whatever
// credential the client sent. The stand-in knows one credential (its per-start one) and no
// CouchDB users, so a test of something that brings its own CouchDB user (`fieldvault-admin
// setup`, a server run from the app user's URL file) talks to the store through this front, as
// it would to a CouchDB 3.x that has those users. With `tls` it is also a CouchDB behind a TLS
// proxy (say, with a private CA). Loopback only; never use it outside tests.
import { createServer as createHttpServer, request, type IncomingHttpHeaders, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** What the front needs of the store: `EmbeddedCouch` fits. */
export interface FrontedStore {
  /** `http://127.0.0.1:<port>` of the store. */
  readonly origin: string;
  /** The store's `Authorization` header value. */
  readonly authorization: string;
}

export interface CredentialFrontOptions {
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

export interface CredentialFront {
  /** `http://127.0.0.1:<port>` of the front (`https://` with `tls`), without credentials (put any in front of the host). */
  readonly origin: string;
  stop(): Promise<void>;
}

/** Starts the front on a free loopback port. */
export async function startCredentialFront(store: FrontedStore, options: CredentialFrontOptions = {}): Promise<CredentialFront> {
  const target = new URL(store.origin);
  const forward: RequestListener = (req, res) => {
    const headers: IncomingHttpHeaders = { ...req.headers, host: target.host, authorization: store.authorization };
    const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const server = options.tls === undefined ? createHttpServer(forward) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, forward);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const scheme = options.tls === undefined ? 'http' : 'https';
  return {
    origin: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
