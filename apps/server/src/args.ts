/**
 * The server's command line. It is configured by FIELDVAULT_* variables only (config.ts), so it
 * answers `--help` and `--version` and refuses every other argument — all before anything is read
 * or created: `main.js --help` used to start a server with a new KEK in whatever directory the
 * admin stood in, and `--port 9443` was silently ignored (admin audit s16, F8).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FieldvaultError } from '@fieldvault/protocol';
import { settings } from './config.js';
import { SERVER_VERSION } from './version.js';

export type Invocation = 'run' | 'help' | 'version';

/** Options people reach for out of habit, and the variable that does it. */
const ALIASES: Readonly<Record<string, string>> = {
  data: 'FIELDVAULT_DATA_DIR',
  cert: 'FIELDVAULT_TLS_CERT',
  key: 'FIELDVAULT_TLS_KEY',
  'couchdb-url': 'COUCHDB_URL',
};

/** An option's name as typed (`--port`, `-p`): shown back. Anything else may be a value, e.g. a URL with a password. */
const OPTION_NAME = /^--?[A-Za-z][A-Za-z0-9-]{0,31}$/;

/**
 * What to do with the arguments after `node main.js`: `--help` anywhere wins (it has no effect).
 * @throws CONFIG_INVALID for any other argument, naming the options (never values) and the
 * variable meant where it can tell.
 */
export function readInvocation(args: readonly string[]): Invocation {
  if (args.length === 0) return 'run';
  if (args.some((a) => a === '--help' || a === '-h')) return 'help';
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) return 'version';
  const names = args.map((a) => a.split('=')[0] ?? '').filter((n) => OPTION_NAME.test(n));
  const others = args.length - names.length;
  const got = [...names.slice(0, 5), ...(others > 0 ? [`${others} ${names.length > 0 ? 'other ' : ''}argument${others === 1 ? '' : 's'}, not shown (a value may be secret)`] : [])];
  const meant = [...new Set(names.map(variableFor).filter((v): v is string => v !== null))];
  const detail =
    'the server takes no arguments: use FIELDVAULT_* variables (' +
    `got ${got.join(', ')}` +
    (meant.length > 0 ? `; set ${meant.join(', ')} instead` : '') +
    '; node apps/server/dist/main.js --help lists the main ones); nothing was started or created';
  throw new FieldvaultError('CONFIG_INVALID', { detail });
}

/** The variable an option like `--port` or `--data-dir` stands for, if there is one. */
function variableFor(option: string): string | null {
  const name = option.replace(/^--?/, '').toLowerCase();
  const alias = ALIASES[name];
  if (alias !== undefined) return alias;
  const env = `FIELDVAULT_${name.replaceAll('-', '_').toUpperCase()}`;
  return settings.some((s) => s.env === env) ? env : null;
}

/** The variables `--help` shows; the rest are in docs/operations.md. */
const MAIN_VARIABLES = [
  'FIELDVAULT_DATA_DIR',
  'FIELDVAULT_HOST',
  'FIELDVAULT_PORT',
  'FIELDVAULT_HTTP_PORT',
  'FIELDVAULT_PUBLIC_HOST',
  'FIELDVAULT_TLS_CERT',
  'FIELDVAULT_TLS_KEY',
  'FIELDVAULT_KEK_FILE',
  'FIELDVAULT_SERVER_ID',
  'COUCHDB_URL',
  'FIELDVAULT_COUCHDB_URL_FILE',
  'FIELDVAULT_LOG_LEVEL',
];

/** The text of `--help`. */
export function usage(): string {
  // In a checkout the guide is beside the code: name it by its full path; elsewhere by its place in the repository.
  const guide = fileURLToPath(new URL('../../../docs/operations.md', import.meta.url));
  const where = existsSync(guide) ? guide : 'docs/operations.md of the fieldvault repository';
  const width = Math.max(...MAIN_VARIABLES.map((v) => v.length));
  const lines = [
    `fieldvault-server ${SERVER_VERSION}: the fieldvault sync server (HTTPS for the phones and the admin CLI).`,
    '',
    'usage: node apps/server/dist/main.js              start the server (npm start: install, build, then this)',
    '       node apps/server/dist/main.js --help | -h',
    '       node apps/server/dist/main.js --version | -V',
    '',
    'It takes no other arguments: it is configured by environment variables, read once at start',
    '(all problems are listed at once and nothing is started). The main ones:',
    ...MAIN_VARIABLES.map((env) => `  ${env.padEnd(width)}  ${settings.find((s) => s.env === env)?.help ?? ''}`),
    '',
    `Every variable, running it as a service, upgrades, TLS and backups: ${where}`,
    '',
  ];
  return lines.join('\n');
}
