import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { cliErrorCatalogue } from '../src/errors.js';
import { CLI } from './helpers.js';

// docs/admin-cli.md stays in step with the CLI: every ADMIN_* code and every command is documented.
const doc = readFileSync(new URL('../../../docs/admin-cli.md', import.meta.url), 'utf8');

t.test('every CLI error code is in docs/admin-cli.md', async (t) => {
  for (const code of Object.keys(cliErrorCatalogue)) t.ok(doc.includes(`\`${code}\``), code);
});

t.test('every command and subcommand of the help is in docs/admin-cli.md', async (t) => {
  const help = (args: string[]): string => spawnSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8' }).stdout;
  const commands = (text: string): string[] =>
    [...(text.slice(text.indexOf('Commands:')).split('\n\n')[0] ?? '').matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1] as string).filter((c) => c !== 'help');
  const top = commands(help([]));
  t.ok(top.length >= 8, 'the help lists the commands');
  for (const c of top) {
    t.match(doc, new RegExp(`\`${c}[ \`]`), c);
    if (c === 'users' || c === 'devices') for (const sub of commands(help([c]))) t.match(doc, new RegExp(`\`${c} ${sub}[ \`]`), `${c} ${sub}`);
  }
});

// Operator audit s10, item 10: "help GROUP COMMAND" printed the group's help.
t.test('help follows the whole command path', async (t) => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', HOME: t.testdir() } });
  const reinstate = run(['help', 'devices', 'reinstate']);
  t.equal(reinstate.status, 0, reinstate.stderr);
  t.match(reinstate.stdout, /^Usage: fieldvault-admin devices reinstate \[options\] <imei>/m);
  t.match(reinstate.stdout, '--reason <text>');
  t.equal(run(['help', 'devices']).stdout, run(['devices', '--help']).stdout, 'a group: the group help');
  const unknown = run(['help', 'devices', 'nope']);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /error ADMIN_USAGE: .*help: no command "devices nope" \(commands of devices: list, show, blacklist, retire, reinstate, rekey, unbind\)/);
});
