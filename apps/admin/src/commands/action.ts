import type { Context } from '../context.js';

/** Wraps a command body: builds the context from the global options, then runs it with its arguments. */
export type Action = (run: (ctx: Context, ...args: unknown[]) => Promise<void>) => (...args: unknown[]) => Promise<void>;
