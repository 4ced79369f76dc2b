// The built CLI as a real process on a temporary home, offline (issue 5, apps/field): the phone's
// IMEI, sign-up, records with photos, list/show/search, edits with history, and --json output.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PASSWORD_A, cli, cliWith, filesUnder, json, png } from './helpers.js';

interface Summary {
  id: string;
  fields: Record<string, unknown>;
  photos: number;
  needsReview: boolean;
  createdBy: string;
}

/** Luhn check of a digit string (including its check digit). */
function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

t.test('first use creates the home with a valid IMEI that is kept', async (t) => {
  const home = t.testdir();
  const r = await cli(home, ['--json', 'init']);
  t.equal(r.code, 0, r.stderr);
  const first = json<{ imei: string; created: boolean }>(r);
  t.match(first.imei, /^\d{15}$/);
  t.ok(luhnValid(first.imei), 'the IMEI carries a valid Luhn check digit');
  t.equal(first.created, true);
  const again = json<{ imei: string; created: boolean }>(await cli(home, ['--json', 'init']));
  t.same(again, { home, imei: first.imei, created: false }, 'the same IMEI on every later use');
  const config = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as Record<string, unknown>;
  t.match(config, { format: 'fieldvault-field-config', v: 1, imei: first.imei, currentUser: null, servers: {} });
});

t.test('init takes a chosen IMEI and refuses one without a valid check digit', async (t) => {
  const home = t.testdir();
  const bad = await cli(home, ['init', '--imei', '490154203237519']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /error FIELD_USAGE: .*Luhn/);
  t.same(filesUnder(home), [], 'nothing was created');
  const ok = json<{ imei: string }>(await cli(home, ['--json', 'init', '--imei', '490154203237518']));
  t.equal(ok.imei, '490154203237518');
  const other = await cli(home, ['init', '--imei', '356938035643809']);
  t.equal(other.code, 2, 'a home is one phone: its IMEI does not change');
});

t.test('a field worker signs up, registers a child with a photo, and finds it with list, show and search', async (t) => {
  const home = t.testdir({ 'child.png': png('GPS 12.3456,45.6789') });
  const photo = join(home, 'child.png');

  const signup = await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  t.equal(signup.code, 0, signup.stderr);
  t.match(signup.stdout, /signed up amina/);

  const reg = await cliWith(home, PASSWORD_A, [
    '--json', 'register', '--name', 'Amina Yusuf', '--age', '7', '--sex', 'female', '--location', 'Camp 3',
    '--caregiver', 'Aunt Halima', '--notes', 'found near the water point', '--protection-concerns', 'separated,unaccompanied', '--flagged', '--photo', photo,
  ]);
  t.equal(reg.code, 0, reg.stderr);
  const made = json<{ record: Summary; photos: { photoId: string; type: string }[]; database: string }>(reg);
  t.equal(made.database, 'unverified', 'before any online login the record goes to her unverified database');
  t.same(made.record.fields, {
    name: 'Amina Yusuf', age: 7, sex: 'female', location: 'Camp 3', caregiver: 'Aunt Halima',
    notes: 'found near the water point', protection_concerns: ['separated', 'unaccompanied'], flagged: true,
  });
  t.equal(made.photos.length, 1);
  t.equal(made.photos[0]?.type, 'image/png');
  const id = made.record.id;

  await cliWith(home, PASSWORD_A, ['register', '--name', 'Bilal Okafor', '--age', '12', '--sex', 'male', '--location', 'Market road']);

  // The remembered user: no --user needed after sign-up.
  const list = await cliWith(home, PASSWORD_A, ['list']);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /^ID\s+NAME\s+AGE\s+SEX\s+LOCATION\s+PHOTOS/m, 'a table with a header');
  t.match(list.stdout, new RegExp(`${id.slice(0, 8)}\\s+Amina Yusuf\\s+7\\s+female\\s+Camp 3\\s+1\\s+amina`));
  t.match(list.stdout, /Bilal Okafor/);

  const listed = json<{ records: Summary[] }>(await cliWith(home, PASSWORD_A, ['--json', 'list']));
  t.same(listed.records.map((r) => r.fields['name']).sort(), ['Amina Yusuf', 'Bilal Okafor']);

  const show = await cliWith(home, PASSWORD_A, ['show', id.slice(0, 8)]);
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, new RegExp(`id\\s+${id}`));
  t.match(show.stdout, /Protection concerns\s+separated, unaccompanied/);
  t.match(show.stdout, /photos\s+[0-9a-f]{8} image\/png/);
  t.match(show.stdout, /review\s+no open conflicts/);
  t.match(show.stdout, /History:/);

  const byName = json<{ records: Summary[] }>(await cliWith(home, PASSWORD_A, ['--json', 'search', '--name', 'amina']));
  t.same(byName.records.map((r) => r.id), [id], 'search by part of the name, any case');
  const byAge = json<{ records: Summary[] }>(await cliWith(home, PASSWORD_A, ['--json', 'search', '--age-min', '10', '--age-max', '15']));
  t.same(byAge.records.map((r) => r.fields['name']), ['Bilal Okafor']);
  const byFlag = json<{ records: Summary[] }>(await cliWith(home, PASSWORD_A, ['--json', 'search', '--flag', 'flagged', '--location', 'camp']));
  t.same(byFlag.records.map((r) => r.id), [id]);
  const none = await cliWith(home, PASSWORD_A, ['search', '--name', 'nobody']);
  t.equal(none.code, 0);
  t.match(none.stdout, /No records\./);

  // The photo comes back decrypted, verified, and without the metadata it was taken with.
  const out = join(home, 'saved.png');
  const saved = await cliWith(home, PASSWORD_A, ['photo', 'save', id.slice(0, 8), made.photos[0]?.photoId.slice(0, 8) ?? '', '--out', out]);
  t.equal(saved.code, 0, saved.stderr);
  const bytes = readFileSync(out);
  t.ok(bytes.subarray(0, 8).equals(png().subarray(0, 8)), 'a PNG');
  t.notOk(bytes.includes(Buffer.from('GPS 12.3456')), 'the location text chunk was stripped');
  t.same(filesUnder(join(home, 'sdk')).filter((f) => readFileSync(join(home, 'sdk', f)).includes(Buffer.from('Amina Yusuf'))), [], 'no file on the phone holds the name in clear');
});

t.test('edits keep the history (old → new) and show lists it', async (t) => {
  const home = t.testdir();
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  const { record } = json<{ record: Summary }>(await cliWith(home, PASSWORD_A, ['--json', 'register', '--name', 'Chidi', '--location', 'Camp 3']));
  const edit = await cliWith(home, PASSWORD_A, ['edit', record.id, '--location', 'Camp 4', '--reunited', '--age', '8']);
  t.equal(edit.code, 0, edit.stderr);
  t.match(edit.stdout, /updated .*location, age, reunited|updated .*: /);
  const cleared = await cliWith(home, PASSWORD_A, ['edit', record.id.slice(0, 6), '--unset', 'location']);
  t.equal(cleared.code, 0, cleared.stderr);

  const shown = json<{ record: Summary; history: { field: string; from?: unknown; to?: unknown; by: string }[]; raw: { history: unknown[] } }>(
    await cliWith(home, PASSWORD_A, ['--json', 'show', record.id]),
  );
  t.same(shown.record.fields, { name: 'Chidi', location: null, age: 8, reunited: true });
  t.same(
    shown.history.filter((h) => h.field === 'location').map((h) => [h.from ?? null, h.to]),
    [[null, 'Camp 3'], ['Camp 3', 'Camp 4'], ['Camp 4', null]],
    'every value of the field, each with the one it replaced',
  );
  t.ok(shown.history.every((h) => h.by === 'amina'));
  const human = await cliWith(home, PASSWORD_A, ['show', record.id]);
  t.match(human.stdout, /Location\s+Camp 3 → Camp 4/);

  const nothing = await cliWith(home, PASSWORD_A, ['edit', record.id]);
  t.equal(nothing.code, 2, 'an edit without a field is a usage error');
  t.match(nothing.stderr, /FIELD_USAGE/);
});

t.test('a deleted record leaves the list but keeps its history', async (t) => {
  const home = t.testdir();
  await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup']);
  const { record } = json<{ record: Summary }>(await cliWith(home, PASSWORD_A, ['--json', 'register', '--name', 'Registered twice']));
  const del = await cliWith(home, PASSWORD_A, ['delete', record.id.slice(0, 8)]);
  t.equal(del.code, 0, del.stderr);
  t.match(del.stdout, `deleted ${record.id}`);
  t.same(json<{ records: Summary[] }>(await cliWith(home, PASSWORD_A, ['--json', 'list'])).records, []);
  const all = json<{ records: (Summary & { deleted: boolean })[] }>(await cliWith(home, PASSWORD_A, ['--json', 'list', '--deleted']));
  t.same(all.records.map((r) => [r.id, r.deleted]), [[record.id, true]]);
  const shown = await cliWith(home, PASSWORD_A, ['show', record.id]);
  t.match(shown.stdout, /deleted\s+yes/);
  const again = await cliWith(home, PASSWORD_A, ['delete', record.id]);
  t.equal(again.code, 1);
  t.match(again.stderr, /VAULT_RECORD_NOT_FOUND/);
});
