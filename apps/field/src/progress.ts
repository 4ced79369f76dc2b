/* Progress bars on stderr for long work: shared with the other CLI, see @fieldvault/cli-kit. */
import { createProgress, type Progress } from '@fieldvault/cli-kit';

export { createProgress, type Progress, type ProgressUpdate } from '@fieldvault/cli-kit';

/** A progress bar that Ctrl-C can clear at once and keep silent afterwards. */
export interface InterruptibleProgress extends Progress {
  /**
   * Clears the bar from the terminal (leaving the cursor at the start of its line) and ignores
   * every later update: the work goes on to a safe point, but its note must stay readable.
   * True when a bar was on screen.
   */
  interrupt(): boolean;
}

export function createInterruptibleProgress(enabled: boolean, stream: NodeJS.WritableStream): InterruptibleProgress {
  const bar = createProgress(enabled, stream);
  let shown = false;
  let interrupted = false;
  return {
    update(u) {
      if (interrupted || !enabled) return;
      shown = true;
      bar.update(u);
    },
    stop() {
      if (!shown) return;
      shown = false;
      bar.stop();
    },
    interrupt() {
      interrupted = true;
      if (!shown) return false;
      shown = false;
      bar.stop();
      return true;
    },
  };
}
