#!/usr/bin/env node
// Runs every workspace package's tap suite one package at a time (tap already runs a package's
// files in parallel on both cores), keeps each package's full TAP output under test-output/,
// prints failures in full, and ends with the one line CI reads: `N passed, N failed`.
// Counts are tap's own assertion counts; a suite that dies without a summary counts as a failure.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = join(root, 'test-output');
mkdirSync(outDir, { recursive: true });
const tapBin = join(root, 'node_modules', '.bin', 'tap');
const only = process.argv.slice(2); // optional package names to run

function workspacePackages() {
  const dirs = [];
  for (const group of ['packages', 'apps']) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base).sort()) {
      const pj = join(base, name, 'package.json');
      if (!existsSync(pj)) continue;
      const pkg = JSON.parse(readFileSync(pj, 'utf8'));
      if (!pkg.scripts?.test) continue;
      if (only.length > 0 && !only.includes(pkg.name) && !only.includes(name)) continue;
      dirs.push({ dir: join(base, name), name: pkg.name });
    }
  }
  return dirs;
}

function runTap({ dir, name }) {
  return new Promise((resolve) => {
    const file = join(outDir, `${name.replace(/[@/]/g, '_')}.tap`);
    const out = createWriteStream(file);
    const chunks = [];
    const child = spawn(tapBin, ['--reporter=tap'], { cwd: dir, env: { ...process.env, FORCE_COLOR: '0' } });
    const onData = (d) => { chunks.push(d); out.write(d); };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => {
      out.end();
      const text = Buffer.concat(chunks).toString('utf8');
      // tap's closing comment, e.g. `# { total: 12, pass: 11, fail: 1 }`
      const m = [...text.matchAll(/^# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?/gm)].at(-1);
      let pass = m ? Number(m[2] ?? 0) : 0;
      let fail = m ? Number(m[3] ?? 0) : 0;
      if (code !== 0 && fail === 0) fail = 1; // crashed or timed out without a failing assertion
      if (!m && code === 0) fail = 1; // no summary at all: nothing ran, which is not a pass
      resolve({ name, pass, fail, code, text, file });
    });
  });
}

const started = Date.now();
let passed = 0;
let failed = 0;
for (const pkg of workspacePackages()) {
  const t0 = Date.now();
  const r = await runTap(pkg);
  passed += r.pass;
  failed += r.fail;
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (r.fail > 0) {
    process.stdout.write(r.text);
    console.log(`FAIL ${r.name}: ${r.pass} passed, ${r.fail} failed (exit ${r.code}, ${secs}s) — full output: ${relative(root, r.file)}`);
  } else {
    console.log(`ok   ${r.name}: ${r.pass} passed (${secs}s)`);
  }
}
console.log(`all suites in ${((Date.now() - started) / 1000).toFixed(1)}s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
