#!/usr/bin/env node
// Writes docs/errors.md from the catalogue in packages/protocol (build it first).
// packages/protocol/test/errors-doc.test.ts fails when the file is out of date.
import { writeFileSync } from 'node:fs';
import { renderErrorCatalogueMarkdown } from '../packages/protocol/dist/index.js';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorCatalogueMarkdown());
console.log('docs/errors.md written');
