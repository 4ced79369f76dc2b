#!/usr/bin/env node
/**
 * `fieldvault-admin`: the admin command line of a fieldvault server. It talks to the server's admin
 * API over verified TLS with an admin console session (password + TOTP) kept in a 0600 file:
 * first admin, login/logout, users, devices, audit. See docs/admin-cli.md.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerAuditCommand } from './commands/audit.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerDeviceCommands } from './commands/devices.js';
import { registerSessionCommands } from './commands/session.js';
import { registerSetupCommand } from './commands/setup.js';
import { registerSignupCommands } from './commands/signups.js';
import { registerUserCommands } from './commands/users.js';
import { readEnvironment, resolveHome } from './config.js';
import { makeContext, type GlobalOptions } from './context.js';
import { CliError, reportOf } from './errors.js';
import { Home } from './home.js';
import { createOutput } from './output.js';
import { createPrompter, type Prompter } from './prompt.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const HELP_AFTER = `
Getting started (the server prints its URL, certificate and a one-time setup token at first start):
  fieldvault-admin init --server https://127.0.0.1:8443 --ca data/tls/dev-cert.pem
  fieldvault-admin users add amina --role field_worker
  fieldvault-admin devices list
  fieldvault-admin audit --event login.failed --since 24h

Sessions:
  "login" asks the password and a 6-digit code from the admin's authenticator app (TOTP); an admin
  without one enrols first (the secret is shown once, with recovery codes). The session token is kept
  in <home>/session.json (mode 0600) until "logout" or until it expires (1 h by default).
  Nothing else secret is written; passwords and codes are never taken from arguments.

Home:
  --home DIR, else $FIELDVAULT_ADMIN_HOME, else ~/.fieldvault-admin (mode 0700).

Output is a table for people; --json prints one JSON document for scripts. Errors print a code and
what to do, and exit with status 1 (2 for a command-line mistake).`;

async function main(argv: readonly string[]): Promise<number> {
  const env = readEnvironment();
  const json = argv.includes('--json');
  const debug = argv.includes('--debug');
  const controller = new AbortController();
  let following = false;
  let prompter: Prompter | undefined;

  const fail = (err: unknown): number => {
    const r = reportOf(err, debug);
    process.stderr.write(json ? `${JSON.stringify({ error: { code: r.code, message: r.message } })}\n` : `fieldvault-admin: error ${r.code}: ${r.message}\n`);
    return r.exitCode;
  };

  process.on('SIGINT', () => {
    if (following && !controller.signal.aborted) {
      controller.abort();
      return;
    }
    process.exit(130);
  });

  const program = new Command('fieldvault-admin');
  program
    .description('Admin command line for a fieldvault server: first admin, TOTP login, users, devices, audit, backups, CouchDB setup.')
    .version(VERSION, '-V, --version')
    .option('--home <dir>', 'the CLI directory; default $FIELDVAULT_ADMIN_HOME or ~/.fieldvault-admin')
    .option('--stdin', 'read answers (setup token, passwords, codes) one per line from standard input')
    .option('--json', 'print one JSON document instead of tables')
    .option('--debug', 'show details of unexpected errors')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    .configureOutput({
      outputError: (text) => {
        const message = text.trim().replace(/^error:\s*/, '').replaceAll(/\s*\n\s*/g, ' ');
        fail(new CliError('ADMIN_USAGE', message));
      },
    });

  const action =
    (run: (ctx: ReturnType<typeof makeContext>, ...args: unknown[]) => Promise<void>) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args.at(-1) as Command;
      const globals = command.optsWithGlobals() as GlobalOptions;
      prompter = createPrompter({ fromStdin: globals.stdin === true, stdinIsTty: env.stdinIsTty });
      const ctx = makeContext({ env, home: new Home(resolveHome(globals.home, env)), out: createOutput(globals.json === true), prompter, globals });
      await run(ctx, ...args.slice(0, -1));
    };

  registerSessionCommands(program, action);
  registerUserCommands(program, action);
  registerDeviceCommands(program, action);
  registerSignupCommands(program, action);
  registerAuditCommand(program, action, () => {
    following = true;
    return controller.signal;
  });
  registerBackupCommands(program, action);
  registerSetupCommand(program, action);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return fail(err);
  } finally {
    prompter?.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fieldvault-admin: error INTERNAL_ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
