import { FieldvaultError } from '@fieldvault/protocol';
import type { Command } from 'commander';
import type { SyncProgress, SyncSummary } from '@fieldvault/client';
import { serverOf, withSession } from '../context.js';
import { keyValues, table } from '../output.js';
import { shortId } from '../records-view.js';
import type { Action } from './action.js';

const PHASE_LABEL: Readonly<Record<SyncProgress['phase'], string>> = {
  push: 'push',
  pull: 'pull',
  'photos-up': 'photos up',
  'photos-down': 'photos down',
};

function summaryText(name: string, s: SyncSummary): string {
  const lines = [
    keyValues([
      ['server', `${name} (${s.serverId})`],
      ['pushed', `${s.pushed} record(s)`],
      ['pulled', `${s.pulled} record(s)`],
      ['conflicts', s.conflicts === 0 ? 'none' : `${s.conflicts} record(s) now need review ("search --needs-review")`],
      ['photos', `${s.photos.uploaded} uploaded, ${s.photos.downloaded} downloaded${s.photos.failed.length === 0 ? '' : `, ${s.photos.failed.length} failed`}`],
      ['device', s.wiped ? 'retired: everything was synced, so this phone was wiped' : s.deviceStatus],
      ['failed', s.failed.length === 0 ? 'none' : `${s.failed.length} record(s), kept on the phone and retried next sync`],
    ]),
  ];
  if (s.clockOffsetMs !== undefined) {
    const minutes = Math.round(Math.abs(s.clockOffsetMs) / 60_000);
    lines.push('', `warning: this device's clock is about ${minutes} minute(s) ${s.clockOffsetMs > 0 ? 'behind' : 'ahead of'} the server's: set the date and time.`);
  }
  const failures = [
    ...s.failed.map((f) => ({ what: `record ${shortId(f.id)}`, code: f.code })),
    ...s.photos.failed.map((f) => ({ what: `photo ${shortId(f.photoId)}`, code: f.code })),
  ];
  if (failures.length > 0) {
    lines.push('', table(failures, [
      { header: 'FAILED', value: (f) => f.what },
      { header: 'CODE', value: (f) => f.code },
    ]));
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
          ctx.out.result({ server: name, ...summary }, () => summaryText(name, summary));
          if (summary.failed.length > 0 || summary.photos.failed.length > 0) process.exitCode = 1;
        });
      }),
    );
}
