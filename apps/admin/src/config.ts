import { readEnvironment as readCliEnvironment, type Environment } from '@fieldvault/cli-kit';

export { resolveHome, type Environment } from '@fieldvault/cli-kit';

/**
 * What the CLI takes from its environment; read once, at start (the only reader of process.env).
 * The home is `--home`, else `FIELDVAULT_ADMIN_HOME`, else `~/.fieldvault-admin` (see `resolveHome`).
 */
export function readEnvironment(): Environment {
  return readCliEnvironment({ envVar: 'FIELDVAULT_ADMIN_HOME', dirName: '.fieldvault-admin' }, process.env);
}
