import { createInterface, type Interface } from 'node:readline';
import { askOnTerminal, type AnswerSourceOptions } from '@fieldvault/cli-kit';
import { CliError } from './errors.js';

/*
 * Answers (setup token, passwords, one-time codes) come from a prompt that does not echo (the
 * `read` package, muted, on stderr so stdout stays clean for --json) or, with --stdin, one per
 * line from standard input, read as they are needed (so a script can read the TOTP secret the CLI
 * prints at enrolment before it answers with a code). Never from an argument or the environment,
 * where `ps` and shell history would show them; never written anywhere.
 */

export interface Prompter {
  /**
   * One answer. `confirm` asks twice on a terminal (new passwords); from stdin it reads one line.
   * @throws ADMIN_INPUT_REQUIRED, ADMIN_STDIN_EXHAUSTED, ADMIN_PASSWORD_MISMATCH, ADMIN_INTERRUPTED
   */
  ask(prompt: string, options?: { readonly secret?: boolean; readonly confirm?: boolean }): Promise<string>;
  close(): void;
}

/** Lines of a stream handed out one at a time, as they arrive. */
function lineReader(stdin: NodeJS.ReadableStream): { next(): Promise<string | undefined>; close(): void } {
  let rl: Interface | undefined;
  const lines: string[] = [];
  const waiting: Array<(line: string | undefined) => void> = [];
  let ended = false;
  const start = (): void => {
    if (rl !== undefined) return;
    rl = createInterface({ input: stdin, terminal: false, crlfDelay: Infinity });
    rl.on('line', (line) => {
      const w = waiting.shift();
      if (w !== undefined) w(line);
      else lines.push(line);
    });
    rl.on('close', () => {
      ended = true;
      for (const w of waiting.splice(0)) w(undefined);
    });
  };
  return {
    next() {
      start();
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (ended) return Promise.resolve(undefined);
      return new Promise((resolve) => waiting.push(resolve));
    },
    close() {
      rl?.close();
    },
  };
}

export function createPrompter(options: AnswerSourceOptions): Prompter {
  const stdin = options.stdin ?? process.stdin;
  const prompts = options.prompts ?? process.stderr;
  const reader = options.fromStdin ? lineReader(stdin) : undefined;

  const fromTerminal = (prompt: string, secret: boolean): Promise<string> =>
    askOnTerminal(prompt, { secret, input: stdin, output: prompts, interrupted: () => new CliError('ADMIN_INTERRUPTED') });

  return {
    async ask(prompt, { secret = true, confirm = false } = {}) {
      if (reader !== undefined) {
        const line = await reader.next();
        if (line === undefined) throw new CliError('ADMIN_STDIN_EXHAUSTED', `no line left for "${prompt}"`);
        if (line === '' || line === '\r') throw new CliError('ADMIN_INPUT_REQUIRED', `standard input had an empty line for "${prompt}"`);
        return line.endsWith('\r') ? line.slice(0, -1) : line;
      }
      if (!options.stdinIsTty) throw new CliError('ADMIN_INPUT_REQUIRED', `"${prompt}": there is no terminal to ask on and --stdin was not given`);
      const first = await fromTerminal(`${prompt}: `, secret);
      if (confirm) {
        const again = await fromTerminal(`${prompt} (again): `, secret);
        if (again !== first) throw new CliError('ADMIN_PASSWORD_MISMATCH');
      }
      if (first === '') throw new CliError('ADMIN_INPUT_REQUIRED', `nothing was typed for "${prompt}"`);
      return first;
    },
    close() {
      reader?.close();
    },
  };
}
