import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';

/*
 * The frame both CLIs run in: the commander program with its global options, help and version;
 * one context per command built from the global options; errors printed as `NAME: error CODE:
 * message` (or `{"error":{code,message}}` with --json) with an exit status; and Ctrl-C, which a
 * long command can turn into "stop at a safe point". What differs between the CLIs (name,
 * wording, extra global options, error catalogue, context, clean-up) is passed in.
 */

/** What a user sees of a failure: a code, what happened and what to do. */
export interface ErrorReport {
  readonly code: string;
  readonly message: string;
  /** The process exit code: 2 for command-line mistakes, 130 for Ctrl-C, 1 for everything else. */
  readonly exitCode: number;
  /** Further members of the `--json` error object (e.g. which server the error came from). */
  readonly json?: Readonly<Record<string, unknown>>;
}

/**
 * The report of an error that is not catalogued, i.e. a bug: INTERNAL_ERROR without its message
 * (which could carry anything, a secret included) unless `debug` asks for it.
 */
export function unexpectedErrorReport(err: unknown, debug: boolean): ErrorReport {
  const detail = debug ? ` ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` : ' Run again with --debug to see the details.';
  return { code: 'INTERNAL_ERROR', message: `An unexpected error happened.${detail}`, exitCode: 1 };
}

/** Wraps a command body: builds the context from the global options, then runs it with its arguments. */
export type Action<Ctx> = (run: (ctx: Ctx, ...args: unknown[]) => Promise<void>) => (...args: unknown[]) => Promise<void>;

/** Makes Ctrl-C stop the running command at a safe point, and returns the signal the first Ctrl-C aborts. */
export type Cancellation = () => AbortSignal;

export interface GlobalOption {
  /** Commander flags, e.g. `-u, --user <name>`. */
  readonly flags: string;
  readonly description: string;
}

export interface CliDefinition<Ctx, Globals> {
  /** The command name, also the prefix of error lines: `fieldvault-field`. */
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** The description of `--home <dir>`, the first global option. */
  readonly homeOption: string;
  /** The CLI's own global options, between `--home` and `--json`/`--debug`. */
  readonly options: readonly GlobalOption[];
  /** Printed after the main help. */
  readonly helpAfter: string;
  /** A group and its command, the example in `help`'s summary (e.g. `servers add`). */
  readonly helpExample: string;
  /** The CLI's catalogued usage error (exit status 2) for a command line commander refuses. */
  usageError(detail: string): Error;
  /** The report of any error the CLI's commands throw. */
  reportOf(err: unknown, debug: boolean): ErrorReport;
  /** Written to stderr when the first Ctrl-C asks a cancellable command to stop; default nothing. */
  readonly interruptNote?: string;
  /**
   * The CLI's catalogued error for a Ctrl-C that quits at once (a command that cannot stop at a
   * safe point, or a second Ctrl-C), printed like any error before the exit (130): without it the
   * user saw the shell prompt and nothing else, not knowing what had been done (field audit F1).
   */
  interrupted?(): Error;
  /** The context of one command, from the global options as commander parsed them. */
  context(globals: Globals, cancellation: Cancellation): Ctx;
  /** Adds the commands. */
  register(program: Command, action: Action<Ctx>, cancellation: Cancellation): void;
  /** Runs when the command ends, and before the process exits on Ctrl-C (release a lock, close stdin). */
  cleanup?(): void;
}

/** The `version` of the package.json at `url` (the app's own, next to its dist/). */
export function readVersion(url: URL): string {
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

/** Runs one command line (without the node and script arguments); resolves to the exit status. */
export async function runCli<Ctx, Globals>(cli: CliDefinition<Ctx, Globals>, argv: readonly string[]): Promise<number> {
  // Read before parsing, so that an error in parsing itself is printed the way the user asked.
  const json = argv.includes('--json');
  const debug = argv.includes('--debug');
  const controller = new AbortController();
  let cancellable = false;
  const cancellation: Cancellation = () => {
    cancellable = true;
    return controller.signal;
  };

  const fail = (err: unknown): number => {
    const r = cli.reportOf(err, debug);
    process.stderr.write(json ? `${JSON.stringify({ error: { code: r.code, message: r.message, ...r.json } })}\n` : `${cli.name}: error ${r.code}: ${r.message}\n`);
    return r.exitCode;
  };

  process.on('SIGINT', () => {
    if (cancellable && !controller.signal.aborted) {
      if (cli.interruptNote !== undefined) process.stderr.write(cli.interruptNote);
      controller.abort();
      return;
    }
    // Quitting at once: whatever the command was doing must be safe to cut (the CLIs' stores are crash-safe).
    cli.cleanup?.();
    process.exit(cli.interrupted === undefined ? 130 : fail(cli.interrupted()));
  });

  const program = new Command(cli.name);
  program.description(cli.description).version(cli.version, '-V, --version').option('--home <dir>', cli.homeOption);
  for (const o of cli.options) program.option(o.flags, o.description);
  program
    .option('--json', 'print one JSON document instead of tables')
    .option('--debug', 'show details of unexpected errors')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText('after', cli.helpAfter)
    .exitOverride()
    .configureOutput({
      // Commander's own usage errors, in the catalogue's form.
      outputError: (text) => {
        const message = text.trim().replace(/^error:\s*/, '').replaceAll(/\s*\n\s*/g, ' ');
        fail(cli.usageError(message));
      },
    });

  const action: Action<Ctx> =
    (run) =>
    async (...args) => {
      const command = args.at(-1) as Command;
      const ctx = cli.context(command.optsWithGlobals() as Globals, cancellation);
      await run(ctx, ...args.slice(0, -1));
    };
  cli.register(program, action, cancellation);
  registerHelpCommand(program, cli);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // Help and version exit 0; usage errors were already printed by outputError.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return fail(err);
  } finally {
    cli.cleanup?.();
  }
}

/** The process entry point: runs `process.argv` and sets the exit status. */
export function runMain<Ctx, Globals>(cli: CliDefinition<Ctx, Globals>): void {
  runCli(cli, process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${cli.name}: error INTERNAL_ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

/**
 * `help [command...]`: commander's own help command takes one name, so `help servers add` printed
 * the help of `servers`, while errors send users to "help <command>". This one follows the whole
 * path; an unknown name is the CLI's usage error listing the commands there.
 */
function registerHelpCommand<Ctx, Globals>(program: Command, cli: CliDefinition<Ctx, Globals>): void {
  program.helpCommand(false);
  program
    .command('help')
    .summary(`show the help of a command (e.g. "help ${cli.helpExample}")`)
    .description(`Shows the help of the command named, e.g. "${cli.name} help ${cli.helpExample}"; with no command, the main help.`)
    .argument('[command...]', 'a command, or a group and its command')
    .action((names: string[]) => {
      let command: Command = program;
      for (const [i, name] of names.entries()) {
        const next = command.commands.find((c) => c.name() === name || c.aliases().includes(name));
        if (next === undefined) {
          const known = command.commands.map((c) => c.name()).filter((n) => n !== 'help');
          throw cli.usageError(`help: no command "${names.slice(0, i + 1).join(' ')}" (commands${command === program ? '' : ` of ${command.name()}`}: ${known.join(', ')})`);
        }
        command = next;
      }
      command.help();
    });
}
