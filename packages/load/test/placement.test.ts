// Where the simulated phones run: the pullers of phase 2 must be spread over the worker threads,
// or phase 2 measures one thread of the load generator instead of the server.
import t from 'tap';
import { placePhones } from '../src/index.js';

t.test('5 pullers of 20 phones on 2 threads are split 3 and 2, every phone placed once', async (t) => {
  const { pullers, threads } = placePhones(20, 5, 2);
  t.same([...pullers].sort((a, b) => a - b), [0, 4, 8, 12, 16]);
  t.equal(threads.length, 2);
  t.same(threads.map((th) => th.filter((i) => pullers.has(i)).length), [3, 2]);
  t.same(threads.flat().sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  t.same(threads.map((th) => th.length), [10, 10], 'the phones stay balanced');
});

t.test('a thread that would hold no phone is not planned', async (t) => {
  const { threads } = placePhones(4, 2, 3);
  t.ok(threads.every((th) => th.length > 0));
  t.same(threads.flat().sort((a, b) => a - b), [0, 1, 2, 3]);
});

t.test('no pullers: phones round-robin by index', async (t) => {
  const { pullers, threads } = placePhones(5, 0, 2);
  t.equal(pullers.size, 0);
  t.same(threads, [[0, 2, 4], [1, 3]]);
});
