// `register --photo` stores the record and its photos in one commit (crash audit s16, finding 2):
// the built CLI as a real process on a temporary home, offline.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PASSWORD_A, cliWith, json, png } from './helpers.js';

function photoFiles(home: string): string[] {
  return readdirSync(join(home, 'sdk', '.photos'));
}

t.test('register with two photos prints the id and both photos in one go, and stores exactly those', async (t) => {
  const home = t.testdir({ 'front.png': png('GPS 1.0,2.0'), 'side.png': png('GPS 3.0,4.0 and a longer canary') });
  t.equal((await cliWith(home, PASSWORD_A, ['--user', 'amina', 'signup'])).code, 0);
  const reg = await cliWith(home, PASSWORD_A, ['register', '--name', 'Kofi Mensah', '--age', '5', '--photo', join(home, 'front.png'), '--photo', join(home, 'side.png')]);
  t.equal(reg.code, 0, reg.stderr);
  const lines = reg.stdout.trim().split('\n');
  t.match(lines[0], /^registered [0-9a-f-]{36} \(unverified database\)$/);
  t.match(lines[1], /^ {2}photo [0-9a-f]{8} image\/png .* from .*front\.png$/);
  t.match(lines[2], /^ {2}photo [0-9a-f]{8} image\/png .* from .*side\.png$/);
  t.equal(lines.length, 3);
  const id = (lines[0] as string).split(' ')[1] as string;
  t.equal(photoFiles(home).length, 2, 'two photo files, no other');
  const shown = json<{ record: { photos: number } }>(await cliWith(home, PASSWORD_A, ['--json', 'show', id]));
  t.equal(shown.record.photos, 2, 'the record holds both photos');

  const again = json<{ record: { id: string; photos: number }; photos: Array<{ photoId: string; file: string }> }>(
    await cliWith(home, PASSWORD_A, ['--json', 'register', '--name', 'Esi', '--photo', join(home, 'side.png')]),
  );
  t.equal(again.record.photos, 1);
  t.same(again.photos.map((p) => p.file), [join(home, 'side.png')]);
  t.equal(photoFiles(home).length, 3);
});
