// Pages of results say where they stand (field-worker audit s15, F9 and F4): `list` and local
// `search` say when the table is not every match and how to see the rest (`--json`: total,
// nextOffset), and a server search offers a --cursor only when more results exist. The built CLI
// as a real process, on real SQLCipher homes, against a REAL server process.
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PASSWORD_A, cli, cliWith, json, startFileServer, type CliResult } from './helpers.js';

interface Summary {
  id: string;
  fields: Record<string, unknown>;
}

interface LocalPage {
  records: Summary[];
  total: number;
  offset: number;
  limit: number;
  nextOffset: number | null;
}

function ok(t: Test, r: CliResult, what: string): CliResult {
  t.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r;
}

const { root, server: A } = await startFileServer(t, 'pages');
await A.createUser('amina', PASSWORD_A);
/** Setup steps run before any test: a failure stops the file with the CLI's output. */
function must(r: CliResult): void {
  if (r.code !== 0) throw new Error(`exit ${String(r.code)}: ${r.stderr}`);
}

const phone = join(root, 'phone');
must(await cli(phone, ['servers', 'add', 'office', A.url, '--server-id', A.serverId, '--pin', A.fingerprint]));
must(await cliWith(phone, PASSWORD_A, ['--user', 'amina', 'login']));
// Newest first: Rose, Lina Akello, Lina Odongo.
for (const [name, location] of [['Lina Odongo', 'Camp 3'], ['Lina Akello', 'Camp 3'], ['Rose Akello', 'Market road']] as const) {
  must(await cliWith(phone, PASSWORD_A, ['register', '--name', name, '--location', location]));
}

t.test('list: a page that is not every record says so, and how to see the next', async (t) => {
  const first = ok(t, await cliWith(phone, PASSWORD_A, ['list', '--limit', '2']), 'list --limit 2');
  t.match(first.stdout, /Rose Akello[\s\S]*Lina Akello/);
  t.notMatch(first.stdout, /Lina Odongo/);
  t.notMatch(first.stdout, /showing/, 'stdout stays the table');
  t.match(first.stderr, /^showing 1–2 of 3 records \(newest first\); next page: --offset 2 \(or more per page: --limit up to 1000\)$/m);

  const last = ok(t, await cliWith(phone, PASSWORD_A, ['list', '--limit', '2', '--offset', '2']), 'list --offset 2');
  t.match(last.stdout, /Lina Odongo/);
  t.match(last.stderr, /^showing 3–3 of 3 records \(newest first\): the last page$/m);

  const past = ok(t, await cliWith(phone, PASSWORD_A, ['list', '--offset', '5']), 'list --offset 5');
  t.match(past.stdout, /No records\./);
  t.match(past.stderr, /no records from --offset 5: there are 3 in all/);

  const all = ok(t, await cliWith(phone, PASSWORD_A, ['list']), 'list');
  t.notMatch(all.stderr, /showing|offset/, 'a page holding every record needs no note');

  // --json adds the page's place and keeps the fields scripts read.
  const page = json<LocalPage & { database: string }>(await cliWith(phone, PASSWORD_A, ['--json', 'list', '--limit', '2']));
  t.equal(page.database, 'verified');
  t.equal(page.records.length, 2);
  t.match(page, { total: 3, offset: 0, limit: 2, nextOffset: 2 });
  t.match(json<LocalPage>(await cliWith(phone, PASSWORD_A, ['--json', 'list'])), { total: 3, offset: 0, limit: 100, nextOffset: null });
});

t.test('local search: the same for the matches of a search', async (t) => {
  const r = ok(t, await cliWith(phone, PASSWORD_A, ['search', '--location', 'camp', '--limit', '1']), 'search --limit 1');
  t.match(r.stdout, /Lina Akello/);
  t.match(r.stderr, /^showing 1–1 of 2 records \(newest first\); next page: --offset 1/m);
  const page = json<LocalPage & { where: string }>(await cliWith(phone, PASSWORD_A, ['--json', 'search', '--location', 'camp', '--limit', '1', '--offset', '1']));
  t.same(page.records.map((x) => x.fields['name']), ['Lina Odongo']);
  t.match(page, { where: 'device', total: 2, offset: 1, limit: 1, nextOffset: null });
  const every = ok(t, await cliWith(phone, PASSWORD_A, ['search', '--location', 'camp']), 'search');
  t.equal(every.stderr.replace(/^Password for amina:.*\n?/m, ''), '', 'all matches shown: no note');
});

t.test('server search: a --cursor only when more results exist', async (t) => {
  ok(t, await cliWith(phone, PASSWORD_A, ['sync']), 'sync');

  // One match, one per page: nothing more, so no cursor (it used to offer one that found nothing).
  const one = ok(t, await cliWith(phone, PASSWORD_A, ['search', '--server', 'office', '--name', 'rose', '--limit', '1']), 'one match');
  t.match(one.stdout, /Rose Akello/);
  t.notMatch(one.stdout, /cursor/);
  t.equal(json<{ nextCursor: string | null }>(await cliWith(phone, PASSWORD_A, ['--json', 'search', '--server', 'office', '--name', 'rose', '--limit', '1'])).nextCursor, null);

  // Two matches, one per page: the first page offers the cursor, the second (the last) none.
  const first = json<{ records: Summary[]; nextCursor: string | null }>(
    ok(t, await cliWith(phone, PASSWORD_A, ['--json', 'search', '--server', 'office', '--name', 'lina', '--limit', '1']), 'page 1'),
  );
  t.equal(first.records.length, 1);
  t.type(first.nextCursor, 'string');
  const human = ok(t, await cliWith(phone, PASSWORD_A, ['search', '--server', 'office', '--name', 'lina', '--limit', '1']), 'page 1, for people');
  t.match(human.stdout, /\nmore results: add --cursor \S+\n$/);
  const second = ok(t, await cliWith(phone, PASSWORD_A, ['search', '--server', 'office', '--name', 'lina', '--limit', '1', '--cursor', first.nextCursor ?? '']), 'page 2');
  t.match(second.stdout, /Lina/);
  t.notMatch(second.stdout, /cursor/, 'the last page offers no cursor');
  const names = [first.records[0]?.fields['name'], /Lina (Odongo|Akello)/.exec(second.stdout)?.[0]];
  t.same(new Set(names), new Set(['Lina Odongo', 'Lina Akello']), 'the two pages hold both matches');
});
