import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChildCredential } from './child-protocol.js';

/*
 * The store's only access control: every request must carry the per-start HTTP Basic credential
 * of its parent (security audit H1: the loopback port is reachable by every local account, which
 * bypasses the 0700/0600 modes of the data directory). CouchDB 3 with `require_valid_user`
 * answers the same way, so nano and PouchDB need nothing but the credential in the URL.
 */

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** `user:password` of a `Basic` Authorization header, or undefined for anything else. */
function presentedCredential(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header);
  if (match?.[1] === undefined) return undefined;
  return Buffer.from(match[1], 'base64').toString('utf8');
}

/**
 * An express/connect handler that passes only requests with the credential and answers every
 * other one 401 with CouchDB's error document, before any database is touched.
 */
export function requireCredential(
  credential: ChildCredential,
): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  // Both sides are hashed so the comparison has a fixed length and takes the same time whatever
  // was sent: a prefix of the password cannot be found by timing.
  const expected = sha256(`${credential.username}:${credential.password}`);
  return (req, res, next) => {
    const presented = presentedCredential(req.headers.authorization);
    if (presented !== undefined && timingSafeEqual(sha256(presented), expected)) {
      next();
      return;
    }
    const body = JSON.stringify({
      error: 'unauthorized',
      reason: presented === undefined ? 'Authentication required.' : 'Name or password is incorrect.',
    });
    res.writeHead(401, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'www-authenticate': 'Basic realm="fieldvault-store"',
      // The client may still be sending a body we will never read: don't keep the socket.
      connection: 'close',
    });
    res.end(body);
  };
}
