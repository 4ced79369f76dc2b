import { isFieldvaultError } from '@fieldvault/protocol';

/*
 * The CLI's own errors: things only a command line can get wrong (a server name nobody added, no
 * user named, no terminal to ask a password on). They have the shape of the protocol catalogue
 * (`CODE: { message, hint }`) and are printed the same way as the SDK's catalogued errors, so a
 * user reads one kind of error whatever raised it. docs/field-cli.md lists them.
 */
export const cliErrorCatalogue = {
  FIELD_USAGE: {
    message: 'The command line is not valid.',
    hint: 'See "fieldvault-field help <command>" for the options of each command.',
  },
  FIELD_NO_USER: {
    message: 'No user was given and none is remembered on this device.',
    hint: 'Pass --user NAME, or log in once with "fieldvault-field login --user NAME" so the name is remembered.',
  },
  FIELD_PASSWORD_REQUIRED: {
    message: 'A password is needed, but there is no terminal to ask for it and --password-stdin was not given.',
    hint: 'Run the command in a terminal, or pipe the password in and pass --password-stdin.',
  },
  FIELD_PASSWORD_MISMATCH: {
    message: 'The two passwords typed do not match.',
    hint: 'Run the command again and type the same password twice.',
  },
  FIELD_SERVER_UNKNOWN: {
    message: 'No server with this name is configured on this device.',
    hint: 'List the servers with "fieldvault-field servers list"; add one with "fieldvault-field servers add NAME URL --server-id ID --pin FINGERPRINT".',
  },
  FIELD_SERVER_AMBIGUOUS: {
    message: 'No server was named and this device does not have exactly one configured.',
    hint: 'Name the server (see "fieldvault-field servers list"), or add one with "fieldvault-field servers add".',
  },
  FIELD_SERVER_EXISTS: {
    message: 'A server with this name is already configured.',
    hint: 'Choose another name, or remove the old entry first with "fieldvault-field servers remove NAME".',
  },
  FIELD_FILE_UNREADABLE: {
    message: 'A file named on the command line cannot be read, or an output file cannot be created.',
    hint: 'Check the path and its permissions; an output file (--out) must not exist yet.',
  },
  FIELD_HOME_CORRUPT: {
    message: 'The CLI configuration file (config.json in the CLI home) is damaged or was edited by hand.',
    hint: 'Nothing was overwritten: restore config.json from a backup or fix the JSON; the encrypted data under sdk/ is untouched.',
  },
  FIELD_HOME_BUSY: {
    message: 'Another fieldvault-field command is using this device (CLI home) right now.',
    hint: 'Wait for it to finish and run the command again; one command at a time uses a device, as one user at a time uses a phone.',
  },
  FIELD_HOME_UNWRITABLE: {
    message: 'The CLI home directory cannot be created or written.',
    hint: 'Check --home / FIELDVAULT_FIELD_HOME, free space and permissions.',
  },
  FIELD_INTERRUPTED: {
    message: 'The command was interrupted.',
    hint: 'Run the command again when ready; what it had already committed on the device is kept.',
  },
} as const;

export type CliErrorCode = keyof typeof cliErrorCatalogue;

/** An error of the CLI itself (not the SDK's): a code from `cliErrorCatalogue`. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code: CliErrorCode;
  readonly hint: string;
  /** What exactly (an option, a path, a name): never a secret. */
  readonly detail: string | undefined;

  constructor(code: CliErrorCode, detail?: string) {
    const spec = cliErrorCatalogue[code];
    super(`${spec.message}${detail === undefined ? '' : ` (${detail})`} ${spec.hint}`);
    this.code = code;
    this.hint = spec.hint;
    this.detail = detail;
  }
}

/** What a user sees of a failure: a code, what happened and what to do. */
export interface ErrorReport {
  readonly code: string;
  readonly message: string;
  /** The process exit code: 2 for command-line mistakes, 130 for Ctrl-C, 1 for everything else. */
  readonly exitCode: number;
}

/**
 * The report of any error. Catalogued errors (SDK and CLI) come through with their own message,
 * which never holds a key, token or password. Anything else is a bug: it is reported as
 * INTERNAL_ERROR without its message (which could carry anything), unless `debug` asks for it.
 */
export function reportOf(err: unknown, debug: boolean): ErrorReport {
  if (err instanceof CliError) return { code: err.code, message: err.message, exitCode: err.code === 'FIELD_USAGE' ? 2 : err.code === 'FIELD_INTERRUPTED' ? 130 : 1 };
  if (isFieldvaultError(err)) return { code: err.code, message: err.message, exitCode: 1 };
  const detail = debug ? ` ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` : ' Run again with --debug to see the details.';
  return { code: 'INTERNAL_ERROR', message: `An unexpected error happened.${detail}`, exitCode: 1 };
}
