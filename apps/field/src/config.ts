import { readEnvironment as readCliEnvironment, type Environment } from '@fieldvault/cli-kit';

export { resolveHome, type Environment } from '@fieldvault/cli-kit';

/**
 * What the CLI takes from its environment; read once, at start (the only reader of process.env).
 * The home is `--home`, else `FIELDVAULT_FIELD_HOME`, else `~/.fieldvault-field` (see `resolveHome`).
 */
export function readEnvironment(): Environment {
  return readCliEnvironment({ envVar: 'FIELDVAULT_FIELD_HOME', dirName: '.fieldvault-field' }, process.env);
}
