// The built CLI as a real process on a temporary home, offline (issue 5, apps/field): what it
// refuses (wrong password, no user, bad arguments, unusable photos, a damaged config, a busy
// phone), with the catalogued code, the exit status, and nothing changed on disk.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PASSWORD_A, PASSWORD_B, cli, cliWith, filesUnder, json, png, snapshot } from './helpers.js';

interface Summary {
  id: string;
  fields: Record<string, unknown>;
  photos: number;
  needsReview: boolean;
  createdBy: string;
}

t.test('a wrong password is refused with its code, a non-zero exit, and nothing changes', async (t) => {
  const home = t.testdir({ 'child.png': png() });
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  await cliWith(home, PASSWORD_A, ['register', '--name', 'Amina Yusuf']);
  const before = snapshot(home);
  for (const args of [['list'], ['register', '--name', 'Intruder', '--photo', join(home, 'child.png')], ['search', '--name', 'a'], ['login', '--offline']]) {
    const r = await cliWith(home, 'not her password at all, sorry', args);
    t.equal(r.code, 1, `${args[0] ?? ''}: exit 1`);
    t.match(r.stderr, /^fieldvault-field: error VAULT_WRONG_PASSWORD: The password is wrong/, `${args[0] ?? ''}: the code and what to do`);
    t.equal(r.stdout, '', 'no output on stdout');
    t.notOk(r.stderr.includes('not her password'), 'the password is never printed');
  }
  const asJson = await cliWith(home, 'not her password at all, sorry', ['--json', 'list']);
  t.match(JSON.parse(asJson.stderr), { error: { code: 'VAULT_WRONG_PASSWORD', message: /^The password is wrong/ } }, 'with --json the error is JSON too');
  t.same(snapshot(home), before, 'every file on the phone is unchanged');
  // The phone lists its users without a password (status --locked), so an unknown name is said plainly.
  const unknown = await cliWith(home, PASSWORD_A, ['--user', 'nobody', 'list']);
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /error FIELD_USER_UNKNOWN: There is no user "nobody" on this phone \(users here: amina\)\..*login --user nobody SERVER.*signup --user nobody/);
});

t.test('a second user on the same phone sees only their own records while unverified', async (t) => {
  const home = t.testdir();
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  await cliWith(home, PASSWORD_A, ['register', '--name', 'Amina record']);
  const b = await cliWith(home, PASSWORD_B, ['--user', 'bilal', 'signup']);
  t.equal(b.code, 0, b.stderr);
  t.equal(json<{ currentUser: string }>(await cli(home, ['--json', 'status', '--locked'])).currentUser, 'bilal', 'sign-up remembers the new user');
  await cliWith(home, PASSWORD_B, ['register', '--name', 'Bilal record']);
  const bilal = json<{ records: Summary[] }>(await cliWith(home, PASSWORD_B, ['--json', 'list']));
  t.same(bilal.records.map((r) => r.fields['name']), ['Bilal record']);
  const amina = json<{ records: Summary[] }>(await cliWith(home, PASSWORD_A, ['--user', 'amina', '--json', 'list']));
  t.same(amina.records.map((r) => r.fields['name']), ['Amina record']);
  const status = json<{ databases: { kind: string; users: string[] }[]; users: { username: string; kinds: string[] }[] }>(
    await cli(home, ['--json', 'status', '--locked']),
  );
  t.same(status.databases, [
    { kind: 'unverified', users: ['amina'] },
    { kind: 'unverified', users: ['bilal'] },
  ]);
  const dup = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  t.equal(dup.code, 1);
  t.match(dup.stderr, /VAULT_USER_EXISTS/);
});

t.test('logout forgets the remembered user; commands then need --user', async (t) => {
  const home = t.testdir();
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  const out = await cli(home, ['logout']);
  t.equal(out.code, 0);
  t.match(out.stdout, /forgot amina/);
  t.equal(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')).currentUser, null);
  const list = await cliWith(home, PASSWORD_A, ['list']);
  t.equal(list.code, 1);
  t.match(list.stderr, /error FIELD_NO_USER: .*--user NAME/);
  const again = await cli(home, ['logout']);
  t.match(again.stdout, /no user was remembered/);
  const withUser = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'list']);
  t.equal(withUser.code, 0, withUser.stderr);
  const offline = await cliWith(home, PASSWORD_A, ['--user', 'amina', '--json', 'login', '--offline']);
  t.match(json(offline), { user: 'amina', mode: 'offline', database: 'unverified', current: true });
  t.equal(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')).currentUser, 'amina', 'login --offline remembers the user');
});

t.test('passwords: none on stdin, a weak one at sign-up, none in any file', async (t) => {
  const home = t.testdir();
  const noStdin = await cli(home, ['--user', 'amina', 'signup']);
  t.equal(noStdin.code, 1);
  t.match(noStdin.stderr, /FIELD_PASSWORD_REQUIRED/, 'no terminal and no --password-stdin');
  const empty = await cli(home, ['--user', 'amina', '--password-stdin', 'signup'], '');
  t.match(empty.stderr, /FIELD_PASSWORD_REQUIRED/);
  const short = await cliWith(home, 'short', ['--user', 'amina', 'signup']);
  t.equal(short.code, 1);
  t.match(short.stderr, /PASSWORD_TOO_SHORT/);
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  t.same(filesUnder(home).filter((f) => readFileSync(join(home, f)).includes(Buffer.from(PASSWORD_A))), [], 'the password is in no file');
});

t.test('photos that cannot be stored are refused before the record is written', async (t) => {
  const home = t.testdir({ 'notes.txt': 'not an image', 'child.png': png() });
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  const before = snapshot(join(home, 'sdk'));
  const text = await cliWith(home, PASSWORD_A, ['register', '--name', 'X', '--photo', join(home, 'child.png'), '--photo', join(home, 'notes.txt')]);
  t.equal(text.code, 1);
  t.match(text.stderr, /error PHOTO_TYPE_UNSUPPORTED: .*notes\.txt/);
  const missing = await cliWith(home, PASSWORD_A, ['register', '--name', 'X', '--photo', join(home, 'missing.jpg')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /error FIELD_FILE_UNREADABLE: .*missing\.jpg: ENOENT/);
  t.same(snapshot(join(home, 'sdk')), before, 'no record, no photo file');
  t.same(json<{ records: unknown[] }>(await cliWith(home, PASSWORD_A, ['--json', 'list'])).records, []);
});

t.test('command-line mistakes exit 2 with FIELD_USAGE; form violations carry the SDK code', async (t) => {
  const home = t.testdir();
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  for (const [args, pattern] of [
    [['bogus'], /unknown command 'bogus'/],
    [['register'], /--name is required/],
    [['register', '--name', 'X', '--age', 'seven'], /--age: a number/],
    [['register', '--name', 'X', '--sex', 'dog'], /Allowed choices are female, male, other, unknown/],
    [['register', '--name', 'X', '--flagged', 'maybe'], /--flagged: yes or no/],
    [['search', '--flag', 'lost'], /--flag: one of flagged/],
    [['show', 'zz'], /not a record id/],
  ] as const) {
    const r = await cliWith(home, PASSWORD_A, [...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, /^fieldvault-field: error FIELD_USAGE: /);
    t.match(r.stderr, pattern);
  }
  // Values the form refuses: a usage error naming the option and what the form allows, before any password.
  for (const [args, pattern] of [
    [['--age', '300'], /--age: must be at most 120; allowed: a number from 0 to 120/],
    [['--age=-3'], /--age: must be at least 0; allowed: a number from 0 to 120/],
    [['--protection-concerns', 'lost'], /--protection-concerns: every item must be one of the options; allowed: items from: .*separated/],
  ] as const) {
    const r = await cli(home, ['register', '--name', 'X', ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, /^fieldvault-field: error FIELD_USAGE: /);
    t.match(r.stderr, pattern);
    t.notMatch(r.stderr, /docs\/protocol\.md|FIELD_PASSWORD_REQUIRED/, 'no developer words, no password asked');
  }
  const notFound = await cliWith(home, PASSWORD_A, ['show', '00000000-0000-4000-8000-000000000000']);
  t.equal(notFound.code, 1);
  t.match(notFound.stderr, /error VAULT_RECORD_NOT_FOUND/);
});

t.test('a broken config.json is reported, never replaced', async (t) => {
  const home = t.testdir();
  await cli(home, ['init']);
  writeFileSync(join(home, 'config.json'), '{"format":"fieldvault-field-config","v":1,"imei":"12');
  const r = await cli(home, ['status', '--locked']);
  t.equal(r.code, 1);
  t.match(r.stderr, /error FIELD_HOME_CORRUPT/);
  t.equal(readFileSync(join(home, 'config.json'), 'utf8'), '{"format":"fieldvault-field-config","v":1,"imei":"12');
});

t.test('one command at a time uses a phone; a lock left by a dead process is taken over', async (t) => {
  const home = t.testdir();
  await cli(home, ['init']);
  writeFileSync(join(home, 'lock'), `${process.pid}\n`);
  const busy = await cli(home, ['status', '--locked']);
  t.equal(busy.code, 1);
  t.match(busy.stderr, /FIELD_HOME_BUSY/);
  writeFileSync(join(home, 'lock'), '999999999\n');
  const ok = await cli(home, ['status', '--locked']);
  t.equal(ok.code, 0, ok.stderr);
  t.same(filesUnder(home).includes('lock'), false, 'the lock is released at exit');
});
