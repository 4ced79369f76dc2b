import { unexpectedErrorReport, type ErrorReport } from '@fieldvault/cli-kit';
import { errorCatalogue, isFieldvaultError, type ErrorCode } from '@fieldvault/protocol';

/*
 * The CLI's own errors (a server name nobody added, no user named, no terminal to ask a password
 * on) are `FIELD_*` codes of the one catalogue in packages/protocol/src/errors.ts, thrown as
 * `FieldvaultError` like the SDK's, so a user reads one kind of error whatever raised it and
 * docs/errors.md lists them all.
 */

/** The `FIELD_*` codes of the catalogue (docs/field-cli.md lists them too). */
export const cliErrorCodes: readonly ErrorCode[] = (Object.keys(errorCatalogue) as ErrorCode[]).filter((c) => c.startsWith('FIELD_'));

/**
 * The report of any error. Catalogued errors (SDK and CLI) come through with their own message,
 * which never holds a key, token or password. Anything else is a bug: it is reported as
 * INTERNAL_ERROR without its message (which could carry anything), unless `debug` asks for it.
 */
export function reportOf(err: unknown, debug: boolean): ErrorReport {
  if (isFieldvaultError(err)) return { code: err.code, message: err.message, exitCode: err.code === 'FIELD_USAGE' ? 2 : err.code === 'FIELD_INTERRUPTED' ? 130 : 1 };
  return unexpectedErrorReport(err, debug);
}
