/*
 * What commands print: a human rendering on stdout by default, one JSON document on stdout with
 * --json. Prompts, progress bars and notes go to stderr so that stdout stays parseable.
 */

export interface Output {
  readonly json: boolean;
  /** The command's result: `human()` as text, or `data` as JSON. */
  result(data: unknown, human: () => string): void;
  /** A note for the person at the terminal (stderr; not shown with --json). */
  note(text: string): void;
}

export function createOutput(json: boolean, stdout: NodeJS.WritableStream = process.stdout, stderr: NodeJS.WritableStream = process.stderr): Output {
  return {
    json,
    result(data, human) {
      const text = json ? JSON.stringify(data, null, 2) : human();
      if (text !== '') stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    note(text) {
      if (!json) stderr.write(`${text}\n`);
    },
  };
}
