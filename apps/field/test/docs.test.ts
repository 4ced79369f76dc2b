// docs/field-cli.md stays in step with the CLI: every FIELD_* code of the main catalogue with its
// message and hint, and a section for every command.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { errorCatalogue } from '@fieldvault/protocol';
import { cliErrorCodes } from '../src/errors.js';
import { cli } from './helpers.js';

const doc = readFileSync(new URL('../../../docs/field-cli.md', import.meta.url), 'utf8');

t.test('every CLI error code is documented with its message and what to do', async (t) => {
  t.ok(cliErrorCodes.length >= 12, 'the FIELD_* codes are in the main catalogue');
  for (const code of cliErrorCodes) {
    const spec = errorCatalogue[code];
    t.ok(doc.includes(`| \`${code}\` | ${spec.message} | ${spec.hint} |`), code);
  }
  const documented = [...doc.matchAll(/^\| `(FIELD_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  t.same(documented.sort(), [...cliErrorCodes].sort(), 'and no code that does not exist');
});

t.test('every command the CLI has is documented', async (t) => {
  const help = await cli(t.testdir(), ['--help']);
  const section = help.stdout.split('Commands:\n')[1]?.split('\n\n')[0] ?? '';
  const commands = [...section.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1] ?? '').filter((c) => c !== 'help');
  t.ok(commands.length >= 14);
  for (const command of commands) t.match(doc, new RegExp(`^### \`${command}\\b`, 'm'), command);
});
