import t from 'tap';
import { PullReadAhead } from '../src/sync/read-ahead.js';

// The read-ahead table on its own (sync/read-ahead.ts); the pull route's use of it is in sync-pull.test.ts.
function table(maxHeld: number) {
  let now = 1_000;
  const reads: string[] = [];
  const ra = new PullReadAhead<string>({ maxHeld, ttlMs: 30_000, now: () => now });
  const read = (what: string, fail = false) => (): Promise<string> => {
    reads.push(what);
    return fail ? Promise.reject(new Error('store down')) : Promise.resolve(what);
  };
  return { ra, reads, read, advance: (ms: number) => (now += ms) };
}

t.test('a page is taken once, by its session, at its position and limit', async (t) => {
  const { ra, read } = table(4);
  const key = PullReadAhead.key(42, 501);
  t.ok(ra.start('session-a', key, read('page 2')));
  t.equal(ra.take('session-b', key), undefined, 'another session gets nothing');
  t.equal(await ra.take('session-a', key), 'page 2');
  t.equal(ra.take('session-a', key), undefined, 'taken once');
  t.ok(ra.start('session-a', key, read('page 2 again')));
  t.equal(ra.take('session-a', PullReadAhead.key(42, 11)), undefined, 'another limit: not this page');
  t.equal(ra.size, 0, 'and the mismatched page is dropped, not kept');
  t.not(PullReadAhead.key('42', 501), PullReadAhead.key(42, 501), 'a string seq and a number seq are different positions');
});

t.test('one page per session; a full table starts no read; expired pages are dropped', async (t) => {
  const { ra, reads, read, advance } = table(2);
  t.ok(ra.start('a', PullReadAhead.key(1, 11), read('a1')));
  t.ok(ra.start('a', PullReadAhead.key(2, 11), read('a2')), 'replaces a1');
  t.equal(ra.size, 1);
  t.ok(ra.start('b', PullReadAhead.key(1, 11), read('b1')));
  t.notOk(ra.start('c', PullReadAhead.key(1, 11), read('c1')), 'full: no read started');
  t.same(reads, ['a1', 'a2', 'b1']);
  advance(30_000);
  t.equal(ra.take('a', PullReadAhead.key(2, 11)), undefined, 'expired');
  t.ok(ra.start('c', PullReadAhead.key(1, 11), read('c1')), 'expired pages make room');
  t.equal(ra.size, 1);
});

t.test('a failed read is held as a rejection for its request to fall back on, never an unhandled one', async (t) => {
  const { ra, read } = table(2);
  t.ok(ra.start('a', PullReadAhead.key(1, 11), read('a1', true)));
  await new Promise((resolve) => setImmediate(resolve));
  const page = ra.take('a', PullReadAhead.key(1, 11));
  t.ok(page);
  t.equal(await (page as Promise<string>).catch(() => 'read again'), 'read again');
});

t.test('maxHeld 0 turns read-ahead off', async (t) => {
  const { ra, reads, read } = table(0);
  t.notOk(ra.start('a', PullReadAhead.key(1, 11), read('a1')));
  t.same(reads, []);
});
