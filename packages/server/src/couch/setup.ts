import nano from 'nano';
import { FieldvaultError } from '@fieldvault/protocol';
import { DATABASES, createCouchRepository } from './couch-repository.js';
import { statusOf, storeError } from './store-errors.js';

/*
 * `fieldvault-admin setup --couchdb URL`: prepares a CouchDB 3.x for the server with CouchDB
 * admin credentials, so that the server itself runs as a least-privilege user:
 *   - the application databases (`<prefix>users`, …) and their design documents (views), which
 *     only a database admin may write: the server, as a member, only checks their version;
 *   - a CouchDB user for the server in `_users` (no roles: not a server admin, not a db admin);
 *   - each database's `_security`: the app user is a member (read/write documents), CouchDB
 *     server admins stay its only admins (design documents, `_security`).
 * Idempotent: existing databases, design documents and members are kept; the password changes
 * only when the caller asks for a new one.
 */

export interface CouchSetupOptions {
  /** CouchDB URL with server admin credentials (never logged, never in an error). */
  readonly adminUrl: string;
  readonly dbPrefix: string;
  /** Name of the server's CouchDB user. */
  readonly appUser: string;
  /** A new password for the app user, or null to keep the current one (the user must exist). */
  readonly appPassword: string | null;
}

export type CouchFlavour = 'couchdb' | 'embedded-stand-in';

export interface CouchSetupResult {
  readonly flavour: CouchFlavour;
  readonly version: string;
  readonly databases: ReadonlyArray<{ readonly name: string; readonly created: boolean; readonly securityUpdated: boolean }>;
  readonly user: 'created' | 'password-set' | 'kept';
}

/** CouchDB user names: what CouchDB allows, narrowed to what is safe in a URL and a log. */
export const COUCH_USER_PATTERN = /^[a-z][a-z0-9_.-]{0,63}$/;

interface Security {
  admins?: { names?: string[]; roles?: string[] };
  members?: { names?: string[]; roles?: string[] };
}

async function call(server: nano.ServerScope, op: string, opts: nano.RequestOptions): Promise<unknown> {
  try {
    return await server.request(opts);
  } catch (err) {
    const status = statusOf(err);
    if (status === 401 || status === 403) throw new FieldvaultError('STORE_ADMIN_REQUIRED', { details: { op } });
    throw err;
  }
}

/** Which server answers at `url` (CouchDB 3.x or the embedded stand-in). @throws STORE_UNAVAILABLE, CONFIG_INVALID */
export async function detectCouch(url: string): Promise<{ flavour: CouchFlavour; version: string }> {
  const server = nano({ url });
  let welcome: Record<string, unknown>;
  try {
    welcome = (await server.request({ path: '' })) as Record<string, unknown>;
  } catch (err) {
    throw storeError(err, 'setup.welcome');
  }
  const version = typeof welcome['version'] === 'string' ? welcome['version'] : '?';
  if (welcome['couchdb'] !== undefined) {
    if (!/^3\./.test(version)) throw new FieldvaultError('CONFIG_INVALID', { detail: `CouchDB ${version} found; fieldvault needs Apache CouchDB 3.x` });
    return { flavour: 'couchdb', version };
  }
  if (welcome['express-pouchdb'] !== undefined) return { flavour: 'embedded-stand-in', version };
  throw new FieldvaultError('CONFIG_INVALID', { detail: 'the URL does not answer like CouchDB' });
}

/**
 * Whether the credentials in `url` log in as `user` (CouchDB's `_session`). 'unknown' when the
 * server has no authentication at all (the embedded stand-in): there is nothing to check.
 */
export async function checkCouchLogin(url: string, user: string): Promise<'ok' | 'wrong' | 'unknown'> {
  const server = nano({ url });
  try {
    const res = (await server.request({ path: '_session' })) as { userCtx?: { name?: unknown; roles?: unknown } };
    const name = res.userCtx?.name;
    if (name === user) return 'ok';
    if (name === null && Array.isArray(res.userCtx?.roles) && res.userCtx.roles.includes('_admin')) return 'unknown';
    return 'wrong';
  } catch (err) {
    const status = statusOf(err);
    if (status === 401 || status === 403) return 'wrong';
    throw storeError(err, 'setup.session');
  }
}

/**
 * Sets a CouchDB up for fieldvault (see above).
 * @throws STORE_ADMIN_REQUIRED when the credentials are not a server admin's,
 * @throws STORE_UNAVAILABLE when CouchDB cannot be reached, CONFIG_INVALID when it is not CouchDB 3.x,
 * @throws INPUT_INVALID for a bad user name, or a missing user with no password to give it.
 */
export async function setupCouch(options: CouchSetupOptions): Promise<CouchSetupResult> {
  if (!COUCH_USER_PATTERN.test(options.appUser)) {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'app user: lowercase letters, digits, "_", ".", "-", starting with a letter', details: { field: 'appUser' } });
  }
  const { flavour, version } = await detectCouch(options.adminUrl);
  const server = nano({ url: options.adminUrl });

  const session = (await call(server, 'setup.session', { path: '_session' }).catch((err: unknown) => {
    throw storeError(err, 'setup.session');
  })) as { userCtx?: { name?: unknown; roles?: unknown } };
  const roles = session.userCtx?.roles;
  if (!Array.isArray(roles) || !roles.includes('_admin')) throw new FieldvaultError('STORE_ADMIN_REQUIRED');
  if (session.userCtx?.name === options.appUser) {
    throw new FieldvaultError('INPUT_INVALID', { detail: 'the app user must not be the CouchDB admin', details: { field: 'appUser' } });
  }

  // `_users` is created by CouchDB's cluster setup; a bare single node may not have it yet.
  try {
    await server.db.create('_users');
  } catch (err) {
    const status = statusOf(err);
    if (status === 401 || status === 403) throw new FieldvaultError('STORE_ADMIN_REQUIRED');
    if (status !== 412) throw storeError(err, 'setup.users_db');
  }

  const users = server.use<Record<string, unknown> & { _id: string; _rev?: string }>('_users');
  const userId = `org.couchdb.user:${options.appUser}`;
  let existing: (Record<string, unknown> & { _rev?: string }) | undefined;
  try {
    existing = await users.get(userId);
  } catch (err) {
    if (statusOf(err) !== 404) throw storeError(err, 'setup.user_get');
  }
  let user: CouchSetupResult['user'] = 'kept';
  if (existing === undefined || options.appPassword !== null || (Array.isArray(existing['roles']) && existing['roles'].length > 0)) {
    if (existing === undefined && options.appPassword === null) {
      throw new FieldvaultError('INPUT_INVALID', { detail: `CouchDB user ${options.appUser} does not exist and no password was given` });
    }
    // No roles: the user is neither a server admin nor admin of any database by role.
    const doc: Record<string, unknown> & { _id: string; _rev?: string } = { ...(existing ?? {}), _id: userId, name: options.appUser, type: 'user', roles: [] };
    // CouchDB 3.x hashes `password` (PBKDF2) when it stores the document. The embedded stand-in
    // has no users or authentication at all and would keep it in clear text: it gets none.
    if (options.appPassword !== null && flavour === 'couchdb') doc['password'] = options.appPassword;
    try {
      await users.insert(doc);
    } catch (err) {
      throw storeError(err, 'setup.user_put');
    }
    user = existing === undefined ? 'created' : options.appPassword !== null ? 'password-set' : 'kept';
  }

  const databases: Array<{ name: string; created: boolean; securityUpdated: boolean }> = [];
  for (const name of DATABASES.map((d) => `${options.dbPrefix}${d}`)) {
    let created = true;
    try {
      await server.db.create(name);
    } catch (err) {
      if (statusOf(err) !== 412) throw storeError(err, 'setup.db_create');
      created = false;
    }
    databases.push({ name, created, securityUpdated: false });
  }

  // Views: written here with admin rights; the server, as a member, only checks their version.
  await createCouchRepository({ url: options.adminUrl, dbPrefix: options.dbPrefix }).init();

  for (const entry of databases) {
    const current = ((await call(server, 'setup.security_get', { db: entry.name, path: '_security' }).catch((err: unknown) => {
      throw storeError(err, 'setup.security_get');
    })) ?? {}) as Security;
    const members = current.members?.names ?? [];
    if (members.includes(options.appUser)) continue;
    const next: Security = {
      admins: { names: current.admins?.names ?? [], roles: current.admins?.roles ?? [] },
      members: { names: [...members, options.appUser], roles: current.members?.roles ?? [] },
    };
    await call(server, 'setup.security_put', { db: entry.name, path: '_security', method: 'PUT', body: next }).catch((err: unknown) => {
      throw storeError(err, 'setup.security_put');
    });
    entry.securityUpdated = true;
  }
  return { flavour, version, databases, user };
}
