import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** What the CLI takes from its environment; read once, at start (the only reader of process.env). */
export interface Environment {
  /** `FIELDVAULT_FIELD_HOME`, when set and not empty. */
  readonly home: string | undefined;
  /** The default home, `~/.fieldvault-field`. */
  readonly defaultHome: string;
  /** Whether stdin and stderr are terminals (password prompts, progress bars). */
  readonly stdinIsTty: boolean;
  readonly stderrIsTty: boolean;
}

export function readEnvironment(): Environment {
  const home = process.env['FIELDVAULT_FIELD_HOME'];
  return Object.freeze({
    home: home === undefined || home === '' ? undefined : home,
    defaultHome: join(homedir(), '.fieldvault-field'),
    stdinIsTty: process.stdin.isTTY === true,
    stderrIsTty: process.stderr.isTTY === true,
  });
}

/** The CLI home: `--home`, else `FIELDVAULT_FIELD_HOME`, else `~/.fieldvault-field` (absolute). */
export function resolveHome(option: string | undefined, env: Environment): string {
  return resolve(option ?? env.home ?? env.defaultHome);
}
