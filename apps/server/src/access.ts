/**
 * Permission problems on what the server creates, writes or reads at start-up, said in the
 * operator's terms (operations audit 3): a bare `EACCES` with a Node stack named neither the
 * setting to change nor the account to give the directory to. Here it becomes
 * CONFIG_DATA_DIR_UNWRITABLE naming the variable, the path, the account running the server and the
 * owner of the path, with the command that fixes it.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, isAbsolute } from 'node:path';
import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';
import type { AppConfig } from './config.js';

/** Refusals the operator fixes with chown/chmod or another path, not bugs. */
const DENIED = new Set(['EACCES', 'EPERM', 'EROFS']);

/** The account name of `uid` from /etc/passwd, or null (no such entry, or no /etc/passwd). */
export function userName(uid: number): string | null {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (id === String(uid) && name !== undefined && name !== '') return name;
    }
  } catch {
    // No passwd file (a minimal container): the uid alone is still exact.
  }
  return null;
}

/** `name (uid N)`, or `uid N` when the account has no name. */
export function accountLabel(uid: number): string {
  const name = userName(uid);
  return name === null ? `uid ${uid}` : `${name} (uid ${uid})`;
}

/** The account running this process, for messages; null where there are no uids (Windows). */
export function currentUid(): number | null {
  return process.getuid === undefined ? null : process.getuid();
}

function within(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** `path` itself if it exists, else its nearest existing ancestor: the one that refused. */
function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/** Which setting decides `path`: a file named by its own variable, else the data directory. */
function settingOf(path: string, config: AppConfig): { variable: string; root: string; isFile: boolean } {
  const files: Array<[string, string | null]> = [
    ['FIELDVAULT_KEK_FILE', config.kekFile],
    ['FIELDVAULT_COUCHDB_URL_FILE', config.couchdbUrlFile],
    ['FIELDVAULT_TLS_CERT', config.tlsCertFile],
    ['FIELDVAULT_TLS_KEY', config.tlsKeyFile],
  ];
  for (const [variable, file] of files) {
    if (file === null || within(file, config.dataDir)) continue;
    // The file, its temporary sibling while it is written, or a directory on the way to it.
    if (path === file || path.startsWith(`${file}.`) || within(file, path)) return { variable, root: file, isFile: true };
  }
  return { variable: 'FIELDVAULT_DATA_DIR', root: config.dataDir, isFile: false };
}

const VERBS: Readonly<Record<string, string>> = {
  mkdir: 'create the directory',
  open: 'open',
  access: 'write in',
  chmod: 'change the mode of',
  rename: 'rename',
  unlink: 'remove',
  rmdir: 'remove',
  scandir: 'list',
};

/**
 * CONFIG_DATA_DIR_UNWRITABLE for a Node file-system refusal (`EACCES`, `EPERM`, `EROFS` with a
 * path), else null: catalogued errors and anything else pass through unchanged.
 */
export function accessProblem(err: unknown, config: AppConfig): FieldvaultError | null {
  if (isFieldvaultError(err) || typeof err !== 'object' || err === null) return null;
  const { code, path, syscall } = err as { code?: unknown; path?: unknown; syscall?: unknown };
  if (typeof code !== 'string' || !DENIED.has(code) || typeof path !== 'string') return null;
  const { variable, root, isFile } = settingOf(path, config);
  const verb = typeof syscall === 'string' ? (VERBS[syscall] ?? syscall) : 'use';
  const uid = currentUid();
  const me = uid === null ? 'this account' : accountLabel(uid);
  const meShort = uid === null ? 'ACCOUNT' : (userName(uid) ?? String(uid));
  const refused = nearestExisting(path);
  let owner = '';
  try {
    const st = statSync(refused);
    owner = `; ${refused} belongs to ${accountLabel(st.uid)} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`;
  } catch {
    // Not even stat-able (a parent we may not enter): the path and the account still say it.
  }
  let fix: string;
  if (code === 'EROFS') {
    fix = `${refused} is on a read-only file system: set ${variable} to a path on a writable one`;
  } else if (!within(refused, isFile ? dirname(root) : root)) {
    // The directory does not exist yet and this account may not create it where it should be.
    const dir = isFile ? dirname(root) : root;
    fix = `create ${dir} for this account first (as root: install -d -m 700 -o ${meShort} ${dir}), or set ${variable} to a path this account may write`;
  } else {
    fix = isFile
      ? `give it to this account (as root: chown ${meShort} ${refused}), or set ${variable} to a file this account owns`
      : `give the data directory to this account (as root: chown -R ${meShort} ${root}), or set ${variable} to a directory this account owns`;
  }
  return new FieldvaultError('CONFIG_DATA_DIR_UNWRITABLE', {
    detail: `${variable} ${root}: cannot ${verb} ${path} (${code}); the server runs as ${me}${owner}: ${fix}`,
    cause: err,
  });
}

/** The directories under the data directory the server and its store write in. */
const WRITTEN_DIRS = ['secrets', 'tls', 'couch', 'spool'];

/**
 * Checks before anything starts that the data directory and those of its subdirectories that
 * exist can be written: the store and the upload spool would otherwise fail later, in code
 * that knows nothing of variables or accounts.
 * @throws CONFIG_DATA_DIR_UNWRITABLE
 */
export function assertWritableDataDir(config: AppConfig): void {
  for (const dir of [config.dataDir, ...WRITTEN_DIRS.map((d) => join(config.dataDir, d))]) {
    if (!existsSync(dir)) continue;
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      throw accessProblem(err, config) ?? err;
    }
  }
}
