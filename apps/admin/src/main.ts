#!/usr/bin/env node
/**
 * `fieldvault-admin`: the admin command line of a fieldvault server. It talks to the server's admin
 * API over verified TLS with an admin console session (password + TOTP) kept in a 0600 file:
 * first admin, login/logout, users, devices, audit. See docs/admin-cli.md.
 */
import { readVersion, runMain, type CliDefinition } from '@fieldvault/cli-kit';
import { registerAuditCommand } from './commands/audit.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerDeviceCommands } from './commands/devices.js';
import { registerRecordsCommands } from './commands/records.js';
import { registerSessionCommands } from './commands/session.js';
import { registerSetupCommand } from './commands/setup.js';
import { registerSignupCommands } from './commands/signups.js';
import { registerUserCommands } from './commands/users.js';
import { readEnvironment, resolveHome } from './config.js';
import { makeContext, type Context, type GlobalOptions } from './context.js';
import { CliError, reportOf } from './errors.js';
import { Home } from './home.js';
import { createOutput } from './output.js';
import { createPrompter, type Prompter } from './prompt.js';

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

const env = readEnvironment();
/** The answer source of this command: its line reader on stdin is closed when the command ends. */
let prompter: Prompter | undefined;

const cli: CliDefinition<Context, GlobalOptions> = {
  name: 'fieldvault-admin',
  version: readVersion(new URL('../package.json', import.meta.url)),
  description: 'Admin command line for a fieldvault server: first admin, TOTP login, users, devices, audit, backups, record digests to compare servers, CouchDB setup.',
  homeOption: 'the CLI directory; default $FIELDVAULT_ADMIN_HOME or ~/.fieldvault-admin',
  options: [{ flags: '--stdin', description: 'read answers (setup token, passwords, codes) one per line from standard input' }],
  helpAfter: HELP_AFTER,
  helpExample: 'devices reinstate',
  usageError: (detail) => new CliError('ADMIN_USAGE', detail),
  reportOf,
  interrupted: () => new CliError('ADMIN_INTERRUPTED'),
  context(globals) {
    prompter = createPrompter({ fromStdin: globals.stdin === true, stdinIsTty: env.stdinIsTty });
    return makeContext({ env, home: new Home(resolveHome(globals.home, env)), out: createOutput(globals.json === true), prompter, globals });
  },
  register(program, action, cancellation) {
    registerSessionCommands(program, action);
    registerUserCommands(program, action);
    registerDeviceCommands(program, action);
    registerSignupCommands(program, action);
    // `audit --follow` ends cleanly at the first Ctrl-C instead of being killed.
    registerAuditCommand(program, action, cancellation);
    registerBackupCommands(program, action);
    registerRecordsCommands(program, action);
    registerSetupCommand(program, action);
  },
  cleanup: () => prompter?.close(),
};

runMain(cli);
