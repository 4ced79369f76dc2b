// --help texts: a new user can follow them without reading code (issue 5, apps/field).
import t from 'tap';
import { cli } from './helpers.js';

const home = t.testdir();

t.test('the main help lists every command and explains sessions, the home and output', async (t) => {
  const r = await cli(home, ['--help']);
  t.equal(r.code, 0);
  for (const command of ['init', 'signup', 'request-account', 'account-status', 'login', 'logout', 'status', 'servers', 'register', 'edit', 'show', 'list', 'search', 'delete', 'photo', 'resolve', 'sync']) {
    t.match(r.stdout, new RegExp(`^  ${command}\\b`, 'm'), `lists ${command}`);
  }
  t.match(r.stdout, /Sessions:\n.*keys and server tokens in memory only/);
  t.match(r.stdout, /asks your password \(or reads it\s+with --password-stdin\)/);
  t.match(r.stdout, /"login" remembers your user name/);
  t.match(r.stdout, /FIELDVAULT_FIELD_HOME/);
  t.match(r.stdout, /--json/);
  t.same(r.stderr, '');
  const version = await cli(home, ['--version']);
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  t.same((await cli(home, ['help'])).stdout, r.stdout, '"help" prints the same');
});

t.test('each command has its own help with an example', async (t) => {
  for (const [args, pattern] of [
    [['register'], /--name <text>[\s\S]*--age <number>[\s\S]*--sex <value>[\s\S]*--photo <file>[\s\S]*--fields-file <file>[\s\S]*Examples:[\s\S]*--fields-file child\.json/],
    [['edit'], /--unset <field>[\s\S]*Example:/],
    [['show'], /history[\s\S]*NEEDS REVIEW/],
    [['search'], /--age-min[\s\S]*--flag[\s\S]*--server <name>[\s\S]*Examples:/],
    [['login'], /--offline[\s\S]*Sessions: the SDK keeps keys and server tokens in memory only/],
    [['signup'], /at least 15 characters, not a common one/],
    [['status'], /--locked/],
    [['request-account'], /signed up offline[\s\S]*asks for it, like "login"[\s\S]*quarantine[\s\S]*approves[\s\S]*rejects[\s\S]*Examples:[\s\S]*request-account office/],
    [['account-status'], /pending[\s\S]*approved \(log in online[\s\S]*rejected[\s\S]*No password is needed[\s\S]*Example:/],
    [['sync'], /checkpoint[\s\S]*With --all[\s\S]*Examples:[\s\S]*sync --all/],
    [['servers', 'add'], /--server-id <id>[\s\S]*--pin <fingerprint>[\s\S]*--ca <file>[\s\S]*Example:/],
    [['photo', 'save'], /--out <file>/],
    [['resolve'], /supervisors[\s\S]*Example:/],
  ] as const) {
    const r = await cli(home, [...args, '--help']);
    t.equal(r.code, 0, `${args.join(' ')} --help`);
    t.match(r.stdout, new RegExp(`^Usage: fieldvault-field ${args.join(' ')}`, 'm'));
    // Commander wraps descriptions to the terminal width: compare with the line breaks folded.
    t.match(r.stdout.replaceAll(/\s+/g, ' '), pattern, `${args.join(' ')} explains itself`);
    t.match(r.stdout, /Global Options:[\s\S]*--password-stdin/, 'and shows the global options');
  }
});
