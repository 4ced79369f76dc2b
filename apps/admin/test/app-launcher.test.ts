import { renameSync, rmSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';

// `npm run admin|field` (scripts/app.mjs) rebuilds the CLI when what it runs on changed since its
// last build. Its check, run against a small workspace in a temporary directory (never the real
// tree's files): a deleted or renamed source gives no file a newer time, only the directory that
// held it; tsconfig.base.json sits at the root, outside every package.
interface Launcher {
  isStale(root: string, name: string): boolean;
  stampOf(root: string, name: string): string;
}
// A variable specifier: the script has no type declarations, the interface above is its shape.
const script = pathToFileURL(join(import.meta.dirname, '..', '..', '..', 'scripts', 'app.mjs')).href;
const { isStale, stampOf } = (await import(script)) as Launcher;

const root = t.testdir({
  'tsconfig.base.json': '{ "compilerOptions": { "strict": true } }\n',
  apps: {
    admin: {
      'package.json': JSON.stringify({ name: '@fieldvault/app-admin', dependencies: { '@fieldvault/protocol': 'workspace:*', commander: '^14.0.3' } }),
      'tsconfig.json': '{ "extends": "../../tsconfig.base.json" }\n',
      src: { 'main.ts': 'export {};\n', commands: { 'records.ts': 'export {};\n', 'users.ts': 'export {};\n' } },
      dist: { 'main.js': '', '.fieldvault-built': '' },
    },
  },
  packages: {
    protocol: {
      'package.json': JSON.stringify({ name: '@fieldvault/protocol' }),
      src: { 'index.ts': 'export {};\n', 'old.ts': 'export {};\n' },
    },
  },
});

/** Every file and directory an hour old, then the build stamp newer: a fresh build. */
function builtNow(): void {
  const old = new Date(Date.now() - 3_600_000);
  const age = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) if (entry.isDirectory()) age(join(path, entry.name));
    for (const entry of readdirSync(path)) utimesSync(join(path, entry), old, old);
  };
  age(root);
  const stamp = new Date(old.getTime() + 60_000);
  utimesSync(stampOf(root, 'admin'), stamp, stamp);
}

t.test('a fresh build is not stale, an edited source is', async (t) => {
  builtNow();
  t.equal(isStale(root, 'admin'), false, 'nothing changed since the build');
  writeFileSync(join(root, 'packages', 'protocol', 'src', 'index.ts'), 'export const x = 1;\n');
  t.equal(isStale(root, 'admin'), true, 'a dependency\'s source was edited');
});

t.test('a deleted source file makes the build stale', async (t) => {
  builtNow();
  rmSync(join(root, 'packages', 'protocol', 'src', 'old.ts'));
  t.equal(isStale(root, 'admin'), true, 'deleted from a dependency\'s src/');
});

t.test('a renamed source file makes the build stale', async (t) => {
  builtNow();
  renameSync(join(root, 'apps', 'admin', 'src', 'commands', 'users.ts'), join(root, 'apps', 'admin', 'src', 'commands', 'accounts.ts'));
  t.equal(isStale(root, 'admin'), true, 'renamed in a subdirectory of the app\'s src/');
});

t.test('an edit of the root tsconfig.base.json makes the build stale', async (t) => {
  builtNow();
  t.equal(isStale(root, 'admin'), false);
  writeFileSync(join(root, 'tsconfig.base.json'), '{ "compilerOptions": { "strict": true, "target": "ES2023" } }\n');
  t.equal(isStale(root, 'admin'), true);
});
