import { isFieldvaultError, type ErrorCode, type FieldvaultError } from '@fieldvault/protocol';

/*
 * The admin CLI's own errors: things only a command line can get wrong (no server configured, not
 * logged in, no terminal to ask a password on, an unsafe session file). Same shape as the protocol
 * catalogue (`CODE: { message, hint }`) and printed the same way as the server's catalogued errors,
 * so an admin reads one kind of error whatever raised it. docs/admin-cli.md lists them.
 */
export const cliErrorCatalogue = {
  ADMIN_USAGE: {
    message: 'The command line is not valid.',
    hint: 'See "fieldvault-admin help <command>" for the options of each command.',
  },
  ADMIN_NO_SERVER: {
    message: 'No server is configured for this admin CLI.',
    hint: 'Pass --server URL with --ca FILE or --pin FINGERPRINT to "fieldvault-admin init" or "fieldvault-admin login"; they remember it.',
  },
  ADMIN_NOT_LOGGED_IN: {
    message: 'There is no admin session: not logged in, logged out, or the session expired.',
    hint: 'Run "fieldvault-admin login" (password and a code from your authenticator app).',
  },
  ADMIN_INPUT_REQUIRED: {
    message: 'An answer (password, setup token or one-time code) is needed, but none was given.',
    hint: 'Run the command in a terminal and type it, or pipe the answers in, one per line, and pass --stdin.',
  },
  ADMIN_STDIN_EXHAUSTED: {
    message: 'Standard input (--stdin) ended before every answer this command asks for was read.',
    hint: 'Pipe one line per answer, in the order the command asks them (docs/admin-cli.md, "Answers on standard input").',
  },
  ADMIN_CODE_MALFORMED: {
    message: 'That is not a one-time code: type the 6 digits your authenticator app shows, or a recovery code (xxxx-xxxx-xxxx-xxxx).',
    hint: 'Run the command again with the code as the app shows it now (nothing was sent to the server).',
  },
  ADMIN_PASSWORD_MISMATCH: {
    message: 'The two passwords typed do not match.',
    hint: 'Run the command again and type the same password twice.',
  },
  ADMIN_CONFIG_CORRUPT: {
    message: 'A file in the admin CLI directory (config.json or session.json) is damaged or was edited by hand.',
    hint: 'Fix or delete the file named in the message, then run "fieldvault-admin login" again.',
  },
  ADMIN_CONFIG_INSECURE: {
    message: 'The admin CLI directory or its session file can be read by other users of this machine.',
    hint: 'Run "chmod 700" on the directory and "chmod 600" on its files (the session token is a secret), then log in again.',
  },
  ADMIN_FILE_UNREADABLE: {
    message: 'A file named on the command line cannot be read.',
    hint: 'Check the path and its permissions.',
  },
  ADMIN_FILE_UNWRITABLE: {
    message: 'An output file named on the command line cannot be created: its directory is missing or not writable.',
    hint: 'Create the directory or choose a path you may write to (with room for the file), then run the command again.',
  },
  ADMIN_INTERRUPTED: {
    message: 'The command was interrupted.',
    hint: 'Run the command again when ready; nothing was left half done on the server.',
  },
  ADMIN_FILE_EXISTS: {
    message: 'The output file exists already, or a secret file there belongs to another CouchDB or user.',
    hint: 'Choose another path, or move the existing file away first (a backup or secret is never overwritten silently).',
  },
  ADMIN_NOT_CONFIRMED: {
    message: 'This action needs a confirmation that was not given.',
    hint: 'Pass --yes to confirm (the action is logged in the audit log with your name).',
  },
} as const;

export type CliErrorCode = keyof typeof cliErrorCatalogue;

/** An error of the CLI itself (not the server's): a code from `cliErrorCatalogue`. */
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

/**
 * Server-catalogue hints written for phone users that would mislead an admin at the CLI: the
 * CLI's own words replace them (the code and message stay the server's).
 */
const adminHints: Partial<Record<ErrorCode, string>> = {
  TRANSPORT_UNREACHABLE:
    'Check the network connection, that the server is running and the URL it was given with --server (fieldvault-admin login --server URL), then retry.',
};

/** A catalogued error's text with the admin CLI's hint in place of a phone-only one. */
function adminMessage(err: FieldvaultError): string {
  const hint = adminHints[err.code];
  if (hint === undefined || !err.message.endsWith(err.hint)) return err.message;
  return `${err.message.slice(0, err.message.length - err.hint.length)}${hint}`;
}

export interface ErrorReport {
  readonly code: string;
  readonly message: string;
  /** 2 for command-line mistakes, 130 for Ctrl-C, 1 for everything else. */
  readonly exitCode: number;
}

/**
 * The report of any error. Catalogued errors (server and CLI) come through with their own message,
 * which never holds a token or password. Anything else is a bug: reported as INTERNAL_ERROR without
 * its message (which could carry anything) unless `debug` asks for it.
 */
export function reportOf(err: unknown, debug: boolean): ErrorReport {
  if (err instanceof CliError) {
    return { code: err.code, message: err.message, exitCode: err.code === 'ADMIN_USAGE' ? 2 : err.code === 'ADMIN_INTERRUPTED' ? 130 : 1 };
  }
  if (isFieldvaultError(err)) return { code: err.code, message: adminMessage(err), exitCode: 1 };
  const detail = debug ? ` ${err instanceof Error ? (err.stack ?? err.message) : String(err)}` : ' Run again with --debug to see the details.';
  return { code: 'INTERNAL_ERROR', message: `An unexpected error happened.${detail}`, exitCode: 1 };
}
