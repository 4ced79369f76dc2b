import { unexpectedErrorReport, type ErrorReport } from '@fieldvault/cli-kit';
import { errorCatalogue, isErrorCode, isFieldvaultError, FieldvaultError, type ErrorCode } from '@fieldvault/protocol';
import { allowedValuesOf, optionOf } from './fields.js';

/*
 * The CLI's own errors (a server name nobody added, no user named, no terminal to ask a password
 * on) are `FIELD_*` codes of the one catalogue in packages/protocol/src/errors.ts, thrown as
 * `FieldvaultError` like the SDK's, so a user reads one kind of error whatever raised it and
 * docs/errors.md lists them all.
 *
 * The catalogue's messages of the other codes are written for app developers ("check the field
 * against docs/protocol.md"). A field worker is not one: the CLI keeps the code (scripts and
 * support match on it) and replaces the message with one in the field worker's words — what went
 * wrong here and what to do — where it knows better (`inFieldWorkerWords`).
 */

/** The `FIELD_*` codes of the catalogue (docs/field-cli.md lists them too). */
export const cliErrorCodes: readonly ErrorCode[] = (Object.keys(errorCatalogue) as ErrorCode[]).filter((c) => c.startsWith('FIELD_'));

const worded = new WeakSet<FieldvaultError>();

/**
 * A catalogued error whose message is the CLI's own: what went wrong and what to do, in the field
 * worker's words. The code stays the catalogue's.
 */
export function fieldError(code: ErrorCode, message: string, cause?: unknown): FieldvaultError {
  const err = new FieldvaultError(code, cause === undefined ? {} : { cause });
  err.message = message;
  worded.add(err);
  return err;
}

/** The detail a catalogued error was raised with (the part in parentheses), if any. */
export function detailOf(err: FieldvaultError): string | undefined {
  const spec = errorCatalogue[err.code];
  const prefix = `${spec.message} (`;
  const suffix = `) ${spec.hint}`;
  if (!err.message.startsWith(prefix) || !err.message.endsWith(suffix)) return undefined;
  return err.message.slice(prefix.length, err.message.length - suffix.length);
}

function causeCode(err: FieldvaultError): string | undefined {
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The configured server a command talks to, to name it in messages. */
export interface ServerRef {
  readonly name: string;
  readonly url: string;
  readonly serverId: string;
}

/** The servers configured on the phone (config.json), to name a server known only by its id. */
export type ConfiguredServers = Readonly<Record<string, { readonly serverId: string }>>;

/** A server as an error names it: its configured name (null when it is not configured) and its id. */
export interface ErrorServer {
  readonly name: string | null;
  readonly id: string;
}

function serverWords(server: ServerRef | undefined): { at: string; fix: string } {
  return server === undefined
    ? { at: 'The server address', fix: 'Check the address' }
    : { at: `The address of server "${server.name}" (${server.url})`, fix: `Check it with "fieldvault-field servers list"` };
}

/** `server "country" (id country-b)`, or `server country-b` for one not configured: for sentences. */
export function serverInWords(server: ErrorServer): string {
  return server.name === null ? `server ${server.id}` : `server "${server.name}" (id ${server.id})`;
}

/** `server "country", id country-b`: for the parentheses of a catalogue message. */
function serverInParentheses(server: ErrorServer): string {
  return server.name === null ? `server id ${server.id}` : `server "${server.name}", id ${server.id}`;
}

function refServer(server: ServerRef): ErrorServer {
  return { name: server.name, id: server.serverId };
}

/** A server id with its configured name on this phone, if it has one. */
export function errorServerOf(id: string, configured: ConfiguredServers | undefined): ErrorServer {
  const name = Object.entries(configured ?? {}).find(([, e]) => e.serverId === id)?.[0];
  return { name: name ?? null, id };
}

/** The server each error named by `namingServer` is tied to (what `--json` shows as `error.server`). */
const errorServers = new WeakMap<FieldvaultError, ErrorServer>();

/** The server an error is tied to, when it was named by `namingServer`. */
export function serverOfError(err: unknown): ErrorServer | undefined {
  return isFieldvaultError(err) ? errorServers.get(err) : undefined;
}

const REPORTED = 'reported by the server';

/**
 * Whether an error of an online command came from the server or from talking to it (answers of
 * the server, reaching and trusting it, the key exchange and sync with it, its blacklisting),
 * rather than from the phone alone (wrong password on the phone, busy home, a local file…).
 */
function tiedToServer(err: FieldvaultError): boolean {
  const origin = worded.has(err) && isFieldvaultError(err.cause) ? err.cause : err;
  return detailOf(origin) === REPORTED || /^(TRANSPORT|SYNC|KEY|DEVICE)_/.test(origin.code);
}

/**
 * The error with the server it is tied to named, for a phone with several servers (multi-server
 * audit L9): the server's own answers read `(reported by server "country", id country-b)`, other
 * catalogue messages get the server in their parentheses, and messages the CLI worded without
 * naming it end with it. The code stays first, so scripts match it as before.
 */
function namingServer(err: FieldvaultError, server: ErrorServer): FieldvaultError {
  let message: string;
  const spec = errorCatalogue[err.code];
  const detail = worded.has(err) ? undefined : detailOf(err);
  if (detail !== undefined) {
    message = `${spec.message} (${detail === REPORTED ? `reported by ${serverInParentheses(server)}` : `${serverInParentheses(server)}; ${detail}`}) ${spec.hint}`;
  } else if (!worded.has(err) && err.message === `${spec.message} ${spec.hint}`) {
    message = `${spec.message} (${serverInParentheses(server)}) ${spec.hint}`;
  } else if (err.message.includes(server.name === null ? `server ${server.id}` : `server "${server.name}"`)) {
    // Worded with the server named already (a wrong address, a blacklisting…).
    message = err.message;
  } else {
    message = `${err.message} (${serverInParentheses(server)})`;
  }
  const named = fieldError(err.code, message, worded.has(err) ? (err.cause ?? err) : err);
  errorServers.set(named, server);
  return named;
}

/**
 * A catalogued error of a command working with `server`, in the field worker's words and, when it
 * is tied to a server, naming it: `server`, or for the phone's own refusal after a blacklisting
 * (DEVICE_BLACKLISTED, `local`) the server that blocked the phone. `configured` names servers
 * known only by their id.
 */
export function inServerWords(err: FieldvaultError, server: ServerRef, configured?: ConfiguredServers): FieldvaultError {
  const shown = inFieldWorkerWords(err, server, configured);
  if (errorServers.has(shown) || !tiedToServer(err)) return shown;
  const details = err.details ?? {};
  if (err.code === 'DEVICE_BLACKLISTED' && details['local'] === true) {
    // Nothing was sent to `server`: the error is about the server that blocked the phone.
    const blocker = details['serverId'];
    return typeof blocker === 'string' && blocker !== 'unknown' ? namingServer(shown, errorServerOf(blocker, configured)) : shown;
  }
  return namingServer(shown, refServer(server));
}

/**
 * The error of one configured server, for a server that was not synced at all (`sync --all`
 * stopped before it): tied to that server like the others.
 */
export function serverError(code: ErrorCode, message: string, server: ErrorServer): FieldvaultError {
  const err = fieldError(code, message);
  errorServers.set(err, server);
  return err;
}

/**
 * The error as a field worker should read it: the same error when the catalogue's message already
 * speaks to them (or the CLI worded it), else a catalogued error with the same code and the CLI's
 * message. `server`: the server the command talked to, when there was one; `configured`: the
 * phone's servers, to name one known only by its id.
 */
export function inFieldWorkerWords(err: FieldvaultError, server?: ServerRef, configured?: ConfiguredServers): FieldvaultError {
  if (worded.has(err)) return err;
  const detail = detailOf(err);
  const details = err.details ?? {};
  const again = (message: string): FieldvaultError => fieldError(err.code, message, err);
  switch (err.code) {
    case 'DEVICE_BLACKLISTED': {
      if (details['local'] === true) {
        // The SDK's own refusal (multi-server audit #1): another server blocked this phone, and no
        // other server is contacted until that one accepts it again.
        const by = typeof details['serverId'] === 'string' && details['serverId'] !== 'unknown' ? serverInWords(errorServerOf(details['serverId'], configured)) : 'one of its servers';
        return again(
          `An admin of ${by} has blocked this phone (for example after it was reported lost or stolen), and the fieldvault data on this phone was removed then. ` +
            `Nothing was sent: this phone contacts no other server until an admin of ${by} unblocks it and you log in online to that server. Contact your admin.`,
        );
      }
      const admin = server === undefined ? 'An admin' : `An admin of ${serverInWords(refServer(server))}`;
      const that = server === undefined ? 'the server' : 'that server';
      return again(
        details['wiped'] === false
          ? `${admin} has blocked this phone (for example after it was reported lost or stolen), so ${that} refused it. ` +
              'Removing the fieldvault data from this phone did not finish; it is tried again the next time the phone contacts a server. Contact your admin.'
          : `${admin} has blocked this phone (for example after it was reported lost or stolen), so ${that} refused it, ` +
              'and the fieldvault data on this phone (records, photos and keys) has been removed. Contact your admin: nobody can log in on this phone until they unblock it.',
      );
    }
    case 'TRANSPORT_TLS_UNTRUSTED': {
      const code = causeCode(err) ?? detail ?? '';
      if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|UNKNOWN_PROTOCOL|HTTP_REQUEST/i.test(code)) {
        const { at, fix } = serverWords(server);
        return again(
          `${at} starts with https://, but the program at that port does not speak HTTPS (it may be a plain-HTTP port, or another program). ` +
            `Nothing was sent. ${fix}: use the https:// address and port the server prints when it starts.`,
        );
      }
      return err;
    }
    case 'INPUT_ROUTE_NOT_FOUND': {
      const { at, fix } = serverWords(server);
      return again(
        `${at} is not the base address of a fieldvault server: something answered there, but not the fieldvault service (often a wrong path after the port). ` +
          `${fix}: it should be https://HOST:PORT exactly as the server prints it when it starts, with no path after it` +
          (server === undefined ? '.' : `; replace a wrong one with "fieldvault-field servers remove ${server.name}" and "fieldvault-field servers add".`),
      );
    }
    case 'RECORD_INVALID': {
      const field = typeof details['field'] === 'string' ? details['field'] : undefined;
      if (field === undefined) return err;
      const problem = detail?.startsWith(`${field}: `) === true ? detail.slice(field.length + 2) : 'is not allowed';
      const allowed = allowedValuesOf(field);
      return again(`The value for --${optionOf(field)} ${problem}${allowed === undefined ? '' : ` (allowed: ${allowed})`}. Nothing was saved: run the command again with a corrected value.`);
    }
    case 'INPUT_INVALID': {
      const field = typeof details['field'] === 'string' ? details['field'] : undefined;
      if (field === undefined) return again(`A value given to this command is not accepted${detail === undefined ? '' : ` (${detail})`}. Nothing was changed: check the command line ("fieldvault-field help <command>") and run it again.`);
      return again(`The value given for ${field} is not accepted${detail === undefined ? '' : ` (${detail})`}. Nothing was changed: check it ("fieldvault-field help <command>") and run the command again.`);
    }
    case 'AUTH_ACCOUNT_LOCKED': {
      const wait = waitWords(details['retryAfterSeconds']);
      return again(
        `Too many wrong passwords were tried for this account, so ${server === undefined ? 'the server' : serverInWords(refServer(server))} has locked it for now${wait === undefined ? '' : `: try again ${wait}`}. ` +
          'Nothing on this phone changed. If you have forgotten the password, ask your admin for a password reset.',
      );
    }
    case 'SYNC_CANCELLED':
      return again(
        `The sync${server === undefined ? '' : ` with ${serverInWords(refServer(server))}`} was stopped before it finished. ` +
          `Nothing is lost: what was already sent and received is kept, and "fieldvault-field sync${server === undefined ? '' : ` ${server.name}`}" continues from there.`,
      );
    case 'VAULT_DEVICE_MISMATCH':
      return again(
        "This phone's keyring (sdk/keyring.json) was made for another IMEI than the one in config.json: one of them was replaced or edited. " +
          'Nothing was changed. If config.json was edited, put the phone\'s own IMEI back in it (see "fieldvault-field init --help"); ' +
          "if sdk/keyring.json was copied from another phone, put this phone's own keyring back (from its backup). Do not wipe the phone.",
      );
    default:
      return err;
  }
}

/** "in about N minutes" for a server's Retry-After (seconds), or undefined when it sent none. */
function waitWords(seconds: unknown): string | undefined {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return undefined;
  if (seconds < 60) return `in ${Math.max(1, Math.ceil(seconds))} second${Math.ceil(seconds) === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `in about ${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/** What a record or photo that a sync could not send or fetch means for the field worker, and what to do. */
export function syncFailureText(code: string, what: 'record' | 'photo'): string {
  const retry = what === 'record' ? 'It stays on this phone and is sent again at every sync' : 'It is tried again at the next sync';
  switch (code) {
    case 'RECORD_FORBIDDEN':
      return `The server does not let your account make this change (deleting, restoring or resolving a record someone else created needs a supervisor). ${retry}: ask your supervisor to make the change, or to review the record.`;
    case 'RECORD_INVALID':
      return `The server's form does not accept a value of this record. ${retry}: "show" the record, correct the value with "edit", then sync again.`;
    case 'RECORD_TOO_LARGE':
      return `The record has grown larger than the server accepts (very long text or history). ${retry}: ask your supervisor.`;
    case 'RECORD_HISTORY_RESERVED':
      return `The record's history on the server is nearly full; the rest is kept for its creator and supervisors. ${retry}: ask your supervisor to review the record.`;
    case 'HLC_TOO_FAR_AHEAD':
      return `The change is dated ahead of the server's clock: this phone's date or time is wrong. Set the phone's date and time; ${retry.charAt(0).toLowerCase()}${retry.slice(1)}.`;
    case 'RECORD_CREATOR_MISMATCH':
      return `The server holds this record with another author or creation date than this phone. ${retry}: tell your admin.`;
    case 'PHOTO_TOO_LARGE':
      return `The photo is larger than this phone accepts, so it was not downloaded. ${retry}; ask your supervisor if it is needed here.`;
    case 'PHOTO_NOT_FOUND':
    case 'RECORD_NOT_FOUND':
      return what === 'photo'
        ? `The server does not have this photo yet (the phone that took it has not synced it). ${retry}.`
        : `The server does not have this record yet. ${retry}.`;
    case 'PHOTO_DIGEST_MISMATCH':
    case 'CRYPTO_FILE_TAMPERED':
      return `The photo arrived damaged or does not match its record. ${retry}; tell your admin if it keeps failing.`;
    case 'PHOTO_TYPE_UNSUPPORTED':
      return `The photo is not a JPEG, PNG or WebP image. ${retry}; tell your admin if it keeps failing.`;
    default: {
      const known = isErrorCode(code) ? `${errorCatalogue[code].message} ` : '';
      return `${known}${retry}; tell your admin if it keeps failing.`;
    }
  }
}

/**
 * What a record the server refused means for the field worker, and what to do: as
 * {@link syncFailureText}, but naming the photo the server said the refusal is about (`photoId`).
 * For PHOTO_ID_TAKEN that photo is exactly what to replace, so the text gives the commands to do it.
 */
export function recordFailureText(f: { readonly id: string; readonly code: string; readonly photoId?: string | undefined }): string {
  if (f.photoId === undefined) return syncFailureText(f.code, 'record');
  // The short ids "list" and "show" print (records-view's shortId; that module imports this one).
  const record = f.id.slice(0, 8);
  const photo = f.photoId.slice(0, 8);
  if (f.code === 'PHOTO_ID_TAKEN') {
    return (
      `photo ${photo} is taken on this server by another record, so the record was not stored there (it stays on this phone). ` +
      `Keep a copy ("fieldvault-field photo save ${record} ${photo} --out FILE"), remove it ("fieldvault-field photo remove ${record} ${photo}"), ` +
      `add it again ("fieldvault-field photo add ${record} FILE"): it gets a new id. Then sync.`
    );
  }
  return `photo ${photo}: ${syncFailureText(f.code, 'record')}`;
}

/**
 * The report of any error. Catalogued errors (SDK and CLI) come through in the field worker's
 * words (see `inFieldWorkerWords`), which never hold a key, token or password. Anything else is a
 * bug: it is reported as INTERNAL_ERROR without its message (which could carry anything), unless
 * `debug` asks for it.
 */
export function reportOf(err: unknown, debug: boolean): ErrorReport {
  if (isFieldvaultError(err)) {
    const shown = inFieldWorkerWords(err);
    const server = serverOfError(err);
    return {
      code: shown.code,
      message: shown.message,
      exitCode: err.code === 'FIELD_USAGE' ? 2 : err.code === 'FIELD_INTERRUPTED' ? 130 : 1,
      ...(server === undefined ? {} : { json: { server } }),
    };
  }
  return unexpectedErrorReport(err, debug);
}

/** An error as `--json` shows it: `{code, message}`, and `server: {name, id}` when it is tied to a configured server. */
export interface ErrorJson {
  readonly code: string;
  readonly message: string;
  readonly server?: ErrorServer;
}

export function errorJson(err: unknown, debug: boolean): ErrorJson {
  const { code, message } = reportOf(err, debug);
  const server = serverOfError(err);
  return server === undefined ? { code, message } : { code, message, server };
}
