// Offline mistakes in a field worker's words (new-user audit of apps/field): the built CLI as a
// real process on real SQLCipher homes. Ordinary mistakes are usage errors saying the rule, before
// any password is asked; the phone's own state (a deleted record, a user it does not know, a lost
// config.json) is said plainly, with what to do.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import t, { type Test } from 'tap';
import type { Environment } from '../src/config.js';
import { makeContext } from '../src/context.js';
import { Home } from '../src/home.js';
import { createOutput } from '../src/output.js';
import { createPasswordSource } from '../src/password.js';
import { CLI, PASSWORD_A, cli, cliWith, json, snapshot } from './helpers.js';

async function phoneWithAmina(t: Test): Promise<string> {
  const home = t.testdir();
  const r = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  t.equal(r.code, 0, r.stderr);
  return home;
}

t.test('a username the SDK would refuse is a usage error saying the rule, before any password', async (t) => {
  const home = await phoneWithAmina(t);
  const r = await cli(home, ['--user', 'Amina', 'list']);
  t.equal(r.code, 2);
  t.match(r.stderr, /^fieldvault-field: error FIELD_USAGE: .*--user "Amina": a username is 1 to 64 lowercase letters, digits, "\.", "_" or "-".*did you mean --user amina\?/);
  t.notMatch(r.stderr, /FIELD_PASSWORD_REQUIRED|INPUT_INVALID|docs\/protocol\.md/, 'no password asked, no developer words');
});

t.test('option ranges are usage errors (exit 2) saying the range', async (t) => {
  const home = await phoneWithAmina(t);
  for (const [args, pattern] of [
    [['list', '--limit', '0'], /--limit: a whole number from 1 to 1000/],
    [['list', '--limit', '1001'], /--limit: a whole number from 1 to 1000/],
    [['list', '--limit', 'abc'], /--limit: a whole number from 1 to 1000/],
    [['list', '--offset=-1'], /--offset: a whole number of 0 or more/],
    [['search', '--limit', '0'], /--limit: a whole number from 1 to 1000/],
    [['search', '--name', 'amina', '--cursor', 'C'], /--cursor pages a server search: give it with the same --server NAME/],
  ] as const) {
    const r = await cliWith(home, PASSWORD_A, [...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, /^fieldvault-field: error FIELD_USAGE: /);
    t.match(r.stderr, pattern);
    t.equal(r.stdout, '', 'no results printed');
  }
});

t.test('--password-stdin: an empty line is called empty, a missing line missing', async (t) => {
  const home = await phoneWithAmina(t);
  const empty = await cli(home, ['--password-stdin', 'list'], '\n');
  t.equal(empty.code, 1);
  t.match(empty.stderr, /error FIELD_PASSWORD_REQUIRED: --password-stdin was given, but the password line read from standard input is empty/);
  t.notMatch(empty.stderr, /--password-stdin was not given/);
  const none = await cli(home, ['--password-stdin', 'list'], '');
  t.match(none.stderr, /error FIELD_PASSWORD_REQUIRED: --password-stdin was given, but standard input has no password line/);
  const secondMissing = await cli(home, ['--user', 'bilal', '--password-stdin', 'signup'], 'seven copper kettles sing at dawn\n');
  t.equal(secondMissing.code, 0, 'sign-up from stdin reads one line');
});

t.test('changing a deleted record says it is deleted, as "show" displays it', async (t) => {
  const home = await phoneWithAmina(t);
  const { record } = json<{ record: { id: string } }>(await cliWith(home, PASSWORD_A, ['--json', 'register', '--name', 'Gone']));
  t.equal((await cliWith(home, PASSWORD_A, ['delete', record.id])).code, 0);
  const before = snapshot(home);
  for (const args of [['delete', record.id.slice(0, 8)], ['edit', record.id, '--age', '4'], ['resolve', record.id]]) {
    const r = await cliWith(home, PASSWORD_A, args);
    t.equal(r.code, 1, args[0] ?? '');
    t.match(r.stderr, new RegExp(`error VAULT_RECORD_NOT_FOUND: Record ${record.id} is deleted, so it cannot be .*"fieldvault-field show ${record.id.slice(0, 8)}" still shows it`));
    t.notMatch(r.stderr, /There is no record with this id/);
  }
  t.same(snapshot(home), before, 'nothing changed');
  t.match((await cliWith(home, PASSWORD_A, ['show', record.id])).stdout, /deleted\s+yes/);
});

t.test('resolve on a record without an open conflict says so and points at "show"', async (t) => {
  const home = await phoneWithAmina(t);
  const { record } = json<{ record: { id: string } }>(await cliWith(home, PASSWORD_A, ['--json', 'register', '--name', 'Calm', '--age', '5']));
  const r = await cliWith(home, PASSWORD_A, ['resolve', record.id, 'age']);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`error RECORD_CONFLICT_NOT_FOUND: Record ${record.id.slice(0, 8)} has no open conflict on age: there is nothing to resolve\\. "fieldvault-field show ${record.id.slice(0, 8)}" lists`));
  t.notMatch(r.stderr, /conflict id|conflicts list/);
});

t.test('wordings a newcomer tripped on (field audit s15, F5 and F10)', async (t) => {
  const home = await phoneWithAmina(t);
  const { record } = json<{ record: { id: string } }>(await cliWith(home, PASSWORD_A, ['--json', 'register', '--name', 'Calm', '--age', '5']));
  // "edit" with nothing to change names the options that exist (there is no --field option).
  const nothing = await cli(home, ['edit', record.id.slice(0, 8)]);
  t.equal(nothing.code, 2);
  t.match(nothing.stderr, /FIELD_USAGE: .*nothing to change: give a field option such as --location "Camp 4", or --unset FIELD to clear one/);
  t.notMatch(nothing.stderr, /--field /);
  // A too short id says how long an id must be.
  const short = await cliWith(home, PASSWORD_A, ['edit', record.id.slice(0, 2), '--age', '6']);
  t.equal(short.code, 2);
  t.match(short.stderr, new RegExp(`"${record.id.slice(0, 2)}" is not a record id: give it as "list" shows it \\(8 characters\\), or at least its first 4`));
  // The help of "servers add" says which names it takes, as its refusal does; "delete" says whose records.
  const help = (await cli(home, ['help', 'servers', 'add'])).stdout.replaceAll(/\s+/g, ' ');
  t.match(help, /lowercase letters, digits, "\.", "_" or "-", starting with a letter or digit, up to 32 characters/);
  const refused = await cli(home, ['servers', 'add', 'A', 'https://127.0.0.1:9', '--offline', '--server-id', 'x', '--pin', 'AA'.repeat(32)]);
  t.equal(refused.code, 2);
  t.match(refused.stderr, /server name: lowercase letters, digits, "\.", "_" or "-", starting with a letter or digit, up to 32 characters/);
  t.match((await cli(home, ['help', 'delete'])).stdout.replaceAll(/\s+/g, ' '), /Field workers delete only the records they created; supervisors any/);
});

t.test('--fields-file: field values from a file, kept off the command line', async (t) => {
  const home = await phoneWithAmina(t);
  const file = join(home, 'child.json');
  writeFileSync(file, JSON.stringify({ name: 'Lina Odongo', age: 9, location: 'Camp 3', protection_concerns: ['separated'], flagged: true }), { mode: 0o600 });
  const made = json<{ record: { id: string; fields: Record<string, unknown> } }>(await cliWith(home, PASSWORD_A, ['--json', 'register', '--fields-file', file, '--sex', 'female']));
  t.same(made.record.fields, { name: 'Lina Odongo', age: 9, location: 'Camp 3', protection_concerns: ['separated'], flagged: true, sex: 'female' });
  writeFileSync(file, JSON.stringify({ location: 'Camp 4', 'protection-concerns': null }));
  const edited = json<{ record: { fields: Record<string, unknown> }; changed: string[] }>(await cliWith(home, PASSWORD_A, ['--json', 'edit', made.record.id, '--fields-file', file]));
  t.same(edited.record.fields, { name: 'Lina Odongo', age: 9, location: 'Camp 4', flagged: true, sex: 'female', protection_concerns: null }, 'null clears a field, as --unset');
  t.same(edited.changed.sort(), ['location', 'protection_concerns']);
  // Mistakes are usage errors naming the file, before any password.
  for (const [content, pattern] of [
    ['not json', /--fields-file .*child\.json: not JSON/],
    ['[1]', /not a JSON object of field values/],
    ['{"nmae": "x"}', /no field "nmae"/],
    ['{"age": "old"}', /--age: a number/],
    ['{"location": "Camp 5"}', /location is given twice/],
  ] as const) {
    writeFileSync(file, content);
    const r = await cli(home, ['edit', made.record.id, '--fields-file', file, '--location', 'Camp 6']);
    t.equal(r.code, 2, content);
    t.match(r.stderr, pattern, content);
  }
});

t.test('a lost config.json takes the IMEI back from the keyring instead of inventing one', async (t) => {
  const home = await phoneWithAmina(t);
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  rmSync(join(home, 'config.json'));
  const status = json<{ imei: string; users: { username: string }[] }>(await cli(home, ['--json', 'status', '--locked']));
  t.equal(status.imei, imei, 'the old IMEI, read back from the keyring');
  const list = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'list']);
  t.equal(list.code, 0, `amina still opens her records: ${list.stderr}`);

  rmSync(join(home, 'config.json'));
  const wrong = await cli(home, ['init', '--imei', '490154203237518']);
  t.equal(wrong.code, 2, 'init --imei with another IMEI than the data is refused');
  t.match(wrong.stderr, new RegExp(`belongs to IMEI ${imei}`));
  t.equal((await cli(home, ['init', '--imei', imei])).code, 0, 'init --imei with the old one is accepted');
  t.equal(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')).imei, imei);
});

t.test('a lost config.json with an unreadable keyring is refused with "init --imei", never a new IMEI', async (t) => {
  const home = await phoneWithAmina(t);
  const { imei } = json<{ imei: string }>(await cli(home, ['--json', 'status', '--locked']));
  const keyring = join(home, 'sdk', 'keyring.json');
  const saved = readFileSync(keyring);
  rmSync(join(home, 'config.json'));
  writeFileSync(keyring, saved.subarray(0, 40)); // cut short: its IMEI cannot be trusted
  const before = snapshot(home);
  const r = await cli(home, ['status', '--locked']);
  t.equal(r.code, 1);
  t.match(r.stderr, /error FIELD_IMEI_UNKNOWN: .*config\.json is missing, but this phone already holds data .*"fieldvault-field init --imei <the old IMEI>"/);
  t.notMatch(r.stderr, /VAULT_KEYRING_CORRUPT|belongs to another device/);
  t.same(snapshot(home), before, 'no config.json with a made-up IMEI was written');
  writeFileSync(keyring, saved);
  t.equal((await cli(home, ['init', '--imei', imei])).code, 0);
  t.equal((await cliWith(home, PASSWORD_A, ['--user', 'amina', 'list'])).code, 0, 'the phone works again with its old IMEI');
});

t.test('a config.json with another IMEI than the keyring is named as such, not as a corrupt keyring', async (t) => {
  const home = await phoneWithAmina(t);
  const file = join(home, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as { imei: string };
  writeFileSync(file, JSON.stringify({ ...config, imei: '490154203237518' }));
  const r = await cliWith(home, PASSWORD_A, ['list']);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`error FIELD_HOME_CORRUPT: .*gives this phone the IMEI 490154203237518, but its data .* belongs to IMEI ${config.imei}`));
  // Either file may be the one replaced (s16 input audit F8: a keyring copied from another phone
  // was blamed on config.json, and the advice made the phone take the other phone's IMEI).
  t.match(r.stderr, new RegExp(`If config\\.json was edited, put "imei": "${config.imei}" back in it; if the keyring came from another phone, put this phone's own sdk/keyring\\.json back`));
});

t.test('"help GROUP COMMAND" shows that command\'s help', async (t) => {
  const home = t.testdir();
  for (const [args, usage] of [
    [['help', 'servers', 'add'], 'Usage: fieldvault-field servers add'],
    [['help', 'photo', 'save'], 'Usage: fieldvault-field photo save'],
    [['servers', 'help', 'add'], 'Usage: fieldvault-field servers add'],
    [['help', 'register'], 'Usage: fieldvault-field register'],
  ] as const) {
    const r = await cli(home, [...args]);
    t.equal(r.code, 0, args.join(' '));
    t.ok(r.stdout.startsWith(usage), `${args.join(' ')} prints ${usage}`);
  }
  const unknown = await cli(home, ['help', 'photo', 'frame']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /FIELD_USAGE: .*help: no command "photo frame" \(commands of photo: add, save, remove\)/);
});

t.test('a reader that goes away (| head) ends the command quietly', async (t) => {
  const home = t.testdir();
  // The pipe is closed before the CLI writes: its writes fail with EPIPE.
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--home', home, 'help', 'servers', 'add'], { env: { PATH: process.env['PATH'] ?? '', HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  t.equal(result.stderr, '', 'no stack trace');
  t.equal(result.code, 0);
});

t.test('Ctrl-C clears the progress bar before its note, and the bar stays quiet afterwards', async (t) => {
  // A terminal as the progress bar sees it: a stream that says it is a TTY and records what is written.
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
  let written = '';
  stream.on('data', (d: Buffer) => (written += d.toString()));
  const controller = new AbortController();
  const env: Environment = { home: undefined, defaultHome: t.testdir(), stdinIsTty: false, stderrIsTty: true };
  const ctx = makeContext({
    env,
    home: new Home(t.testdir()),
    globals: {},
    out: createOutput(false, new PassThrough(), new PassThrough()),
    passwords: createPasswordSource({ fromStdin: true, stdinIsTty: false, stdin: new PassThrough() }),
    cancellation: () => controller.signal,
    interruptNote: 'stopping at a safe point\n',
    stderr: stream,
  });
  const signal = ctx.cancellation();
  const progress = ctx.progress();
  progress.update({ label: 'push', done: 3, total: 10 });
  t.match(written, /push/, 'the bar is drawn');
  controller.abort();
  t.ok(signal.aborted);
  const noteAt = written.lastIndexOf('stopping at a safe point');
  t.ok(noteAt > 0, 'the note is written');
  // cli-progress clears its line with "ESC [2K" (after moving to column 0) when it stops.
  t.ok(written.lastIndexOf('\u001b[2K') < noteAt && written.lastIndexOf('\u001b[2K') >= 0, 'the bar line is cleared before the note');
  progress.update({ label: 'push', done: 9, total: 10 });
  progress.stop();
  t.equal(written.slice(noteAt), 'stopping at a safe point\n', 'nothing is drawn after the note, so the next message starts on a clean line');
});
