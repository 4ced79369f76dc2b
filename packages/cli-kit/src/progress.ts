import cliProgress from 'cli-progress';
import { bytes } from './values.js';

/*
 * Progress bars (cli-progress) on stderr for long work: photos being encrypted, a sync's push,
 * pull and photo phases, a backup. Only on a terminal and never with --json, so scripts and logs
 * get clean output; the bar is cleared when the phase ends and the command prints its summary.
 */

export interface ProgressUpdate {
  /** What is being done: "photos", "push", "pull", "photos up" … */
  readonly label: string;
  readonly done: number;
  readonly total: number;
  /** Bytes, when the work moves bytes. */
  readonly bytesDone?: number;
  readonly bytesTotal?: number;
}

export interface Progress {
  update(u: ProgressUpdate): void;
  stop(): void;
}

const silent: Progress = { update: () => undefined, stop: () => undefined };

export function createProgress(enabled: boolean, stream: NodeJS.WritableStream = process.stderr): Progress {
  if (!enabled) return silent;
  let bar: cliProgress.SingleBar | undefined;
  let label: string | undefined;
  return {
    update(u) {
      if (bar === undefined || label !== u.label) {
        bar?.stop();
        label = u.label;
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: '{label} [{bar}] {value}/{total}{bytes}',
            barsize: 30,
            hideCursor: true,
            clearOnComplete: true,
            fps: 10,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(Math.max(u.total, u.done), u.done, { label: u.label.padEnd(10), bytes: '' });
      }
      const b = u.bytesTotal !== undefined && u.bytesTotal > 0 ? ` | ${bytes(u.bytesDone ?? 0)}/${bytes(u.bytesTotal)}` : '';
      bar.setTotal(Math.max(u.total, u.done));
      bar.update(u.done, { label: u.label.padEnd(10), bytes: b });
    },
    stop() {
      bar?.stop();
      bar = undefined;
      label = undefined;
    },
  };
}
