import type { Role } from '@fieldvault/protocol';

/*
 * The server sessions a device session holds after online logins: per server, the bearer token the
 * server issued. Held in memory only, in a WeakMap keyed by the `Session` object, so the token is
 * never a property an app could log or serialise by accident, and is gone with the session. The
 * sync engine (issue 5) reads the token through `bearerTokenOf`, which the package does not export.
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

interface Held extends ServerLogin {
  readonly token: string;
}

const held = new WeakMap<object, Map<string, Held>>();

/** Records (or replaces) the server session of `serverId` on `session`. */
export function setServerLogin(session: object, login: ServerLogin & { readonly token: string }): void {
  let map = held.get(session);
  if (map === undefined) {
    map = new Map();
    held.set(session, map);
  }
  map.set(login.serverId, { serverId: login.serverId, role: login.role, expiresAt: login.expiresAt, token: login.token });
}

/** The server sessions of `session`, without their tokens, sorted by server id. */
export function serverLoginsOf(session: object): ServerLogin[] {
  return [...(held.get(session)?.values() ?? [])]
    .map(({ serverId, role, expiresAt }) => ({ serverId, role, expiresAt }))
    .sort((a, b) => (a.serverId < b.serverId ? -1 : a.serverId > b.serverId ? 1 : 0));
}

/** The bearer token for `serverId`, for the SDK's own requests (sync). Never exported from the package. */
export function bearerTokenOf(session: object, serverId: string): string | undefined {
  return held.get(session)?.get(serverId)?.token;
}

/** Removes and returns every server session of `session` (to carry them to the session that replaces it). */
export function takeServerLogins(session: object): Array<ServerLogin & { readonly token: string }> {
  const map = held.get(session);
  held.delete(session);
  return [...(map?.values() ?? [])];
}

/** Forgets every server session of `session` (logout). */
export function dropServerLogins(session: object): void {
  held.delete(session);
}
