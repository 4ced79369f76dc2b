import { errorCatalogue, isFieldvaultError, type ErrorCode, type FieldvaultError } from '@fieldvault/protocol';

/*
 * The admin CLI's own errors: things only a command line can get wrong (no server configured, not
 * logged in, no terminal to ask a password on, an unsafe session file). They live in the protocol
 * catalogue (area ADMIN, like the field CLI's FIELD_ codes) so docs/errors.md lists them with every
 * other code; printed the same way as the server's catalogued errors, so an admin reads one kind
 * of error whatever raised it. docs/admin-cli.md lists them too.
 */
export type CliErrorCode = Extract<ErrorCode, `ADMIN_${string}`>;

/** The ADMIN_ entries of the protocol catalogue. */
export const cliErrorCatalogue = Object.freeze(
  Object.fromEntries(Object.entries(errorCatalogue).filter(([code]) => code.startsWith('ADMIN_'))),
) as unknown as { readonly [C in CliErrorCode]: { readonly message: string; readonly hint: string } };

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
