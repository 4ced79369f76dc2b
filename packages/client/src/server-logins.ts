import type { Role } from '@fieldvault/protocol';
import type { Transport } from './transport.js';

/*
 * The server sessions a device session holds after online logins: per server, the bearer token the
 * server issued. Held in memory only, in a WeakMap keyed by the `Session` object, so the token is
 * never a property an app could log or serialise by accident, and is gone with the session. The
 * sync engine (issue 5) reads the token through `bearerTokenFor`, which the package does not export.
 */

/** A server the logged-in user is logged in to online (what an app may show; no token). */
export interface ServerLogin {
  /** The server's id (`Transport.serverId`). */
  readonly serverId: string;
  /** The user's role on that server. */
  readonly role: Role;
  /** When the server session expires (ISO 8601); log in online again after it. */
  readonly expiresAt: string;
}

/** A server login with its token and connection (inside the package only). */
export interface HeldLogin extends ServerLogin {
  readonly token: string;
  /** The connection it was made through, to end the server session at logout. */
  readonly transport: Transport;
}

/**
 * What a login is bound to (audit H2): the transport's `identity` (for `createHttpTransport`, its
 * base URL and TLS trust) when it declares one, else the transport object itself. The token is
 * handed only to a transport with the same binding, so a transport that merely carries the same
 * `serverId` (a stale address, a copied configuration entry) never receives it.
 */
export function transportBinding(transport: Transport): string | Transport {
  const identity = (transport as { identity?: unknown }).identity;
  return typeof identity === 'string' && identity !== '' ? identity : transport;
}

/** The outcome of looking up the token for a transport. */
export type TokenLookup =
  | { readonly found: 'token'; readonly token: string }
  /** No online login to this server id in the session. */
  | { readonly found: 'none' }
  /** A login to this server id exists, made through a transport with another binding: its token must not go here. */
  | { readonly found: 'other-transport' };

const held = new WeakMap<object, Map<string, HeldLogin>>();

/** Records (or replaces) the server session of `serverId` on `session`. */
/** Returns the login it replaced when that one held another token (to end it on the server). */
export function setServerLogin(session: object, login: ServerLogin & { readonly token: string; readonly transport: Transport }): HeldLogin | undefined {
  let map = held.get(session);
  if (map === undefined) {
    map = new Map();
    held.set(session, map);
  }
  const replaced = map.get(login.serverId);
  map.set(login.serverId, { serverId: login.serverId, role: login.role, expiresAt: login.expiresAt, token: login.token, transport: login.transport });
  return replaced !== undefined && replaced.token !== login.token ? replaced : undefined;
}

/** The server sessions of `session`, without their tokens, sorted by server id. */
export function serverLoginsOf(session: object): ServerLogin[] {
  return [...(held.get(session)?.values() ?? [])]
    .map(({ serverId, role, expiresAt }) => ({ serverId, role, expiresAt }))
    .sort((a, b) => (a.serverId < b.serverId ? -1 : a.serverId > b.serverId ? 1 : 0));
}

/**
 * The bearer token to send through `transport`, for the SDK's own requests (sync, search, form):
 * only when the login to `transport.serverId` was made through a transport with the same binding
 * (`transportBinding`). Never exported from the package.
 */
export function bearerTokenFor(session: object, transport: Transport): TokenLookup {
  const login = held.get(session)?.get(transport.serverId);
  if (login === undefined) return { found: 'none' };
  if (transportBinding(login.transport) !== transportBinding(transport)) return { found: 'other-transport' };
  return { found: 'token', token: login.token };
}

/** Removes and returns every server session of `session` (to carry them to the session that replaces it). */
export function takeServerLogins(session: object): HeldLogin[] {
  const map = held.get(session);
  held.delete(session);
  return [...(map?.values() ?? [])];
}

/** How long a logout waits for the servers to end their sessions (it must work offline too). */
export const REVOKE_TIMEOUT_MS = 3_000;

/**
 * Forgets every server session of `session` and asks each server, in parallel and best effort, to
 * end it (`Transport.logout`), then closes the transports' pooled connections. A server that
 * cannot be reached within `REVOKE_TIMEOUT_MS` keeps the session until it expires; the token is
 * gone from the phone either way. Never throws: logging out must not depend on the network.
 * Returns how many servers confirmed.
 */
export async function revokeServerLogins(session: object, onFailure: (serverId: string, code: string | undefined) => void): Promise<number> {
  return revokeLogins(takeServerLogins(session), onFailure, true);
}

/**
 * Ends these server sessions, best effort (see `revokeServerLogins`); `close`: also close the
 * transports' pooled connections (not when the same transport goes on serving a new login).
 * Never throws.
 */
export async function revokeLogins(logins: readonly HeldLogin[], onFailure: (serverId: string, code: string | undefined) => void, close: boolean): Promise<number> {
  const results = await Promise.all(
    logins.map(async ({ serverId, token, transport }) => {
      if (typeof transport.logout !== 'function') return false;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), REVOKE_TIMEOUT_MS);
      try {
        await transport.logout(token, { signal: abort.signal });
        return true;
      } catch (err) {
        onFailure(serverId, (err as { code?: string }).code);
        return false;
      } finally {
        clearTimeout(timer);
        if (close) transport.close?.();
      }
    }),
  );
  return results.filter(Boolean).length;
}
