#!/usr/bin/env node
// Runs pnpm (the pinned version) for the root npm scripts, so that a fresh machine with only
// Node 20 + npm needs nothing installed by hand. Usage:
//   node scripts/workspace.mjs install            install the workspace (frozen lockfile in CI)
//   node scripts/workspace.mjs <pnpm exec args>   e.g. `turbo run build`
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];
const toolsDir = join(root, '.tools');
const localPnpm = join(toolsDir, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');

// Native addons must build against the local Node headers (TOOLCHAIN.md): nothing else is reachable.
// turbo looks pnpm up on PATH, so the locally bootstrapped copy goes first.
const env = {
  ...process.env,
  npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr',
  PATH: `${join(toolsDir, 'node_modules', '.bin')}${delimiter}${process.env.PATH ?? ''}`,
};

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env, ...opts });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

function pnpmCommand() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8', env });
  if (probe.status === 0 && probe.stdout.trim() === pinned) return { cmd: 'pnpm', pre: [] };
  if (!existsSync(localPnpm)) {
    console.error(`[fieldvault] installing pnpm@${pinned} into .tools/ (one time)`);
    const status = run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', toolsDir, `pnpm@${pinned}`]);
    if (status !== 0) process.exit(status);
  }
  return { cmd: process.execPath, pre: [localPnpm] };
}

const [verb, ...rest] = process.argv.slice(2);
const pnpm = pnpmCommand();
if (verb === 'install') {
  const frozen = existsSync(join(root, 'pnpm-lock.yaml')) ? ['--frozen-lockfile'] : [];
  process.exit(run(pnpm.cmd, [...pnpm.pre, 'install', '--reporter=append-only', ...frozen, ...rest]));
} else if (verb === 'pnpm') {
  process.exit(run(pnpm.cmd, [...pnpm.pre, ...rest]));
} else {
  process.exit(run(pnpm.cmd, [...pnpm.pre, 'exec', verb, ...rest]));
}
