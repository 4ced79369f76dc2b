import { FieldvaultError, isFieldvaultError } from '@fieldvault/protocol';
import type { Command } from 'commander';
import { MAX_PAGE_SIZE, type Session, type SyncProgress, type SyncSummary } from '@fieldvault/client';
import { openDevice, serverOf, userOf, withSession, type Context, type OpenDevice } from '../context.js';
import { errorJson, errorServerOf, fieldError, recordFailureText, serverError, serverInWords, syncFailureText, type ConfiguredServers, type ErrorJson } from '../errors.js';
import type { PasswordSource } from '../password.js';
import { keyValues, table } from '../output.js';
import { shortId } from '../records-view.js';
import type { Action } from './action.js';

const PHASE_LABEL: Readonly<Record<SyncProgress['phase'], string>> = {
  push: 'push',
  pull: 'pull',
  'photos-up': 'photos up',
  'photos-down': 'photos down',
};

/** A record or photo the sync could not send or fetch, with what it means for the field worker. */
interface Failure {
  readonly what: string;
  readonly code: string;
  readonly message: string;
}

/**
 * The ids of the records on this phone with an unreviewed concurrent edit. Read before and after a
 * sync, so that the summary tells which of the sync's conflicts are new here: the SDK counts every
 * record of the sync that has one, also those this phone knew about (e.g. from another server).
 */
async function idsNeedingReview(session: Session): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let offset = 0; ; offset += MAX_PAGE_SIZE) {
    const page = await session.searchRecords({ needsReview: true, includeDeleted: true, limit: MAX_PAGE_SIZE, offset });
    for (const r of page) ids.add(r.id);
    if (page.length < MAX_PAGE_SIZE) return ids;
  }
}

function conflictsLine(s: SyncSummary, newConflicts: number): string {
  if (s.conflicts === 0) return 'none';
  const fresh = newConflicts === 0 ? 'none of them new on this phone' : newConflicts === s.conflicts ? 'all new on this phone' : `${newConflicts} of them new on this phone`;
  return `${s.conflicts} record(s) of this sync have an edit waiting for a supervisor's review (${fresh}); "search --needs-review" lists them`;
}

/**
 * What the pull brought: the records it made new or different on this phone, then the others the
 * server sent (mostly this phone's own changes coming back), which changed nothing here.
 */
function receivedLine(s: SyncSummary): string {
  const unchanged = s.pulled - s.pulledChanged;
  const changed = `${s.pulledChanged} new or changed record(s)`;
  return unchanged === 0 ? changed : `${changed}, ${unchanged} more this phone already had (e.g. its own changes sent back)`;
}

/**
 * A retired phone the SDK did not wipe: what it waits for (`retirementHold`), so that the field
 * worker knows what to do before the phone can go.
 */
function retiredLines(s: SyncSummary, configured: ConfiguredServers): string[] {
  const hold = s.retirementHold;
  if (hold === undefined) return [];
  const lines = ['', 'This phone is retired by this server. It is not wiped yet, because it still holds what a server lacks:'];
  for (const w of hold.servers) lines.push(`  ${serverInWords(errorServerOf(w.serverId, configured))}: ${w.records} record(s) and ${w.photos} photo(s) not synced there`);
  if (s.failed.length > 0 || s.photos.failed.length > 0) lines.push('  records or photos this server refused (below)');
  if (hold.otherDatabases > 0) {
    // A retired server refuses users it has never seen on this phone (DEVICE_RETIRED): the login
    // has to go to a server that knows the user, and a user no server knows can never sync.
    lines.push(
      `  ${hold.otherDatabases} database(s) of other users of this phone (their records may be on no server yet): each of them logs in online to a server ` +
        'that knows them and syncs there. If one of them cannot (e.g. signed up on this phone offline and never logged in online), ask your admin ' +
        'to blacklist this phone: that wipes it, with what is left on it.',
    );
  }
  lines.push(
    'Sync with those servers, then with this one again: the phone wipes itself once nothing is left. ' +
      'Only the servers configured on this phone count ("servers list"): one removed with "servers remove" no longer holds the wipe.',
  );
  return lines;
}

function summaryText(name: string, s: SyncSummary, failures: readonly Failure[], newConflicts: number, configured: ConfiguredServers): string {
  const lines = [
    keyValues([
      ['server', `${name} (${s.serverId})`],
      ['sent', `${s.pushed} record(s)`],
      ['received', receivedLine(s)],
      ['conflicts', conflictsLine(s, newConflicts)],
      ['photos', `${s.photos.uploaded} uploaded${s.photos.alreadyOnServer === 0 ? '' : ` (${s.photos.alreadyOnServer} already on the server)`}, ${s.photos.downloaded} downloaded${s.photos.failed.length === 0 ? '' : `, ${s.photos.failed.length} failed`}`],
      ['device', s.wiped ? 'retired: everything was synced, so this phone was wiped' : s.retirementHold !== undefined ? 'retired: not wiped yet (see below)' : s.deviceStatus],
      ['failed', s.failed.length === 0 ? 'none' : `${s.failed.length} record(s), kept on the phone and retried next sync`],
    ]),
  ];
  lines.push(...retiredLines(s, configured));
  if (s.clockOffsetMs !== undefined) {
    const minutes = Math.round(Math.abs(s.clockOffsetMs) / 60_000);
    lines.push('', `warning: this device's clock is about ${minutes} minute(s) ${s.clockOffsetMs > 0 ? 'behind' : 'ahead of'} the server's: set the date and time.`);
  }
  if (failures.length > 0) {
    lines.push('', 'Not synced:');
    for (const f of failures) lines.push(`  ${f.what} (${f.code}): ${f.message}`);
  }
  return lines.join('\n');
}

/** What one server's sync printed: the JSON of a single `sync`, its text, and whether something stayed unsynced. */
interface SyncResult {
  readonly data: Record<string, unknown>;
  readonly text: string;
  readonly incomplete: boolean;
  readonly wiped: boolean;
}

/**
 * Logs in online to the configured server `name`, syncs and logs out. `cancellation`: the signal
 * Ctrl-C aborts, asked for only once the login is done (a Ctrl-C before that quits at once).
 */
async function syncWith(ctx: Context, name: string, cancellation: () => AbortSignal, device?: OpenDevice): Promise<SyncResult> {
  return withSession(
    ctx,
    { offline: false, server: name },
    async ({ session, server: s }) => {
      if (s === undefined) throw new FieldvaultError('FIELD_SERVER_UNKNOWN', { detail: name });
      const signal = cancellation();
      const progress = ctx.progress();
      let summary: SyncSummary;
      const reviewBefore = await idsNeedingReview(session);
      try {
        // Ctrl-C aborts the signal: the SDK stops at a safe point with SYNC_CANCELLED.
        summary = await session.sync({
          transport: s.transport,
          signal,
          // A retirement wipe waits only for the servers still configured: one removed with
          // "servers remove" (or decommissioned) would otherwise hold it forever.
          servers: Object.values(ctx.home.ensure().config.servers).map((e) => e.serverId),
          onProgress: (p) =>
            progress.update({ label: PHASE_LABEL[p.phase], done: p.recordsDone, total: p.recordsTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
        });
      } finally {
        progress.stop();
      }
      if (summary.wiped) ctx.home.update((c) => ({ ...c, currentUser: null }));
      const newConflicts = summary.wiped ? 0 : [...(await idsNeedingReview(session))].filter((id) => !reviewBefore.has(id)).length;
      const failed = summary.failed.map((f) => ({ ...f, message: recordFailureText(f) }));
      const photosFailed = summary.photos.failed.map((f) => ({ ...f, message: syncFailureText(f.code, 'photo') }));
      const failures: Failure[] = [
        ...failed.map((f) => ({ what: `record ${shortId(f.id)}`, code: f.code, message: f.message })),
        ...photosFailed.map((f) => ({ what: `photo ${shortId(f.photoId)}`, code: f.code, message: f.message })),
      ];
      return {
        data: { server: name, ...summary, failed, photos: { ...summary.photos, failed: photosFailed }, newConflicts },
        text: summaryText(name, summary, failures, newConflicts, ctx.home.ensure().config.servers),
        incomplete: failures.length > 0,
        wiped: summary.wiped,
      };
    },
    device,
  );
}

/** A password source that asks once and gives the same answer to every later question (`sync --all`). */
function askingOnce(source: PasswordSource): PasswordSource {
  let answer: Promise<string> | undefined;
  return {
    ask(prompt, options) {
      answer ??= source.ask(prompt, options);
      return answer;
    },
  };
}

/**
 * Why `sync --all` stopped before the servers left. `refusedBy`: the configured name of the
 * server that refused the password (AUTH_INVALID_CREDENTIALS), when that is why.
 */
interface Stop {
  readonly why: string;
  readonly refusedBy?: string;
}

/** What a server left out of a stopped `sync --all` is told, with what to do now. */
function notSyncedText(stop: Stop, server: { readonly name: string; readonly id: string }): string {
  const head = `Not synced: "sync --all" stopped (${stop.why}) before it came to ${serverInWords(server)}`;
  if (stop.refusedBy === undefined) return `${head}. Run "fieldvault-field sync ${server.name}" when ready.`;
  // The server cannot tell a wrong password from a user it does not know (one code for both), and
  // a password may differ on one server after a reset there: say how to reach this one anyway.
  return (
    `${head}, so it was not contacted: a mistyped password would count as a failed login on every server. ` +
    'Run "fieldvault-field sync --all" again and type your password carefully. ' +
    `If your password is different on "${stop.refusedBy}" (changed or reset on one server only: see docs/operations.md, "Several servers") ` +
    `or you have no account there, sync with this server by name: "fieldvault-field sync ${server.name}".`
  );
}

/**
 * Whether `sync --all` goes on after `serverId` refused `password`: only when the password opens
 * `username`'s database on this phone (an offline login, closed at once; one Argon2id derivation)
 * AND this user has never logged in online to that server from this phone (no role remembered
 * for it: the SDK writes one at each online login). Then the server most likely has no account
 * for them. A server they did log in to before had taken a password: refusing one the phone
 * knows means it changed there (or an old password was typed after a reset), which is no reason
 * to try the servers left with it. False on any failure too: the caller then takes the cautious path.
 */
async function goesOnAfterRefusal(opened: OpenDevice, username: string, password: string, serverId: string): Promise<boolean> {
  try {
    const session = await opened.device.loginOffline(username, password);
    try {
      const known = (await session.knownServers()).find((k) => k.serverId === serverId);
      return known === undefined || known.role === null;
    } finally {
      await session.logout();
    }
  } catch {
    return false;
  }
}

/** One server's part of `sync --all --json`. */
type AllEntry = { readonly name: string; readonly id: string } & ({ readonly summary: Record<string, unknown> } | { readonly error: ErrorJson });

/**
 * `sync --all` (multi-server audit L7): every configured server in turn, in the order of
 * "servers list". A server that fails is reported and the next one is tried; Ctrl-C, a retired
 * phone wiped after its last sync, or a server that blocked the phone (DEVICE_BLACKLISTED: it
 * wiped itself) stops the round (the servers left are reported as not synced, not contacted).
 * One password is asked (or read from --password-stdin) and used for every server: a field
 * worker has one password on all servers (docs/operations.md, "Several servers"). So a server
 * that refuses it (AUTH_INVALID_CREDENTIALS) stops the round too, unless it opens the user's
 * database on the phone and the user never logged in to that server from this phone: a mistyped
 * (or old, after a reset) password would otherwise be a failed login, audited and counted towards
 * the lockout, on every server.
 */
async function syncAll(ctx: Context): Promise<void> {
  const opened = await openDevice(ctx);
  const servers = Object.entries(opened.config.servers);
  if (servers.length === 0) {
    throw fieldError('FIELD_SERVER_UNKNOWN', 'No server is configured on this phone, so "sync --all" has nothing to sync with. Add one with "fieldvault-field servers add NAME URL --pin FINGERPRINT".');
  }
  // Checked once, before the password is asked: the same for every server.
  const username = userOf(ctx, opened.config);
  const debug = ctx.globals.debug === true;
  const once: Context = { ...ctx, passwords: askingOnce(ctx.passwords) };
  let signal: AbortSignal | undefined;
  const cancellation = (): AbortSignal => (signal ??= ctx.cancellation());
  const entries: AllEntry[] = [];
  /** Servers not synced (an error), and servers synced with records or photos left over. */
  const failed: string[] = [];
  const incomplete: string[] = [];
  let stopped: Stop | undefined;
  const show = (name: string, text: string): void => {
    // Each server's part is printed as soon as it is known; --json prints the array at the end.
    if (!ctx.out.json) ctx.out.result(null, () => `${entries.length === 1 ? '' : '\n'}== ${name} ==\n${text}`);
  };
  for (const [name, entry] of servers) {
    const server = { name, id: entry.serverId };
    if (signal?.aborted === true) stopped ??= { why: 'Ctrl-C' };
    if (stopped !== undefined) {
      const err = serverError('FIELD_INTERRUPTED', notSyncedText(stopped, server), server);
      entries.push({ ...server, error: errorJson(err, debug) });
      failed.push(name);
      show(name, `error ${err.code}: ${err.message}`);
      continue;
    }
    try {
      const r = await syncWith(once, name, cancellation, opened);
      entries.push({ ...server, summary: r.data });
      if (r.incomplete) incomplete.push(name);
      show(name, r.text);
      if (r.wiped) stopped = { why: `this phone was retired by ${serverInWords(server)} and wiped after its last sync there` };
    } catch (err) {
      // Errors of the phone itself (no terminal for the password, Ctrl-C at the prompt…) would be
      // the same for every server: they end the command, as for a single sync.
      if (isFieldvaultError(err) && err.code.startsWith('FIELD_')) throw err;
      const shown = errorJson(err, debug);
      entries.push({ ...server, error: shown });
      failed.push(name);
      show(name, `error ${shown.code}: ${shown.message}`);
      if (shown.code === 'SYNC_CANCELLED') stopped = { why: 'Ctrl-C' };
      // The phone wiped itself (or, blocked earlier, refuses every other server): the servers left
      // would only get the same refusal. The error names the server that blocked the phone.
      if (shown.code === 'DEVICE_BLACKLISTED') stopped = { why: `an admin of ${serverInWords(shown.server ?? server)} has blocked this phone` };
      // A refused password stops the round unless it opens this user's database on the phone and
      // the user never logged in to this server from here: then it is not a typo but most likely a
      // server without this account, and the servers left may well take it. A server that took
      // this user's password before and refuses it now had it changed or reset (review s17 #5:
      // after a reset everywhere, the old password still opens the phone): stop as for a typo.
      if (
        shown.code === 'AUTH_INVALID_CREDENTIALS' &&
        !(await goesOnAfterRefusal(opened, username, await once.passwords.ask(`Password for ${username}`), entry.serverId))
      ) {
        stopped = { why: `${serverInWords(shown.server ?? server)} refused the username or password`, refusedBy: name };
      }
    }
  }
  if (ctx.out.json) ctx.out.result(entries, () => '');
  else {
    const parts = [`synced with ${servers.length - failed.length} of ${servers.length} server(s)`];
    if (failed.length > 0) parts.push(`failed: ${failed.join(', ')}`);
    if (incomplete.length > 0) parts.push(`records or photos not synced: ${incomplete.join(', ')}`);
    if (stopped?.refusedBy !== undefined) parts.push(`stopped: ${stopped.refusedBy} refused the password; run "sync --all" again and type it carefully`);
    ctx.out.result(null, () => `\n${parts.join('; ')}`);
  }
  if (failed.length > 0 || incomplete.length > 0) process.exitCode = 1;
}

/**
 * The server `sync` works with. With several configured and none named, the refusal points to
 * `--all` too (multi-server audit L7: a phone with regional and country servers).
 * @throws FIELD_SERVER_UNKNOWN, FIELD_SERVER_AMBIGUOUS
 */
function serverToSync(ctx: Context, server: string | undefined): { name: string } {
  const { config } = ctx.home.ensure();
  const names = Object.keys(config.servers);
  if (server === undefined && names.length > 1) {
    throw fieldError(
      'FIELD_SERVER_AMBIGUOUS',
      `No server was named and this phone has ${names.length} configured (${names.join(', ')}). ` +
        `Name one ("fieldvault-field sync ${names[0] ?? ''}"), or sync with each of them in turn: "fieldvault-field sync --all".`,
    );
  }
  return serverOf(config, server);
}

export function registerSyncCommand(program: Command, action: Action): void {
  program
    .command('sync')
    .summary('push your changes to a server and pull everyone else\'s (--all: every server)')
    .description(
      'Logs in online to the server (asks your password), pushes the records and photos this server has not acknowledged, then pulls what ' +
        'changed there since this phone\'s last sync with it. Each server has its own checkpoint, so a phone can sync with several servers. ' +
        'Progress bars show records and bytes on a terminal. A record the server refuses is listed with its code and retried next time; ' +
        'the command then exits with status 1. Ctrl-C stops at a safe point; run sync again to resume.\n\n' +
        'With --all, syncs with every configured server in turn (in the order of "servers list"), asking your password once: each ' +
        'server\'s summary (or error) is headed by its name; a server that fails does not stop the others, and the command exits ' +
        'with status 1 if any server failed or left something unsynced. Ctrl-C stops at a safe point and skips the servers left; ' +
        'so does a server that retired the phone (once it wiped itself) or blocked it, and a server that refuses your password ' +
        '(AUTH_INVALID_CREDENTIALS), unless it opens your database on this phone and you never logged in to that server from this phone ' +
        '(then it most likely has no account for you): the servers after it are not contacted, so a mistyped or old password is one ' +
        'failed login, not one on every server. ' +
        'With --json: an array with one entry per server, {name, id, summary} or {name, id, error}.',
    )
    .argument('[server]', 'a configured server name (default: the only one configured)')
    .option('--all', 'sync with every configured server, one after the other')
    .addHelpText('after', '\nExamples:\n  fieldvault-field sync office\n  fieldvault-field sync --all')
    .action(
      action(async (ctx, server, raw) => {
        const { all } = raw as { all?: boolean };
        if (all === true) {
          if (server !== undefined) throw new FieldvaultError('FIELD_USAGE', { detail: '--all and a server name together: give one or the other' });
          await syncAll(ctx);
          return;
        }
        // The server name is checked before the password is asked.
        const { name } = serverToSync(ctx, server as string | undefined);
        const r = await syncWith(ctx, name, () => ctx.cancellation());
        ctx.out.result(r.data, () => r.text);
        if (r.incomplete) process.exitCode = 1;
      }),
    );
}
