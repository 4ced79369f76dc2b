#!/usr/bin/env node
// `npm run field|admin -- …`: runs a CLI from apps/<name>/dist, building it (and what it needs)
// first when it has not been built yet, so the README's commands work on a fresh clone. The
// build's own output goes to stderr: the CLI's standard output stays clean for --json and pipes.
// After pulling new code, `npm run build` rebuilds everything.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const apps = { field: '@fieldvault/app-field', admin: '@fieldvault/app-admin' };
const [name, ...args] = process.argv.slice(2);
const pkg = apps[name];
if (pkg === undefined) {
  console.error(`usage: node scripts/app.mjs <${Object.keys(apps).join('|')}> [arguments]`);
  process.exit(2);
}
const main = join(root, 'apps', name, 'dist', 'main.js');
const workspace = join(root, 'scripts', 'workspace.mjs');
const step = (argv) => {
  const r = spawnSync(process.execPath, [workspace, ...argv], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (!existsSync(main)) {
  console.error(`[fieldvault] apps/${name} is not built yet: installing and building it (once)`);
  step(['install']);
  step(['turbo', 'run', 'build', `--filter=${pkg}...`, '--output-logs=errors-only']);
}
const child = spawn(process.execPath, [main, ...args], { stdio: 'inherit' });
// Ctrl-C reaches the CLI directly (same process group): it decides (a sync finishes its batch
// first; a second Ctrl-C quits). This launcher only waits, and passes on signals sent to it alone.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => {
  if (signal !== null) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 1);
});
