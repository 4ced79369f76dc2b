#!/usr/bin/env node
// `npm run field|admin -- …`: runs a CLI from apps/<name>/dist, building it (and what it needs)
// first when it has not been built yet, or again when a source file of the app or of a workspace
// package it runs on is newer than its last build (after a `git pull` or an edit), so the README's
// commands never run stale code. The build's own output goes to stderr: the CLI's standard output
// stays clean for --json and pipes.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const apps = { field: '@fieldvault/app-field', admin: '@fieldvault/app-admin' };

/** Directory of every workspace package under `root`, by name. */
function workspacePackages(root) {
  const dirs = new Map();
  for (const group of ['apps', 'packages']) {
    for (const entry of readdirSync(join(root, group), { withFileTypes: true })) {
      const file = join(root, group, entry.name, 'package.json');
      if (entry.isDirectory() && existsSync(file)) dirs.set(JSON.parse(readFileSync(file, 'utf8')).name, join(root, group, entry.name));
    }
  }
  return dirs;
}

/**
 * Newest modification time (ms) of the sources package `pkg` runs on: its own and its runtime
 * workspace dependencies', and the root tsconfig.base.json every package's tsconfig extends.
 * Directories under each src/ count too: deleting or renaming a file gives no file a newer time,
 * only the directory that held it.
 */
export function newestSource(root, pkg) {
  const dirs = workspacePackages(root);
  const seen = new Set();
  const base = join(root, 'tsconfig.base.json');
  let newest = existsSync(base) ? statSync(base).mtimeMs : 0;
  const walk = (path) => {
    newest = Math.max(newest, statSync(path).mtimeMs);
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) walk(full);
      else newest = Math.max(newest, statSync(full).mtimeMs);
    }
  };
  const visit = (packageName) => {
    const dir = dirs.get(packageName);
    if (dir === undefined || seen.has(packageName)) return;
    seen.add(packageName);
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const file of readdirSync(dir)) if (file === 'package.json' || /^tsconfig.*\.json$/.test(file)) newest = Math.max(newest, statSync(join(dir, file)).mtimeMs);
    if (existsSync(join(dir, 'src'))) walk(join(dir, 'src'));
    for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) if (String(range).startsWith('workspace:')) visit(dep);
  };
  visit(pkg);
  return newest;
}

/** The built CLI of app `name` (a key of `apps`) under `root`. */
export const mainOf = (root, name) => join(root, 'apps', name, 'dist', 'main.js');
// Written after a build made here. `npm run build` does not write it, so the first run after one
// asks turbo again, which answers from its cache.
export const stampOf = (root, name) => join(root, 'apps', name, 'dist', '.fieldvault-built');

/** When app `name` was last built: its stamp, else its dist/main.js; -1 when never. */
function builtAt(root, name) {
  const stamp = stampOf(root, name);
  const main = mainOf(root, name);
  return existsSync(stamp) ? statSync(stamp).mtimeMs : existsSync(main) ? statSync(main).mtimeMs : -1;
}

/** Whether app `name` has a build that a source it runs on is newer than. */
export const isStale = (root, name) => newestSource(root, apps[name]) > builtAt(root, name);

// Run as a script (not imported, as the test of the staleness check does).
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const [name, ...args] = process.argv.slice(2);
  const pkg = Object.hasOwn(apps, name ?? '') ? apps[name] : undefined;
  if (pkg === undefined) {
    console.error(`usage: node scripts/app.mjs <${Object.keys(apps).join('|')}> [arguments]`);
    process.exit(2);
  }
  const main = mainOf(root, name);
  const stamp = stampOf(root, name);
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
    writeFileSync(stamp, `${new Date().toISOString()}\n`);
  } else if (isStale(root, name)) {
    console.error(`[fieldvault] apps/${name} or a package it uses changed since its last build: rebuilding what changed`);
    step(['turbo', 'run', 'build', `--filter=${pkg}...`, '--output-logs=errors-only']);
    writeFileSync(stamp, `${new Date().toISOString()}\n`);
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
}
