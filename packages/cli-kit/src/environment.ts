import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Where a CLI keeps its home: the variable that overrides it and the default directory under `~`. */
export interface HomeLocation {
  /** e.g. `FIELDVAULT_FIELD_HOME`. */
  readonly envVar: string;
  /** e.g. `.fieldvault-field`. */
  readonly dirName: string;
}

/** What a CLI takes from its environment; read once, at start. */
export interface Environment {
  /** The location's variable, when set and not empty. */
  readonly home: string | undefined;
  /** The default home, `~/<dirName>`. */
  readonly defaultHome: string;
  /** Whether stdin and stderr are terminals (password prompts, progress bars). */
  readonly stdinIsTty: boolean;
  readonly stderrIsTty: boolean;
}

/**
 * The environment of a CLI whose home is at `location`. `vars` is passed in rather than read here
 * so that each app's config.ts stays the only reader of `process.env`.
 */
export function readEnvironment(location: HomeLocation, vars: Readonly<Record<string, string | undefined>>): Environment {
  const home = vars[location.envVar];
  return Object.freeze({
    home: home === undefined || home === '' ? undefined : home,
    defaultHome: join(homedir(), location.dirName),
    stdinIsTty: process.stdin.isTTY === true,
    stderrIsTty: process.stderr.isTTY === true,
  });
}

/** The CLI home: `--home`, else the location's variable, else `~/<dirName>` (absolute). */
export function resolveHome(option: string | undefined, env: Environment): string {
  return resolve(option ?? env.home ?? env.defaultHome);
}
