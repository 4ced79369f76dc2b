#!/usr/bin/env node
/**
 * `fieldvault-field`: the reference field-worker command line on the fieldvault SDK. It plays one
 * shared phone (its home directory): users sign up and log in on it, register and edit child
 * records with photos, search, and sync with one or more servers. See docs/field-cli.md.
 */
import { FieldvaultError } from '@fieldvault/protocol';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
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

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

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

async function main(argv: readonly string[]): Promise<number> {
  const env = readEnvironment();
  const json = argv.includes('--json');
  const debug = argv.includes('--debug');
  const controller = new AbortController();
  let cancellable = false;
  let home: Home | undefined;

  const fail = (err: unknown): number => {
    const r = reportOf(err, debug);
    process.stderr.write(json ? `${JSON.stringify({ error: { code: r.code, message: r.message } })}\n` : `fieldvault-field: error ${r.code}: ${r.message}\n`);
    return r.exitCode;
  };

  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    if (cancellable && interrupts === 1) {
      process.stderr.write('\nstopping at a safe point… (Ctrl-C again to quit at once)\n');
      controller.abort();
      return;
    }
    // Quitting mid-write is safe: the SDK's databases and keyring are crash-safe; keys die with the process.
    home?.unlock();
    process.exit(130);
  });

  const program = new Command('fieldvault-field');
  program
    .description('Field-worker command line for fieldvault: one shared, encrypted, offline-first phone.')
    .version(VERSION, '-V, --version')
    .option('--home <dir>', 'the CLI home (the "phone"); default $FIELDVAULT_FIELD_HOME or ~/.fieldvault-field')
    .option('-u, --user <name>', 'the user (default: the one remembered by "login" or "signup")')
    .option('--password-stdin', 'read the password from the first line of standard input (scripts, tests)')
    .option('--json', 'print one JSON document instead of tables')
    .option('--debug', 'show details of unexpected errors')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    .configureOutput({
      // Commander's own usage errors, in the catalogue's form.
      outputError: (text) => {
        const message = text.trim().replace(/^error:\s*/, '').replaceAll(/\s*\n\s*/g, ' ');
        fail(new FieldvaultError('FIELD_USAGE', { detail: message }));
      },
    });

  const action =
    (run: (ctx: Context, ...args: unknown[]) => Promise<void>) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args.at(-1) as Command;
      const globals = command.optsWithGlobals() as GlobalOptions;
      home = new Home(resolveHome(globals.home, env));
      const ctx = makeContext({
        env,
        home,
        globals,
        out: createOutput(globals.json === true),
        passwords: createPasswordSource({ fromStdin: globals.passwordStdin === true, stdinIsTty: env.stdinIsTty }),
        cancellation: () => {
          cancellable = true;
          return controller.signal;
        },
      });
      await run(ctx, ...args.slice(0, -1));
    };

  registerDeviceCommands(program, action);
  registerServerCommands(program, action);
  registerRecordCommands(program, action);
  registerSyncCommand(program, action);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by outputError.
      return err.exitCode === 0 ? 0 : 2;
    }
    return fail(err);
  } finally {
    home?.unlock();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`fieldvault-field: error INTERNAL_ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
