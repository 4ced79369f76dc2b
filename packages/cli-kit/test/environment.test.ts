import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { readEnvironment, resolveHome } from '../src/index.js';

const location = { envVar: 'FIELDVAULT_TEST_HOME', dirName: '.fieldvault-test' } as const;

t.test('the home is --home, else the variable, else ~/<dirName>, always absolute', async (t) => {
  const set = readEnvironment(location, { FIELDVAULT_TEST_HOME: 'rel/dir', OTHER_HOME: '/nope' });
  t.equal(resolveHome('/opt/x', set), '/opt/x');
  t.equal(resolveHome(undefined, set), resolve('rel/dir'));
  const unset = readEnvironment(location, { OTHER_HOME: '/nope' });
  t.equal(resolveHome(undefined, unset), join(homedir(), '.fieldvault-test'));
});

t.test('an empty variable counts as unset', async (t) => {
  const env = readEnvironment(location, { FIELDVAULT_TEST_HOME: '' });
  t.equal(env.home, undefined);
  t.equal(resolveHome(undefined, env), join(homedir(), '.fieldvault-test'));
});

t.test('the environment is frozen once read', async (t) => {
  t.ok(Object.isFrozen(readEnvironment(location, {})));
});
