/* Progress bars on stderr for long work: shared with the other CLI, see @fieldvault/cli-kit. */
export { createProgress, type Progress, type ProgressUpdate } from '@fieldvault/cli-kit';
