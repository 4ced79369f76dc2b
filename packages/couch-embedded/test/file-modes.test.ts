// The store's files are private to the account that runs it (operations audit, item 2): LevelDB
// files hold child records in plain JSON and password hashes. Before the fix the store directory
// was 0755 and its files 0644 under the usual umask 022.
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nano from 'nano';
import t from 'tap';
import { startStore } from './fixtures/store.js';

/** Every path under `dir` (itself included) whose mode gives group or other any permission. */
function exposed(dir: string): string[] {
  const out: string[] = [];
  if ((statSync(dir).mode & 0o077) !== 0) out.push(dir);
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    if ((statSync(p).mode & 0o077) !== 0) out.push(`${p} ${(statSync(p).mode & 0o777).toString(8)}`);
  }
  return out;
}

t.test('a new store directory and every file the store writes are private, whatever the umask', async (t) => {
  const old = process.umask(0o022);
  t.teardown(() => process.umask(old));
  const dataDir = join(t.testdir(), 'couch');
  const store = await startStore(t, { dataDir });
  const db = nano(store.url).use<{ name: string }>('children');
  await nano(store.url).db.create('children');
  await db.insert({ _id: 'c1', name: 'Amina' });
  t.equal(statSync(dataDir).mode & 0o777, 0o700);
  t.ok(readdirSync(dataDir, { recursive: true }).length > 3, 'the store wrote files');
  t.same(exposed(dataDir), [], 'no file or directory is group/world accessible');
});

t.test('an existing store directory with open modes (a store made before the fix) is tightened at start', async (t) => {
  const dataDir = join(t.testdir(), 'couch');
  mkdirSync(join(dataDir, 'old-db'), { recursive: true, mode: 0o755 });
  chmodSync(dataDir, 0o755);
  chmodSync(join(dataDir, 'old-db'), 0o755);
  writeFileSync(join(dataDir, 'old-db', '000001.log'), 'x', { mode: 0o644 });
  chmodSync(join(dataDir, 'old-db', '000001.log'), 0o644);
  await startStore(t, { dataDir });
  t.equal(statSync(dataDir).mode & 0o777, 0o700);
  t.equal(statSync(join(dataDir, 'old-db')).mode & 0o777, 0o700);
  t.equal(statSync(join(dataDir, 'old-db', '000001.log')).mode & 0o777, 0o600);
  t.same(exposed(dataDir), []);
});
