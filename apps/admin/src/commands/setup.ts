import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Context } from '../context.js';
import { CliError } from '../errors.js';
import { keyValues, table } from '../output.js';
import type { Action } from './action.js';

/*
 * `setup --couchdb URL`: prepares an Apache CouchDB 3.x for the server (docs/operations.md,
 * "Running on Apache CouchDB 3.x"). The CouchDB admin credentials come from the URL's user info
 * or, for the password, a prompt (or --stdin): they are used for this run only, never printed,
 * logged or written. What the server needs — the CouchDB URL with the least-privilege app user
 * and its generated password — goes into a 0600 secret file the server reads at start.
 */

const DEFAULT_SECRET_FILE = 'data/secrets/couchdb-url';
const PREFIX_PATTERN = /^[a-z][a-z0-9_$()+-]{0,63}$/;

interface SetupOptions {
  readonly couchdb: string;
  readonly prefix: string;
  readonly appUser: string;
  readonly secretFile: string;
  readonly newPassword?: boolean;
}

/** The URL without credentials, for messages. */
function shown(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

/** The URL as written in the secret file (origin + app user + password), or undefined. */
function readSecret(file: string): URL | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return new URL(readFileSync(file, 'utf8').trim());
  } catch {
    throw new CliError('ADMIN_FILE_EXISTS', `${file} exists but does not hold a URL`);
  }
}

/** Atomic 0600 write in a 0700 directory: never visible half-written or to other users. */
function writeSecret(file: string, content: string): string {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  return tmp;
}

async function adminUrl(ctx: Context, raw: string): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Never echo the value: it may carry a password.
    throw new CliError('ADMIN_USAGE', '--couchdb must be a URL like https://admin@couch.example.org:6984');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError('ADMIN_USAGE', '--couchdb must be an http(s) URL');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') throw new CliError('ADMIN_USAGE', '--couchdb is the server URL, without a path or query');
  if (url.username === '') url.username = encodeURIComponent(await ctx.prompter.ask('CouchDB admin user', { secret: false }));
  if (url.password === '') url.password = encodeURIComponent(await ctx.prompter.ask(`CouchDB password of ${decodeURIComponent(url.username)}`));
  else ctx.out.note('note: a password in --couchdb is visible to other users of this machine (process list, shell history); leave it out to be asked');
  if (url.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    ctx.out.note('warning: plain http to a remote CouchDB sends credentials and data unencrypted; use https');
  }
  return url;
}

export function registerSetupCommand(program: Command, action: Action): void {
  program
    .command('setup')
    .description('prepare an Apache CouchDB 3.x: databases, views, a least-privilege app user, _security; write the server\'s secret file')
    .requiredOption('--couchdb <url>', 'CouchDB URL with an admin user, e.g. https://admin@couch.internal:6984 (the password is asked)')
    .option('--prefix <prefix>', 'prefix of the database names (FIELDVAULT_COUCHDB_PREFIX of the server)', 'fieldvault_')
    .option('--app-user <name>', 'CouchDB user the server runs as', 'fieldvault_app')
    .option('--secret-file <file>', 'where to write the server\'s CouchDB URL (mode 0600)', DEFAULT_SECRET_FILE)
    .option('--new-password', 'give the app user a new password even if the secret file still works')
    .action(
      action(async (ctx, opts) => {
        const o = opts as SetupOptions;
        if (!PREFIX_PATTERN.test(o.prefix)) throw new CliError('ADMIN_USAGE', '--prefix: start with a-z, then a-z 0-9 _$()+-');
        const server = await import('@fieldvault/server');
        if (!server.COUCH_USER_PATTERN.test(o.appUser)) throw new CliError('ADMIN_USAGE', '--app-user: lowercase letters, digits, "_", ".", "-", starting with a letter');
        const secretFile = resolve(o.secretFile);
        const admin = await adminUrl(ctx, o.couchdb);

        // Re-running keeps a working setup: the app user's password changes only if the secret
        // file is missing, belongs to this CouchDB and user but no longer logs in, or --new-password.
        const existing = readSecret(secretFile);
        if (existing !== undefined && (existing.origin !== admin.origin || decodeURIComponent(existing.username) !== o.appUser)) {
          throw new CliError('ADMIN_FILE_EXISTS', `${secretFile} is for ${shown(existing)} as ${decodeURIComponent(existing.username)}`);
        }
        let keep = false;
        if (existing !== undefined && o.newPassword !== true) {
          const login = await server.checkCouchLogin(existing.href, o.appUser);
          keep = login === 'ok' || login === 'unknown';
        }
        const attempt = async (keepPassword: boolean): Promise<{ result: Awaited<ReturnType<typeof server.setupCouch>>; written: boolean }> => {
          let password: string | null = null;
          let tmp: string | undefined;
          if (!keepPassword) {
            password = randomBytes(32).toString('base64url');
            const appUrl = new URL(admin.origin);
            appUrl.username = encodeURIComponent(o.appUser);
            appUrl.password = password;
            // Written before CouchDB changes the password, renamed into place after: a failure in
            // between leaves the old file and password working together.
            tmp = writeSecret(secretFile, `${appUrl.href.replace(/\/$/, '')}\n`);
          }
          try {
            const result = await server.setupCouch({ adminUrl: admin.href, dbPrefix: o.prefix, appUser: o.appUser, appPassword: password });
            if (tmp !== undefined) renameSync(tmp, secretFile);
            return { result, written: tmp !== undefined };
          } finally {
            if (tmp !== undefined) rmSync(tmp, { force: true });
          }
        };
        let outcome: Awaited<ReturnType<typeof attempt>>;
        try {
          outcome = await attempt(keep);
        } catch (err) {
          // Kept because nothing could be checked (the stand-in), but the user is gone: make it anew.
          if (!keep || (err as { code?: unknown }).code !== 'INPUT_INVALID') throw err;
          outcome = await attempt(false);
        }
        const { result, written } = outcome;

        const standIn = result.flavour === 'embedded-stand-in';
        const data = {
          couchdb: shown(admin),
          flavour: result.flavour,
          version: result.version,
          appUser: o.appUser,
          user: result.user,
          secretFile,
          secretFileWritten: written,
          databases: result.databases,
        };
        ctx.out.result(data, () =>
          [
            keyValues([
              ['CouchDB', `${shown(admin)} (${standIn ? 'embedded stand-in' : 'Apache CouchDB'} ${result.version})`],
              ['app user', `${o.appUser}: ${result.user === 'kept' ? 'kept (its password still works)' : result.user === 'created' ? 'created' : 'new password set'}; no roles, not an admin`],
              ['secret file', `${secretFile} (0600) ${written ? 'written' : 'unchanged'}`],
            ]),
            '',
            table(result.databases, [
              { header: 'DATABASE', value: (d) => d.name },
              { header: 'STATE', value: (d) => (d.created ? 'created' : 'existed') },
              { header: '_SECURITY', value: (d) => (d.securityUpdated ? `${o.appUser} added as member` : 'already a member') },
            ]),
            '',
            secretFile === resolve(DEFAULT_SECRET_FILE)
              ? 'Start the server from this directory (it reads data/secrets/couchdb-url), with'
              : `Start the server with FIELDVAULT_COUCHDB_URL_FILE=${secretFile} and`,
            `FIELDVAULT_COUCHDB_PREFIX=${o.prefix}. The file holds the app user's password: keep it 0600, on the server only.`,
            ...(standIn ? ['', 'Note: the embedded stand-in has no users or authentication and does not enforce _security; on it this only checks the steps.'] : []),
          ].join('\n'),
        );
      }),
    );
}
