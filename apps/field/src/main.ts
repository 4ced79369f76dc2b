#!/usr/bin/env node
/**
 * `fieldvault-field`: the reference field-worker command line on the fieldvault SDK. It plays one
 * shared phone (its home directory): users sign up and log in on it, register and edit child
 * records with photos, search, and sync with one or more servers. See docs/field-cli.md.
 */
import { readVersion, runMain, type CliDefinition } from '@fieldvault/cli-kit';
import { FieldvaultError } from '@fieldvault/protocol';
import type { Command } from 'commander';
import { registerAccountCommands } from './commands/account.js';
import { registerDeviceCommands } from './commands/device.js';
import { registerRecordCommands } from './commands/records.js';
import { registerServerCommands } from './commands/servers.js';
import { registerSyncCommand } from './commands/sync.js';
import { readEnvironment, resolveHome } from './config.js';
import { makeContext, type Context, type GlobalOptions } from './context.js';
import { reportOf } from './errors.js';
import { Home } from './home.js';
import { createOutput } from './output.js';
import { createPasswordSource } from './password.js';

const HELP_AFTER = `
Sessions:
  The SDK keeps keys and server tokens in memory only and each command is its own process, so no
  login outlives a command. Every command that opens your records asks your password (or reads it
  with --password-stdin), logs in (offline; online for "login", "sync" and "search --server"), does
  its work and logs out. "login" remembers your user name so --user can be left out; "logout"
  forgets it. Nothing secret is written by this CLI.

Home:
  --home DIR, else $FIELDVAULT_FIELD_HOME, else ~/.fieldvault-field: config.json (servers, the
  current user name, this phone's IMEI) and sdk/ (the encrypted keyring, databases and photos).

Getting started:
  fieldvault-field signup --user amina
  fieldvault-field register --name "Amina Y." --age 7 --sex female --photo amina.jpg
  fieldvault-field servers add office https://10.0.0.5:8443 --server-id srv-1a2b3c4d --pin 52:D6:…
  fieldvault-field login office
  fieldvault-field status

Output is a table for people; --json prints one JSON document for scripts. Errors print a code and
what to do, and exit with status 1 (2 for a command-line mistake).`;

const env = readEnvironment();
/** The phone this command uses: its lock is released when the command ends or is interrupted. */
let home: Home | undefined;

const cli: CliDefinition<Context, GlobalOptions> = {
  name: 'fieldvault-field',
  version: readVersion(new URL('../package.json', import.meta.url)),
  description: 'Field-worker command line for fieldvault: one shared, encrypted, offline-first phone.',
  homeOption: 'the CLI home (the "phone"); default $FIELDVAULT_FIELD_HOME or ~/.fieldvault-field',
  options: [
    { flags: '-u, --user <name>', description: 'the user (default: the one remembered by "login" or "signup")' },
    { flags: '--password-stdin', description: 'read the password from the first line of standard input (scripts, tests)' },
  ],
  helpAfter: HELP_AFTER,
  helpExample: 'servers add',
  usageError: (detail) => new FieldvaultError('FIELD_USAGE', { detail }),
  reportOf,
  interrupted: () => new FieldvaultError('FIELD_INTERRUPTED'),
  // No interruptNote here: the context prints it once the progress bars are cleared (see makeContext).
  context(globals, cancellation) {
    home = new Home(resolveHome(globals.home, env));
    return makeContext({
      env,
      home,
      globals,
      out: createOutput(globals.json === true),
      passwords: createPasswordSource({ fromStdin: globals.passwordStdin === true, stdinIsTty: env.stdinIsTty }),
      cancellation,
      // Quitting mid-write is safe too: the SDK's databases and keyring are crash-safe; keys die with the process.
      interruptNote: 'stopping at a safe point… (Ctrl-C again to quit at once)\n',
    });
  },
  register(program, action) {
    registerDeviceCommands(program, action);
    registerAccountCommands(program, action);
    registerServerCommands(program, action);
    registerRecordCommands(program, action);
    registerSyncCommand(program, action);
  },
  cleanup: () => home?.unlock(),
};

/*
 * `fieldvault-field … | head`: once the reader has gone, writes to stdout fail with EPIPE. The
 * command's work is done or safe to cut (the stores are crash-safe), so end quietly instead of
 * with an uncaught stack trace.
 */
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    home?.unlock();
    process.exit(process.exitCode ?? 0);
  });
}

runMain(cli);
