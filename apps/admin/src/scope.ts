import type { Context } from './context.js';

/*
 * Servers share no users, devices or admin decisions (docs/operations.md, "Several servers"): an
 * action taken here reaches no other server and, for a user, no phone. Admin audit s16, F11: the
 * docs said so but the help and the output an admin reads at the moment of acting did not, so
 * the help lines and the success lines of the per-server actions say it here, in one place.
 */

/** The end of a help line: where the action applies. */
export const HELP_USER_SCOPE = '(this server only: repeat it on every server the user uses)';
export const HELP_DEVICE_SCOPE = '(this server only: repeat it on every server the phone syncs with)';

/**
 * The logged-in server as admins know it: by its id (several servers can sit behind one name, and
 * a server can move to another URL), with the URL it was reached at. The id is learned at login;
 * a config from before the CLI kept it (and no login since) has only the URL.
 */
function here(ctx: Context): string {
  const server = ctx.home.config().server;
  if (server === null) return 'this server';
  return server.id === undefined ? server.url : `server ${server.id} (${server.url})`;
}

/** The success line of a user action: done here only, repeat it elsewhere. */
export function userScopeLine(ctx: Context, command: string, username: string): string {
  return `Done on ${here(ctx)} only: repeat "fieldvault-admin ${command} ${username}" on every server ${username} uses.`;
}

/** The success line of a device action: done here only, repeat it elsewhere. */
export function deviceScopeLine(ctx: Context, verb: string, imei: string): string {
  return `Done on ${here(ctx)} only: repeat "fieldvault-admin devices ${verb} ${imei}" on every server the phone syncs with.`;
}
