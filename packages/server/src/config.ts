import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  FieldvaultError,
  FormDefinitionSchema,
  MAX_HISTORY_CEILING,
  NODE_ID_PATTERN,
  PUSH_MAX_RECORDS_CEILING,
  PASSWORD_MAX_LENGTH_CEILING,
  PASSWORD_MAX_LENGTH_FLOOR,
  PASSWORD_MIN_LENGTH_FLOOR,
  parseFormDefinition,
} from '@fieldvault/protocol';

/** Database names are `<dbPrefix><name>`; CouchDB allows `[a-z][a-z0-9_$()+/-]*`, we allow less. */
export const DB_PREFIX_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

/**
 * Everything `buildApp` needs, as plain data. Validated once (all problems listed together),
 * defaults filled in, then frozen. Only apps/server reads the environment and secret files.
 */
export const ServerConfigSchema = Type.Object(
  {
    couch: Type.Object(
      {
        /** CouchDB base URL, may carry the app user's credentials (never logged). */
        url: Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048 }),
        /** Prefix of every database name, so several servers or tests can share one CouchDB. */
        dbPrefix: Type.String({ pattern: DB_PREFIX_PATTERN.source, default: 'fieldvault_' }),
        /**
         * How long the server waits at start for a store that is not answering yet (a CouchDB
         * still starting, a busy machine) before it gives up with STORE_UNAVAILABLE.
         */
        startupWaitMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 60_000 }),
      },
      { additionalProperties: false },
    ),
    /** The server key-encryption key (32 bytes) that seals stored DB keys. */
    kek: Type.Uint8Array({ minByteLength: 32, maxByteLength: 32 }),
    /** This server's HLC node id: it stamps and names the keys it issues. Stable across restarts. */
    serverId: Type.String({ pattern: NODE_ID_PATTERN.source, maxLength: 64 }),
    /** How far (ms) a received key timestamp may be ahead of this server's clock. */
    maxSkewMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 300_000 }),
    password: Type.Object(
      {
        minLength: Type.Integer({ minimum: PASSWORD_MIN_LENGTH_FLOOR, maximum: PASSWORD_MAX_LENGTH_CEILING, default: 15 }),
        maxLength: Type.Integer({ minimum: PASSWORD_MAX_LENGTH_FLOOR, maximum: PASSWORD_MAX_LENGTH_CEILING, default: 256 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Argon2id parameters for password hashes. Lower them only in tests. */
    argon2: Type.Object(
      {
        memoryKiB: Type.Integer({ minimum: 1024, maximum: 4_194_304, default: 65_536 }),
        timeCost: Type.Integer({ minimum: 1, maximum: 20, default: 3 }),
        parallelism: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
        /**
         * Where hashing runs: `process` (one child process under `nice`, so a login storm cannot
         * starve the event loop and the store of CPU) or `threadpool` (this process's libuv threads).
         */
        isolation: Type.Union([Type.Literal('process'), Type.Literal('threadpool')], { default: 'process' }),
        /** `nice` increment of the hashing process (`isolation: 'process'` only). */
        niceness: Type.Integer({ minimum: 0, maximum: 19, default: 10 }),
        /**
         * Most password checks waiting or running at once; more are refused with AUTH_BUSY (503 +
         * Retry-After) so that a login storm queues on the phones, which back off, instead of in
         * the server, where requests would outlive the phones' timeouts.
         */
        maxQueued: Type.Integer({ minimum: 1, maximum: 100_000, default: 32 }),
        /**
         * Most of those one client address (an IPv6 /64 counts as one) may hold at once, so that one
         * address cannot fill the queue and lock everyone else out (security audit M4).
         */
        maxQueuedPerClient: Type.Integer({ minimum: 1, maximum: 100_000, default: 4 }),
      },
      { additionalProperties: false, default: {} },
    ),
    session: Type.Object(
      {
        ttlSeconds: Type.Integer({ minimum: 60, maximum: 2_592_000, default: 43_200 }),
        /** Lifetime of an admin's sessions (console and device logins alike): short, they can do everything. */
        adminTtlSeconds: Type.Integer({ minimum: 60, maximum: 86_400, default: 3_600 }),
        /**
         * How long (ms) a server remembers what authenticating a session read (session, user,
         * device; couch/auth-cache.ts). Its own writes are seen at once; another server process's
         * (a blacklisting, a disabled user, a logout) only after this long. 0 (default): off.
         */
        authCacheMs: Type.Integer({ minimum: 0, maximum: 10_000, default: 0 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Two-factor authentication (RFC 6238 TOTP) of admin accounts. */
    adminTotp: Type.Object(
      {
        /**
         * true: an admin gets no session before enrolling TOTP. false is for test fixtures only:
         * admins without an enrolment log in with the password alone (enrolled admins still need
         * their code). The server warns at start when it is false.
         */
        required: Type.Boolean({ default: true }),
        /** Issuer shown by authenticator apps next to the account name. */
        issuer: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9 ._-]+$', default: 'fieldvault' }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Lifetime of a login challenge (nonce). */
    challenge: Type.Object(
      { ttlSeconds: Type.Integer({ minimum: 5, maximum: 900, default: 120 }) },
      { additionalProperties: false, default: {} },
    ),
    /** Lifetime of an invitation / password-reset token. */
    resetToken: Type.Object(
      { ttlSeconds: Type.Integer({ minimum: 300, maximum: 2_592_000, default: 259_200 }) },
      { additionalProperties: false, default: {} },
    ),
    /** Per-account throttling: lock after `maxFailures` consecutive failures, doubling each time. */
    throttle: Type.Object(
      {
        maxFailures: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
        lockSeconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 60 }),
        maxLockSeconds: Type.Integer({ minimum: 1, maximum: 604_800, default: 3_600 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Per-IP limits (requests per window): `max` for every route, `authMax` for login-like routes. */
    rateLimit: Type.Object(
      {
        max: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 600 }),
        authMax: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 60 }),
        timeWindowMs: Type.Integer({ minimum: 1_000, maximum: 86_400_000, default: 60_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Connection limits (security audit M1): a client that sends slowly, or holds many sockets,
     * must not keep the server's connections and file descriptors. See docs/operations.md.
     */
    http: Type.Object(
      {
        /**
         * Most time to receive one whole request, headers and body (Node's `requestTimeout`); the
         * connection is closed after it. 5 min lets a 4 MiB push arrive at 16 KB/s (a poor 2G link);
         * a photo upload cut by it keeps the bytes received and resumes from there.
         */
        requestTimeoutMs: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 300_000 }),
        /** A socket with no traffic at all for this long is closed (Node's `server.timeout`). */
        connectionTimeoutMs: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 120_000 }),
        /** Most open connections, server-wide; more are closed at once. 0 = no limit. */
        maxConnections: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 800 }),
        /**
         * Most open connections from one client address (IPv6 /64); more are closed at once.
         * 0 = no limit. Not applied with `trustProxy` (every socket then comes from the proxy).
         */
        maxConnectionsPerClient: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 64 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Sign-up requests from phones without an account (security audit M3): they need no session,
     * so what one may store and how many there may be is bounded. See docs/protocol.md.
     */
    signups: Type.Object(
      {
        /** Largest sign-up request body in bytes (half a push: 413 INPUT_TOO_LARGE above). */
        maxBytes: Type.Integer({ minimum: 1_024, maximum: 67_108_864, default: 2_097_152 }),
        /**
         * Most records in one sign-up request; more is refused as a whole with INPUT_TOO_LARGE.
         * The SDK sends 500 per request by default.
         */
        maxRecords: Type.Integer({ minimum: 0, maximum: PUSH_MAX_RECORDS_CEILING, default: 500 }),
        /**
         * Most records, and bytes of records (their JSON), one pending sign-up holds in quarantine,
         * renewals included; records beyond get SIGNUP_QUARANTINE_FULL each and stay on the phone
         * for the first sync after approval. With `maxPending` this bounds the quarantine store.
         */
        quarantineMaxRecords: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 500 }),
        quarantineMaxBytes: Type.Integer({ minimum: 0, maximum: 1_073_741_824, default: 2_097_152 }),
        /** Most pending sign-ups on the server; more new ones get SIGNUP_SERVER_FULL. */
        maxPending: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100 }),
        /** Most new sign-up requests from one client address per hour (SIGNUP_TOO_MANY_FROM_ADDRESS). */
        perClientPerHour: Type.Integer({ minimum: 1, maximum: 100_000, default: 5 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Record sync (DESIGN.md §4): push batch limits, pull page budget, record history limit. */
    sync: Type.Object(
      {
        /** Most records in one push; more is refused as a whole with INPUT_TOO_LARGE. */
        pushMaxRecords: Type.Integer({ minimum: 1, maximum: PUSH_MAX_RECORDS_CEILING, default: 500 }),
        /** Largest push body in bytes (it replaces `bodyLimit` on that route). */
        pushMaxBytes: Type.Integer({ minimum: 1_024, maximum: 67_108_864, default: 4_194_304 }),
        /** Soft size budget of one pull page in bytes: a page stops once it is reached (at least one record). */
        pullMaxBytes: Type.Integer({ minimum: 1_024, maximum: 67_108_864, default: 4_194_304 }),
        /**
         * Pull read-ahead (sync/read-ahead.ts): most next pages read from the store ahead of the
         * phone's request and held at once, server-wide (one per session, 30 s at most); 0 turns it off.
         */
        pullReadAhead: Type.Integer({ minimum: 0, maximum: 10_000, default: 16 }),
        /** Most versions a record's history may hold (RECORD_TOO_LARGE above). */
        maxHistory: Type.Integer({ minimum: 1, maximum: MAX_HISTORY_CEILING, default: 2_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Photo upload and download. */
    photos: Type.Object(
      {
        /** Largest photo accepted, in bytes (PHOTO_TOO_LARGE above). An upload is assembled in memory only while it is checked and written (`maxAssembling` at once). */
        maxBytes: Type.Integer({ minimum: 1_024, maximum: 67_108_864, default: 10_485_760 }),
        /** How long an unfinished upload is kept for resuming before the sweep removes it. */
        uploadTtlSeconds: Type.Integer({ minimum: 60, maximum: 2_592_000, default: 604_800 }),
        /** Photo uploads one user may have in progress at once (more: PHOTO_UPLOAD_BUSY, 429 with Retry-After). */
        maxUploadsPerUser: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
        /** Declared bytes of the unfinished uploads one user may keep for resuming (more: PHOTO_UPLOAD_QUOTA). */
        pendingBytesPerUser: Type.Integer({ minimum: 1_024, maximum: 17_179_869_184, default: 268_435_456 }),
        /** Uploads whose bytes are checked and written to the store at once, server-wide (the others wait their turn). */
        maxAssembling: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
        /** Directory for the bodies of uploads in progress (made 0700, files 0600, encrypted under a per-process key); default: a fresh private directory under the OS temp dir. */
        spoolDir: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Server-side record search. */
    search: Type.Object(
      {
        /** Most index rows one search request reads; a page may end early with a cursor to go on. */
        maxScan: Type.Integer({ minimum: 100, maximum: 100_000, default: 2_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The child form this server publishes and validates records against; default: protocol's `defaultChildForm`. */
    childForm: Type.Optional(FormDefinitionSchema),
    /** Largest accepted request body in bytes. */
    bodyLimit: Type.Integer({ minimum: 1_024, maximum: 67_108_864, default: 1_048_576 }),
    /** One-time token that allows `POST /v1/setup/admin` to create the first admin. */
    setupToken: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{32,256}$' })),
    /** Trust X-Forwarded-For (only behind a reverse proxy you run). */
    trustProxy: Type.Boolean({ default: false }),
    /** How often expired sessions, challenges and reset tokens are removed; 0 turns the sweep off. */
    sweepIntervalSeconds: Type.Integer({ minimum: 0, maximum: 86_400, default: 600 }),
    logLevel: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
  },
  { additionalProperties: false },
);

/** The validated, defaulted, frozen configuration. */
export type ServerConfig = Readonly<Static<typeof ServerConfigSchema>>;

type WithOptionalDefaults<T> = {
  [K in keyof T]?: T[K] extends Uint8Array ? T[K] : T[K] extends object ? WithOptionalDefaults<T[K]> : T[K];
};

/** What callers pass: every setting with a default may be left out. */
export type ServerConfigInput = WithOptionalDefaults<Static<typeof ServerConfigSchema>> & {
  readonly couch: { readonly url: string; readonly dbPrefix?: string; readonly startupWaitMs?: number };
  readonly kek: Uint8Array;
  readonly serverId: string;
};

/** A pino destination: anything with `write(line)`. */
export interface LogStream {
  write(msg: string): void;
}

/** Runtime hooks that are not data: a log destination and a clock (tests fake time here). */
export interface RuntimeOptions {
  /** Where log lines go; default stdout. Tests capture a stream here. */
  readonly logStream?: LogStream;
  /** Wall clock in ms; default `Date.now`. */
  readonly now?: () => number;
  /**
   * TLS for the listener (passed to Node's `https.createServer`); when set, every response also
   * carries HSTS. apps/server loads the files (mode 0600) and passes their contents.
   */
  readonly https?: { readonly key: string | Buffer; readonly cert: string | Buffer; readonly minVersion?: 'TLSv1.2' | 'TLSv1.3' };
}

export type BuildAppInput = ServerConfigInput & RuntimeOptions;

/** Below these, Argon2id is weaker than OWASP's minimum (19 MiB, t=2): accepted only with a warning. */
export const ARGON2_RECOMMENDED_FLOOR = { memoryKiB: 19_456, timeCost: 2 } as const;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Validates a configuration and fills in defaults.
 * @throws CONFIG_INVALID listing every problem at once (setting names only, never values).
 */
export function resolveConfig(input: ServerConfigInput): ServerConfig {
  const { logStream: _s, now: _n, https: _h, ...data } = input as BuildAppInput;
  const kek = data.kek;
  // The KEK is taken as is (not cloned into the error path or defaults machinery).
  const candidate = Value.Default(ServerConfigSchema, { ...Value.Clone({ ...data, kek: undefined }), kek });
  const problems: string[] = [];
  for (const e of Value.Errors(ServerConfigSchema, candidate)) {
    const name = e.path === '' ? '(root)' : e.path.slice(1).replaceAll('/', '.');
    problems.push(`${name}: ${e.message}`);
  }
  if (problems.length === 0) {
    const c = candidate as Static<typeof ServerConfigSchema>;
    if (c.password.minLength > c.password.maxLength) problems.push('password.minLength: must not exceed password.maxLength');
    if (c.throttle.lockSeconds > c.throttle.maxLockSeconds) problems.push('throttle.lockSeconds: must not exceed throttle.maxLockSeconds');
    if (c.childForm !== undefined) {
      try {
        parseFormDefinition(c.childForm);
      } catch (err) {
        problems.push(`childForm: ${(err as Error).message}`);
      }
    }
  }
  if (problems.length > 0) {
    throw new FieldvaultError('CONFIG_INVALID', { detail: [...new Set(problems)].join('; ') });
  }
  const config = candidate as Static<typeof ServerConfigSchema>;
  config.kek = new Uint8Array(kek);
  return deepFreeze(config);
}
