import type { Action as CliAction } from '@fieldvault/cli-kit';
import type { Context } from '../context.js';

/** Wraps a command body: builds the context from the global options, then runs it with its arguments. */
export type Action = CliAction<Context>;
