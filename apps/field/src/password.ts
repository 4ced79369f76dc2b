import { askOnTerminal, type AnswerSourceOptions } from '@fieldvault/cli-kit';
import { FieldvaultError } from '@fieldvault/protocol';
import { fieldError } from './errors.js';

/*
 * Passwords come from a prompt that does not echo (the `read` package, muted output, on stderr so
 * that stdout stays clean for --json), or with --password-stdin from the first lines of standard
 * input (scripts and tests). They are never taken from an argument or the environment, where
 * `ps` and shell history would show them, and never written anywhere.
 */

export interface PasswordSource {
  /**
   * One password. `confirm` asks twice on a terminal (sign-up); from stdin it reads one line.
   * @throws FIELD_PASSWORD_REQUIRED, FIELD_PASSWORD_MISMATCH, FIELD_INTERRUPTED
   */
  ask(prompt: string, options?: { readonly confirm?: boolean }): Promise<string>;
}

/** Lines of standard input, read to its end once, handed out in order. */
async function readStdinLines(stdin: NodeJS.ReadableStream): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

export function createPasswordSource(options: AnswerSourceOptions): PasswordSource {
  const stdin = options.stdin ?? process.stdin;
  const prompts = options.prompts ?? process.stderr;
  let lines: Promise<string[]> | undefined;
  /** Password lines read so far (for the messages). */
  let asked = 0;

  const fromTerminal = (prompt: string): Promise<string> =>
    askOnTerminal(prompt, { input: stdin, output: prompts, interrupted: () => new FieldvaultError('FIELD_INTERRUPTED') });

  return {
    async ask(prompt, { confirm = false } = {}) {
      if (options.fromStdin) {
        lines ??= readStdinLines(stdin);
        const all = await lines;
        const line = all.shift();
        if (line === undefined) {
          throw fieldError(
            'FIELD_PASSWORD_REQUIRED',
            `--password-stdin was given, but standard input has no ${asked === 0 ? '' : 'more '}password line${asked === 0 ? '' : ` for "${prompt}"`}. ` +
              'Put each password the command asks for on its own line of standard input (sign-up asks once), or leave out --password-stdin to type it.',
          );
        }
        asked += 1;
        if (line === '') {
          throw fieldError(
            'FIELD_PASSWORD_REQUIRED',
            `--password-stdin was given, but the password line read from standard input is empty. Put the password on ${asked === 1 ? 'the first line' : `line ${asked}`} of standard input, or leave out --password-stdin to type it.`,
          );
        }
        return line;
      }
      if (!options.stdinIsTty) throw new FieldvaultError('FIELD_PASSWORD_REQUIRED');
      const first = await fromTerminal(`${prompt}: `);
      if (confirm) {
        const again = await fromTerminal(`${prompt} (again): `);
        if (again !== first) throw new FieldvaultError('FIELD_PASSWORD_MISMATCH');
      }
      return first;
    },
  };
}
