/**
 * The server's configuration: the only module that reads `process.env`. Every setting is parsed
 * and checked once at start-up, all problems are reported together, and the result is frozen.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { FieldvaultError } from '@fieldvault/protocol';
import { distance } from 'fastest-levenshtein';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface AppConfig {
  /** Root of everything the server writes: embedded store, secrets, dev TLS cert. */
  readonly dataDir: string;
  readonly host: string;
  /** HTTPS port. */
  readonly port: number;
  /** Plain-HTTP port that only redirects to HTTPS; null disables it. */
  readonly httpPort: number | null;
  /** A real CouchDB 3.x (credentials of the least-privilege user inside); null → embedded store. */
  readonly couchdbUrl: string | null;
  /**
   * File holding that URL instead (mode 0600, written by `fieldvault-admin setup`): explicit, else
   * `<data>/secrets/couchdb-url` when it exists; null → none.
   */
  readonly couchdbUrlFile: string | null;
  readonly couchDbPrefix: string;
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  readonly kekFile: string;
  /** HLC issuer id of this server; null → generated once and kept in the data dir. */
  readonly serverId: string | null;
  readonly passwordMinLength: number;
  readonly sessionTtlSeconds: number;
  /** Most password checks waiting or running at once (more get AUTH_BUSY with Retry-After). */
  readonly loginQueue: number;
  /** How long the server waits at start for a store that does not answer yet (ms). */
  readonly storeWaitMs: number;
  /** Most pull pages read ahead and held at once (0 = off). */
  readonly pullReadAhead: number;
  /** Lifetime of admin sessions (console and device logins). */
  readonly adminSessionTtlSeconds: number;
  readonly authCacheMs: number;
  /** false only for test fixtures: admins without TOTP may log in with a password alone. */
  readonly adminTotpRequired: boolean;
  readonly maxSkewMs: number;
  readonly logLevel: LogLevel;
  /** Requests per minute per client IP, all routes / login-like routes. */
  readonly rateLimitPerMinute: number;
  readonly authRateLimitPerMinute: number;
  /** Trust X-Forwarded-For from a reverse proxy (client IPs for rate limits and audit). */
  readonly trustProxy: boolean;
  /**
   * Names (or addresses) phones use to reach this server; the HTTP → HTTPS redirect goes only to
   * one of these or to an address of this machine (security audit L1). Empty → the machine's own.
   */
  readonly publicHosts: readonly string[];
  /** Most password checks one client address (IPv6 /64) may hold in the login queue. */
  readonly loginQueuePerClient: number;
  /** Slow clients and socket caps (security audit M1). */
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** 0 = no limit. */
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
  /** Sign-up limits (security audit M3). */
  readonly signups: {
    readonly maxBytes: number;
    readonly maxRecords: number;
    readonly quarantineMaxRecords: number;
    readonly quarantineMaxBytes: number;
    readonly maxPending: number;
    readonly perClientPerHour: number;
  };
}

interface Setting {
  readonly env: string;
  readonly help: string;
}

/** Every supported variable, so that a typo (`FIELDVAULT_PROT`) is reported instead of ignored. */
export const settings: readonly Setting[] = [
  { env: 'FIELDVAULT_DATA_DIR', help: 'data directory (default ./data of the working directory: give an absolute path under a service manager)' },
  { env: 'FIELDVAULT_HOST', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)' },
  { env: 'FIELDVAULT_PORT', help: 'HTTPS port (default 8443)' },
  { env: 'FIELDVAULT_HTTP_PORT', help: 'HTTP port redirecting to HTTPS (default 8080; "off" disables)' },
  { env: 'COUCHDB_URL', help: 'Apache CouchDB 3.x URL with the app user credentials (default: embedded store)' },
  { env: 'FIELDVAULT_COUCHDB_URL_FILE', help: 'file (mode 0600) holding COUCHDB_URL, as written by fieldvault-admin setup (default <data>/secrets/couchdb-url if it exists)' },
  { env: 'FIELDVAULT_COUCHDB_PREFIX', help: 'prefix of the database names (default fieldvault_)' },
  { env: 'FIELDVAULT_TLS_CERT', help: 'PEM certificate chain file (default: self-signed dev cert in the data dir)' },
  { env: 'FIELDVAULT_TLS_KEY', help: 'PEM private key file, mode 0600 (default: dev key in the data dir)' },
  { env: 'FIELDVAULT_KEK_FILE', help: 'server key-encryption key file, mode 0600 (default <data>/secrets/kek)' },
  { env: 'FIELDVAULT_SERVER_ID', help: 'issuer id in key timestamps (default: generated once, kept in <data>/server-id)' },
  { env: 'FIELDVAULT_PASSWORD_MIN_LENGTH', help: 'minimum password length, 8..64 (default 15)' },
  { env: 'FIELDVAULT_SESSION_TTL', help: 'session lifetime in seconds (default 43200 = 12 h)' },
  { env: 'FIELDVAULT_STORE_WAIT_SECONDS', help: 'how long the server waits at start for a CouchDB that is not answering yet before it exits (default 60)' },
  { env: 'FIELDVAULT_PULL_READ_AHEAD', help: 'most next pull pages read from the store before the phone asks and held at once, server-wide (one per session, 30 s at most; default 16, 0 = off)' },
  { env: 'FIELDVAULT_LOGIN_QUEUE', help: 'most password checks queued at once; more logins get 503 AUTH_BUSY with Retry-After and the phones retry (default 32)' },
  { env: 'FIELDVAULT_ADMIN_SESSION_TTL', help: 'admin session lifetime in seconds, 60..86400 (default 3600 = 1 h)' },
  { env: 'FIELDVAULT_AUTH_CACHE_MS', help: "ms a server remembers a session's authentication reads; other server processes' revocations take up to this long to be seen (default 0 = off)" },
  { env: 'FIELDVAULT_ADMIN_TOTP', help: '"required" (default): admins need TOTP; "optional" only for test fixtures (admins without TOTP log in with a password alone)' },
  { env: 'FIELDVAULT_MAX_SKEW_MS', help: 'allowed clock skew of key timestamps in ms (default 300000)' },
  { env: 'FIELDVAULT_LOG_LEVEL', help: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  { env: 'FIELDVAULT_RATE_LIMIT', help: 'requests per minute per client IP on every route (default 600)' },
  { env: 'FIELDVAULT_AUTH_RATE_LIMIT', help: 'login/challenge/password requests per minute per client IP (default 60; raise it when many phones share one address)' },
  { env: 'FIELDVAULT_TRUST_PROXY', help: '"true" behind a reverse proxy you run, so X-Forwarded-For gives client IPs (default false)' },
  { env: 'FIELDVAULT_PUBLIC_HOST', help: 'comma-separated host names phones use for this server; plain HTTP redirects only to these or to the machine\'s own names and addresses (default: the machine\'s own)' },
  { env: 'FIELDVAULT_LOGIN_QUEUE_PER_CLIENT', help: 'most password checks one client address (an IPv6 /64 counts as one) may hold in the login queue; more get 503 AUTH_BUSY (default 4)' },
  { env: 'FIELDVAULT_REQUEST_TIMEOUT', help: 'seconds a request may take to arrive whole (headers and body) before the connection is closed; a cut photo upload resumes (default 300)' },
  { env: 'FIELDVAULT_IDLE_TIMEOUT', help: 'seconds a connection may stay completely silent before it is closed (default 120)' },
  { env: 'FIELDVAULT_MAX_CONNECTIONS', help: 'most open connections, server-wide (default 800; 0 = no limit)' },
  { env: 'FIELDVAULT_MAX_CONNECTIONS_PER_CLIENT', help: 'most open connections from one client address (default 64; 0 = no limit; not applied with FIELDVAULT_TRUST_PROXY)' },
  { env: 'FIELDVAULT_SIGNUP_MAX_BYTES', help: 'largest sign-up request body in bytes (default 2097152)' },
  { env: 'FIELDVAULT_SIGNUP_MAX_RECORDS', help: 'most records in one sign-up request (default 500)' },
  { env: 'FIELDVAULT_SIGNUP_QUARANTINE_RECORDS', help: 'most records one pending sign-up holds before an admin decides (default 500)' },
  { env: 'FIELDVAULT_SIGNUP_QUARANTINE_BYTES', help: 'most bytes of records one pending sign-up holds before an admin decides (default 2097152)' },
  { env: 'FIELDVAULT_SIGNUP_MAX_PENDING', help: 'most pending sign-up requests on the server; more get 503 SIGNUP_SERVER_FULL until an admin decides some (default 100)' },
  { env: 'FIELDVAULT_SIGNUPS_PER_ADDRESS', help: 'most new sign-up requests per client address per hour (default 5)' },
];

/**
 * Variables of fieldvault's other programs (the two CLIs' homes, the SDK tour's password). A shell
 * that runs them and the server sets them too; they are not typos of the server's settings.
 */
const OTHER_PROGRAMS = new Map([
  ['FIELDVAULT_ADMIN_HOME', 'the admin CLI'],
  ['FIELDVAULT_FIELD_HOME', 'the field CLI'],
  ['FIELDVAULT_EXAMPLE_PASSWORD', 'the SDK example'],
]);

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const SERVER_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A DNS name, an IPv4 address, or an IPv6 address in brackets (as in a Host header). */
export const HOST_NAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])$/;

const PREFIX = 'FIELDVAULT_';

/**
 * The supported name a mistyped `name` most likely meant, or undefined when none is close: at most
 * 2 edits, or a quarter of the name for long names (a swap of two letters is 2 edits:
 * `FIELDVAULT_PROT`). Compared without the common prefix and case, which would make every name
 * look close to every other.
 */
export function closestVariable(name: string, candidates: Iterable<string>): string | undefined {
  const typed = name.slice(PREFIX.length).toUpperCase();
  let best: { name: string; edits: number } | undefined;
  for (const candidate of candidates) {
    if (!candidate.startsWith(PREFIX)) continue;
    const wanted = candidate.slice(PREFIX.length);
    const edits = distance(typed, wanted);
    if (edits > Math.max(2, Math.floor(wanted.length / 4))) continue;
    if (best === undefined || edits < best.edits) best = { name: candidate, edits };
  }
  return best?.name;
}

/**
 * Reads the configuration from `env` (relative paths resolve against `cwd`).
 * @throws CONFIG_INVALID listing every problem found.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): AppConfig {
  const problems: string[] = [];
  const known = new Set(settings.map((s) => s.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith(PREFIX) && !known.has(name) && !OTHER_PROGRAMS.has(name)) {
      // A typo gets the one name it most likely meant; the whole list (35 names) only when none is close.
      const meant = closestVariable(name, [...known, ...OTHER_PROGRAMS.keys()]);
      // Another program's variable is a fine guess, but the server does not read it: say so.
      const reader = meant === undefined ? undefined : OTHER_PROGRAMS.get(meant);
      problems.push(
        meant === undefined
          ? `unsupported ${name}; supported: ${settings.filter((s) => s.env.startsWith(PREFIX)).map((s) => s.env).join(', ')}`
          : `unsupported ${name}: did you mean ${meant}?${reader === undefined ? '' : ` (read by ${reader}, not by the server)`}`,
      );
    } else if (known.has(name) && name.startsWith('FIELDVAULT_') && env[name]?.trim() === '') {
      // `FIELDVAULT_PORT=` in an env file is more likely a value forgotten than a wish for the
      // default (audit 10): leave the variable out to get the default.
      problems.push(`${name} is set but empty: give it a value, or remove it for the default`);
    }
  }
  const str = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number, orElse = ''): number => {
    const v = str(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer in ${min}..${max}${orElse}, got "${v}"`);
      return fallback;
    }
    return n;
  };
  const path = (v: string): string => (isAbsolute(v) ? v : resolve(cwd, v));

  const dataDir = path(str('FIELDVAULT_DATA_DIR') ?? 'data');
  const httpRaw = str('FIELDVAULT_HTTP_PORT');
  const httpPort = httpRaw?.toLowerCase() === 'off' ? null : int('FIELDVAULT_HTTP_PORT', 8080, 0, 65535, ' or "off" (no plain-HTTP redirect)');

  let couchdbUrl: string | null = str('COUCHDB_URL') ?? null;
  if (couchdbUrl !== null) {
    try {
      const u = new URL(couchdbUrl);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push('COUCHDB_URL must be an http(s) URL');
    } catch {
      // Never echo the value: it usually carries the CouchDB password.
      problems.push('COUCHDB_URL is not a valid URL');
      couchdbUrl = null;
    }
  }

  const urlFileRaw = str('FIELDVAULT_COUCHDB_URL_FILE');
  if (urlFileRaw !== undefined && couchdbUrl !== null) problems.push('set COUCHDB_URL or FIELDVAULT_COUCHDB_URL_FILE, not both');
  const defaultUrlFile = `${dataDir}/secrets/couchdb-url`;
  const couchdbUrlFile = urlFileRaw !== undefined ? path(urlFileRaw) : couchdbUrl === null && existsSync(defaultUrlFile) ? defaultUrlFile : null;

  const prefix = str('FIELDVAULT_COUCHDB_PREFIX') ?? 'fieldvault_';
  if (!/^[a-z][a-z0-9_$()+-]{0,63}$/.test(prefix)) {
    problems.push('FIELDVAULT_COUCHDB_PREFIX must start with a-z and use only a-z 0-9 _$()+- (CouchDB database name rules)');
  }

  const cert = str('FIELDVAULT_TLS_CERT');
  const key = str('FIELDVAULT_TLS_KEY');
  if ((cert === undefined) !== (key === undefined)) {
    problems.push('FIELDVAULT_TLS_CERT and FIELDVAULT_TLS_KEY must be set together (or neither, for the dev certificate)');
  }

  const serverId = str('FIELDVAULT_SERVER_ID') ?? null;
  if (serverId !== null && !SERVER_ID.test(serverId)) {
    problems.push('FIELDVAULT_SERVER_ID must match ^[a-z0-9][a-z0-9._-]{0,63}$');
  }

  const logLevel = (str('FIELDVAULT_LOG_LEVEL') ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`FIELDVAULT_LOG_LEVEL must be one of ${LOG_LEVELS.join('|')}`);

  const trustRaw = str('FIELDVAULT_TRUST_PROXY') ?? 'false';
  if (trustRaw !== 'true' && trustRaw !== 'false') problems.push('FIELDVAULT_TRUST_PROXY must be "true" or "false"');

  const totpRaw = str('FIELDVAULT_ADMIN_TOTP') ?? 'required';
  if (totpRaw !== 'required' && totpRaw !== 'optional') problems.push('FIELDVAULT_ADMIN_TOTP must be "required" or "optional"');

  const publicHosts = (str('FIELDVAULT_PUBLIC_HOST') ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  for (const h of publicHosts) {
    if (!HOST_NAME.test(h)) problems.push(`FIELDVAULT_PUBLIC_HOST: "${h}" is not a host name or address (letters, digits, dots, dashes; IPv6 in brackets)`);
  }

  const config: AppConfig = {
    dataDir,
    host: str('FIELDVAULT_HOST') ?? '127.0.0.1',
    port: int('FIELDVAULT_PORT', 8443, 0, 65535),
    httpPort,
    couchdbUrl,
    couchdbUrlFile,
    couchDbPrefix: prefix,
    tlsCertFile: cert === undefined ? null : path(cert),
    tlsKeyFile: key === undefined ? null : path(key),
    kekFile: path(str('FIELDVAULT_KEK_FILE') ?? `${dataDir}/secrets/kek`),
    serverId,
    passwordMinLength: int('FIELDVAULT_PASSWORD_MIN_LENGTH', 15, 8, 64),
    sessionTtlSeconds: int('FIELDVAULT_SESSION_TTL', 43_200, 60, 30 * 86_400),
    loginQueue: int('FIELDVAULT_LOGIN_QUEUE', 32, 1, 100_000),
    storeWaitMs: int('FIELDVAULT_STORE_WAIT_SECONDS', 60, 0, 600) * 1000,
    pullReadAhead: int('FIELDVAULT_PULL_READ_AHEAD', 16, 0, 10_000),
    adminSessionTtlSeconds: int('FIELDVAULT_ADMIN_SESSION_TTL', 3_600, 60, 86_400),
    authCacheMs: int('FIELDVAULT_AUTH_CACHE_MS', 0, 0, 10_000),
    adminTotpRequired: totpRaw !== 'optional',
    maxSkewMs: int('FIELDVAULT_MAX_SKEW_MS', 300_000, 1_000, 3_600_000),
    logLevel,
    rateLimitPerMinute: int('FIELDVAULT_RATE_LIMIT', 600, 1, 1_000_000),
    authRateLimitPerMinute: int('FIELDVAULT_AUTH_RATE_LIMIT', 60, 1, 1_000_000),
    trustProxy: trustRaw === 'true',
    publicHosts,
    loginQueuePerClient: int('FIELDVAULT_LOGIN_QUEUE_PER_CLIENT', 4, 1, 100_000),
    requestTimeoutMs: int('FIELDVAULT_REQUEST_TIMEOUT', 300, 1, 3_600) * 1000,
    idleTimeoutMs: int('FIELDVAULT_IDLE_TIMEOUT', 120, 1, 3_600) * 1000,
    maxConnections: int('FIELDVAULT_MAX_CONNECTIONS', 800, 0, 1_000_000),
    maxConnectionsPerClient: int('FIELDVAULT_MAX_CONNECTIONS_PER_CLIENT', 64, 0, 1_000_000),
    signups: {
      maxBytes: int('FIELDVAULT_SIGNUP_MAX_BYTES', 2_097_152, 1_024, 67_108_864),
      maxRecords: int('FIELDVAULT_SIGNUP_MAX_RECORDS', 500, 0, 10_000),
      quarantineMaxRecords: int('FIELDVAULT_SIGNUP_QUARANTINE_RECORDS', 500, 0, 1_000_000),
      quarantineMaxBytes: int('FIELDVAULT_SIGNUP_QUARANTINE_BYTES', 2_097_152, 0, 1_073_741_824),
      maxPending: int('FIELDVAULT_SIGNUP_MAX_PENDING', 100, 1, 1_000_000),
      perClientPerHour: int('FIELDVAULT_SIGNUPS_PER_ADDRESS', 5, 1, 100_000),
    },
  };
  if (problems.length > 0) {
    throw new FieldvaultError('CONFIG_INVALID', { detail: problems.join('; ') });
  }
  return Object.freeze(config);
}
