import { readFileSync } from 'node:fs';
import type { Environment } from './config.js';
import { CliError } from './errors.js';
import type { Home, ServerTrust, StoredSession } from './home.js';
import { createApiClient, trustProblem, type ApiCall, type ApiClient } from './http.js';
import type { Output } from './output.js';
import { createProgress, type Progress } from './progress.js';
import type { Prompter } from './prompt.js';

export interface GlobalOptions {
  readonly home?: string;
  readonly stdin?: boolean;
  readonly json?: boolean;
  readonly debug?: boolean;
}

/** Options of the commands that name a server (init, login). */
export interface ServerOptions {
  readonly server?: string;
  readonly ca?: string;
  readonly pin?: string;
}

export interface Context {
  readonly env: Environment;
  readonly home: Home;
  readonly out: Output;
  readonly prompter: Prompter;
  readonly globals: GlobalOptions;
  /** A progress bar on stderr (only on a terminal and without --json). */
  progress(): Progress;
  /** The server from the options (remembered) or from the config. @throws ADMIN_NO_SERVER */
  server(options?: ServerOptions): ServerTrust;
  client(trust: ServerTrust): ApiClient;
  /** An API call with the stored admin session. @throws ADMIN_NOT_LOGGED_IN */
  api<T = Record<string, unknown>>(call: Omit<ApiCall, 'token'>): Promise<T>;
  /** The client of the logged-in server and the session token (for streaming calls). @throws ADMIN_NOT_LOGGED_IN */
  authed(): { client: ApiClient; token: string };
  /** The stored session (undefined when logged out). */
  session(): StoredSession | undefined;
}

export function makeContext(input: { env: Environment; home: Home; out: Output; prompter: Prompter; globals: GlobalOptions }): Context {
  const { env, home, out, prompter, globals } = input;
  const ctx: Context = {
    env,
    home,
    out,
    prompter,
    globals,
    progress: () => createProgress(env.stderrIsTty && globals.json !== true),
    server(options = {}) {
      if (options.server !== undefined) {
        // A mistyped --server or --pin is a command-line mistake (exit 2), found before any file or network.
        const problem = trustProblem({ url: options.server, ...(options.pin === undefined ? {} : { pinSha256: options.pin }) });
        if (problem !== undefined) throw new CliError('ADMIN_USAGE', `--${problem.field}: ${problem.detail}`);
        let ca: string | undefined;
        if (options.ca !== undefined) {
          try {
            ca = readFileSync(options.ca, 'utf8');
          } catch {
            throw new CliError('ADMIN_FILE_UNREADABLE', options.ca);
          }
          if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new CliError('ADMIN_FILE_UNREADABLE', `${options.ca} is not a PEM certificate`);
        }
        return { url: options.server.replace(/\/+$/, ''), ...(ca === undefined ? {} : { ca }), ...(options.pin === undefined ? {} : { pinSha256: options.pin }) };
      }
      const configured = home.config().server;
      if (configured === null) throw new CliError('ADMIN_NO_SERVER');
      return configured;
    },
    client: (trust) => createApiClient(trust),
    session: () => home.session(),
    authed() {
      const session = home.session();
      const trust = home.config().server;
      if (session === undefined || trust === null) throw new CliError('ADMIN_NOT_LOGGED_IN');
      // A token is only ever sent to the server that issued it.
      if (trust.url !== session.url) throw new CliError('ADMIN_NOT_LOGGED_IN', 'the session belongs to another server');
      if (Date.parse(session.expiresAt) <= Date.now()) {
        home.forgetSession();
        throw new CliError('ADMIN_NOT_LOGGED_IN', `the session expired at ${session.expiresAt}`);
      }
      return { client: createApiClient(trust), token: session.token };
    },
    async api<T>(call: Omit<ApiCall, 'token'>): Promise<T> {
      const { client, token } = ctx.authed();
      try {
        return await client.call<T>({ ...call, token });
      } catch (err) {
        if ((err as { code?: unknown }).code === 'SESSION_INVALID') {
          home.forgetSession();
          throw new CliError('ADMIN_NOT_LOGGED_IN', 'the server ended the session');
        }
        throw err;
      }
    },
  };
  return ctx;
}
