/**
 * `@fieldvault/cli-kit`: the pieces the admin and field CLIs share. Each app keeps its own
 * errors, wording and home location and passes them in.
 */
export {
  readVersion,
  runCli,
  runMain,
  unexpectedErrorReport,
  type Action,
  type Cancellation,
  type CliDefinition,
  type ErrorReport,
  type GlobalOption,
} from './program.js';
export { createOutput, type Output } from './output.js';
export { keyValues, table, type Column } from './table.js';
export { bytes, showValue } from './values.js';
export { createProgress, type Progress, type ProgressUpdate } from './progress.js';
export { readEnvironment, resolveHome, type Environment, type HomeLocation } from './environment.js';
export { askOnTerminal, type AnswerSourceOptions, type TerminalPromptOptions } from './terminal-prompt.js';
