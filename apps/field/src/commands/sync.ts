import { FieldvaultError } from '@fieldvault/protocol';
import type { Command } from 'commander';
import { MAX_PAGE_SIZE, type Session, type SyncProgress, type SyncSummary } from '@fieldvault/client';
import { serverOf, withSession } from '../context.js';
import { syncFailureText } from '../errors.js';
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

function summaryText(name: string, s: SyncSummary, failures: readonly Failure[], newConflicts: number): string {
  const lines = [
    keyValues([
      ['server', `${name} (${s.serverId})`],
      ['sent', `${s.pushed} record(s)`],
      ['received', receivedLine(s)],
      ['conflicts', conflictsLine(s, newConflicts)],
      ['photos', `${s.photos.uploaded} uploaded, ${s.photos.downloaded} downloaded${s.photos.failed.length === 0 ? '' : `, ${s.photos.failed.length} failed`}`],
      ['device', s.wiped ? 'retired: everything was synced, so this phone was wiped' : s.deviceStatus],
      ['failed', s.failed.length === 0 ? 'none' : `${s.failed.length} record(s), kept on the phone and retried next sync`],
    ]),
  ];
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

export function registerSyncCommand(program: Command, action: Action): void {
  program
    .command('sync')
    .summary('push your changes to a server and pull everyone else\'s')
    .description(
      'Logs in online to the server (asks your password), pushes the records and photos this server has not acknowledged, then pulls what ' +
        'changed there since this phone\'s last sync with it. Each server has its own checkpoint, so a phone can sync with several servers. ' +
        'Progress bars show records and bytes on a terminal. A record the server refuses is listed with its code and retried next time; ' +
        'the command then exits with status 1. Ctrl-C stops at a safe point; run sync again to resume.',
    )
    .argument('[server]', 'a configured server name (default: the only one configured)')
    .addHelpText('after', '\nExample:\n  fieldvault-field sync office')
    .action(
      action(async (ctx, server) => {
        // The server name is checked before the password is asked.
        const { name } = serverOf(ctx.home.ensure().config, server as string | undefined);
        await withSession(ctx, { offline: false, server: name }, async ({ session, server: s }) => {
          if (s === undefined) throw new FieldvaultError('FIELD_SERVER_UNKNOWN', { detail: name });
          const signal = ctx.cancellation();
          const progress = ctx.progress();
          let summary: SyncSummary;
          const reviewBefore = await idsNeedingReview(session);
          try {
            // Ctrl-C aborts the signal: the SDK stops at a safe point with SYNC_CANCELLED.
            summary = await session.sync({
              transport: s.transport,
              signal,
              onProgress: (p) =>
                progress.update({ label: PHASE_LABEL[p.phase], done: p.recordsDone, total: p.recordsTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
            });
          } finally {
            progress.stop();
          }
          if (summary.wiped) ctx.home.update((c) => ({ ...c, currentUser: null }));
          const newConflicts = summary.wiped ? 0 : [...(await idsNeedingReview(session))].filter((id) => !reviewBefore.has(id)).length;
          const failed = summary.failed.map((f) => ({ ...f, message: syncFailureText(f.code, 'record') }));
          const photosFailed = summary.photos.failed.map((f) => ({ ...f, message: syncFailureText(f.code, 'photo') }));
          const failures: Failure[] = [
            ...failed.map((f) => ({ what: `record ${shortId(f.id)}`, code: f.code, message: f.message })),
            ...photosFailed.map((f) => ({ what: `photo ${shortId(f.photoId)}`, code: f.code, message: f.message })),
          ];
          ctx.out.result({ server: name, ...summary, failed, photos: { ...summary.photos, failed: photosFailed }, newConflicts }, () => summaryText(name, summary, failures, newConflicts));
          if (summary.failed.length > 0 || summary.photos.failed.length > 0) process.exitCode = 1;
        });
      }),
    );
}
