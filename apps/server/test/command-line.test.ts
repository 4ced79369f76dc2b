// The server's command line (admin audit s16, F8): `--help` and `--version` answer and exit 0,
// any other argument is CONFIG_INVALID — and none of them starts a server or creates ./data in the
// directory the admin stands in. The built server as a real process in an empty directory.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { hasStack, main } from './run-server.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** What the working directory holds afterwards. */
  readonly left: string[];
}

/**
 * Runs `main.js ARGS` in a new empty directory, with no FIELDVAULT_DATA_DIR (so ./data is where
 * a started server would write). A server that starts anyway is stopped after 15 s: the test fails
 * on its exit code and on the data directory it made, not on a hang.
 */
async function run(t: Test, args: readonly string[]): Promise<Ran> {
  const cwd = mkdtempSync(join(tmpdir(), 'fv-args-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  // Other ports than the defaults, in case a server starts: 8443/8080 may be in use on a shared machine.
  const child = spawn(process.execPath, [main, ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', FIELDVAULT_PORT: '0', FIELDVAULT_HTTP_PORT: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGINT'), 15_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  // tap's process-info hook may leave its own record in .tap/ of the working directory.
  return { code, stdout, stderr, left: readdirSync(cwd).filter((f) => f !== '.tap') };
}

t.test('--help and -h print the usage, name the variables and operations.md, exit 0 and create nothing', async (t) => {
  for (const flag of ['--help', '-h']) {
    const r = await run(t, [flag]);
    t.equal(r.code, 0, `${flag}: ${r.stderr}`);
    t.same(r.left, [], `${flag}: no data directory, no KEK`);
    t.match(r.stdout, `fieldvault-server ${version}: the fieldvault sync server`);
    t.match(r.stdout, 'It takes no other arguments: it is configured by environment variables');
    t.match(r.stdout, /FIELDVAULT_DATA_DIR +data directory \(default \.\/data of the working directory/);
    t.match(r.stdout, /FIELDVAULT_PORT +HTTPS port \(default 8443\)/);
    t.match(r.stdout, /FIELDVAULT_TLS_CERT /);
    t.match(r.stdout, /docs\/operations\.md/);
    t.notMatch(r.stdout + r.stderr, /listening on/);
  }
  // Anywhere on the line: asking for help never starts anything.
  const mixed = await run(t, ['--port', '9443', '--help']);
  t.equal(mixed.code, 0);
  t.same(mixed.left, []);
});

t.test('--version and -V print the version of apps/server/package.json alone, exit 0 and create nothing', async (t) => {
  for (const flag of ['--version', '-V']) {
    const r = await run(t, [flag]);
    t.equal(r.code, 0, `${flag}: ${r.stderr}`);
    t.equal(r.stdout, `${version}\n`);
    t.equal(r.stderr, '');
    t.same(r.left, [], `${flag}: no data directory`);
  }
});

t.test('any other argument is CONFIG_INVALID naming the variable to use, without a stack, a value or a data directory', async (t) => {
  const port = await run(t, ['--port', '9443']);
  t.equal(port.code, 1, port.stdout + port.stderr);
  t.same(port.left, [], 'no data directory, no KEK');
  t.match(port.stderr, 'fieldvault: CONFIG_INVALID: ');
  t.match(port.stderr, 'the server takes no arguments: use FIELDVAULT_* variables (got --port, 1 other argument');
  t.match(port.stderr, 'set FIELDVAULT_PORT instead');
  t.match(port.stderr, 'nothing was started or created');
  t.notOk(hasStack(port.stderr));
  t.equal(port.stdout, '');

  const data = await run(t, ['--data=/srv/fv', '--data-dir', '/srv/fv']);
  t.equal(data.code, 1);
  t.match(data.stderr, 'set FIELDVAULT_DATA_DIR instead');
  t.notMatch(data.stderr, '/srv/fv', 'values are not echoed');

  // A value may be a secret (a CouchDB URL with its password): never shown back.
  const secret = await run(t, ['--couchdb-url=https://app:s3cret-pw@couch:6984', 'https://app:s3cret-pw@couch:6984']);
  t.equal(secret.code, 1);
  t.notMatch(secret.stderr, 's3cret-pw');
  t.match(secret.stderr, 'set COUCHDB_URL instead');
  t.same(secret.left, []);

  const extra = await run(t, ['--version', 'now']);
  t.equal(extra.code, 1, '--version with anything else is not --version');
  t.same(extra.left, []);
});
