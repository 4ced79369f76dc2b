import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createNodeFileSystem } from '../src/index.js';

t.test('a failing stream write leaves the old file and no temporary file', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'f'), 'old');
  const fs = createNodeFileSystem(dir);
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield new TextEncoder().encode('partial new content');
    throw new Error('source failed');
  }
  await t.rejects(fs.writeFileAtomic('f', failing()), { message: 'source failed' });
  t.equal(readFileSync(join(dir, 'f'), 'utf8'), 'old');
  t.same(readdirSync(dir), ['f']);
});

t.test('an atomic write replaces the file with the given mode', async (t) => {
  const dir = t.testdir();
  const fs = createNodeFileSystem(dir);
  await fs.writeFileAtomic('f', new TextEncoder().encode('new'), { mode: 0o600 });
  t.equal(readFileSync(join(dir, 'f'), 'utf8'), 'new');
  t.equal(await fs.mode('f'), 0o600);
});

t.test('paths that leave the device directory are refused', async (t) => {
  const fs = createNodeFileSystem(t.testdir());
  await t.rejects(fs.readFile('../outside'), { code: 'INTERNAL_ERROR' });
  await t.rejects(fs.readFile('/etc/passwd'), { code: 'INTERNAL_ERROR' });
});

t.test('missing files read as undefined, list as empty', async (t) => {
  const fs = createNodeFileSystem(t.testdir());
  t.equal(await fs.readFile('nope'), undefined);
  t.equal(await fs.openRead('nope'), undefined);
  t.same(await fs.list('nodir'), []);
  t.equal(await fs.exists('nope'), false);
});
