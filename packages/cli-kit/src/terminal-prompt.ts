import { read } from 'read';

export interface TerminalPromptOptions {
  /** Mute what is typed (passwords, codes); default true. */
  readonly secret?: boolean;
  readonly input: NodeJS.ReadableStream;
  /** Where the prompt goes: stderr, so that stdout stays clean for --json. */
  readonly output: NodeJS.WritableStream;
  /** The app's own catalogued error for Ctrl-C at the prompt. */
  readonly interrupted: () => Error;
}

/**
 * One answer typed at a terminal (the `read` package). A secret answer is not echoed and kept as
 * typed; any other is trimmed.
 * @throws the error made by `interrupted` when the person presses Ctrl-C
 */
export async function askOnTerminal(prompt: string, options: TerminalPromptOptions): Promise<string> {
  const { secret = true, input, output } = options;
  try {
    const answer = await read({ prompt, silent: secret, replace: '', input, output, terminal: true });
    // The Enter key is muted with the rest: end the prompt's line ourselves.
    if (secret) output.write('\n');
    return secret ? answer : answer.trim();
  } catch (err) {
    // `read` rejects with "canceled" on Ctrl-C.
    if (err instanceof Error && /cancel/i.test(err.message)) {
      output.write('\n');
      throw options.interrupted();
    }
    throw err;
  }
}

/** Where a CLI's answers come from: piped lines (`fromStdin`) or a terminal; the streams are for tests. */
export interface AnswerSourceOptions {
  /** Answers are read line by line from standard input (scripts, tests) instead of a prompt. */
  readonly fromStdin: boolean;
  /** Without a terminal and without `fromStdin` there is no one to ask: the app's error says so. */
  readonly stdinIsTty: boolean;
  /** Default `process.stdin`. */
  readonly stdin?: NodeJS.ReadableStream;
  /** Where prompts are written; default `process.stderr`. */
  readonly prompts?: NodeJS.WritableStream;
}
