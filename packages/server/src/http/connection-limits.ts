import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { clientKey } from './client-key.js';

export interface ConnectionLimits {
  /** Most open connections server-wide; 0 = no limit. */
  readonly max: number;
  /** Most open connections from one client address (IPv6 /64); 0 = no limit. */
  readonly maxPerClient: number;
}

/**
 * Caps open connections server-wide and per client address (security audit M1): one address
 * held 181 slow connections and the server's file descriptors ran low. A connection over a cap is
 * closed as soon as it is accepted, before TLS or HTTP cost anything; the counts drop when a
 * socket closes, whatever closed it.
 */
export function limitConnections(server: Server, limits: ConnectionLimits): void {
  // Node's own cap: connections beyond it are dropped by the listener itself.
  if (limits.max > 0) server.maxConnections = limits.max;
  if (limits.maxPerClient <= 0) return;
  const open = new Map<string, number>();
  // Listened to before the TLS layer wraps the socket (`prependListener`): an over-cap socket is
  // destroyed before a handshake is spent on it.
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (address === undefined) return;
    const key = clientKey(address);
    const count = (open.get(key) ?? 0) + 1;
    if (count > limits.maxPerClient) {
      socket.destroy();
      return;
    }
    open.set(key, count);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left <= 0) open.delete(key);
      else open.set(key, left);
    });
  });
}
