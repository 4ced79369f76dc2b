import { readFileSync } from 'node:fs';
import t from 'tap';
import { renderErrorCatalogueMarkdown } from '../src/errors.js';

// Guards issue 2: the catalogue and docs/errors.md may not drift apart.
t.test('docs/errors.md matches the error catalogue (run `npm run docs:errors` to refresh)', async (t) => {
  const onDisk = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  t.equal(onDisk, renderErrorCatalogueMarkdown());
});
