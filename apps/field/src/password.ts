import { read } from 'read';
import { CliError } from './errors.js';

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

export function createPasswordSource(options: {
  readonly fromStdin: boolean;
  readonly stdinIsTty: boolean;
  readonly stdin?: NodeJS.ReadableStream;
  readonly prompts?: NodeJS.WritableStream;
}): PasswordSource {
  const stdin = options.stdin ?? process.stdin;
  const prompts = options.prompts ?? process.stderr;
  let lines: Promise<string[]> | undefined;

  const fromTerminal = async (prompt: string): Promise<string> => {
    try {
      const answer = await read({ prompt, silent: true, replace: '', input: stdin, output: prompts, terminal: true });
      // The Enter key is muted with the rest: end the prompt's line ourselves.
      prompts.write('\n');
      return answer;
    } catch (err) {
      // `read` rejects with "canceled" on Ctrl-C.
      if (err instanceof Error && /cancel/i.test(err.message)) {
        prompts.write('\n');
        throw new CliError('FIELD_INTERRUPTED');
      }
      throw err;
    }
  };

  return {
    async ask(prompt, { confirm = false } = {}) {
      if (options.fromStdin) {
        lines ??= readStdinLines(stdin);
        const line = (await lines).shift();
        if (line === undefined || line === '') throw new CliError('FIELD_PASSWORD_REQUIRED', 'standard input has no more password lines');
        return line;
      }
      if (!options.stdinIsTty) throw new CliError('FIELD_PASSWORD_REQUIRED');
      const first = await fromTerminal(`${prompt}: `);
      if (confirm) {
        const again = await fromTerminal(`${prompt} (again): `);
        if (again !== first) throw new CliError('FIELD_PASSWORD_MISMATCH');
      }
      return first;
    },
  };
}
