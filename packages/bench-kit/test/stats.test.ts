import t from 'tap';
import { percentile, summarize } from '../src/index.js';

t.test('percentile uses nearest rank, so it is always a measured sample', async (t) => {
  const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  t.equal(percentile(samples, 50), 50);
  t.equal(percentile(samples, 99), 99);
  t.equal(percentile(samples, 100), 100);
  t.equal(percentile([7, 3, 5], 50), 5);
  t.equal(percentile([4], 99), 4);
});

t.test('p99 of 500 samples is the fifth worst', async (t) => {
  const samples = Array.from({ length: 500 }, (_, i) => i + 1);
  t.equal(percentile(samples, 99), 495);
});

t.test('percentile refuses an empty series and a rank outside (0, 100]', async (t) => {
  t.throws(() => percentile([], 50), RangeError);
  t.throws(() => percentile([1], 0), RangeError);
  t.throws(() => percentile([1], 101), RangeError);
});

t.test('summarize reports count, extremes, mean and the three percentiles', async (t) => {
  const s = summarize([5, 1, 4, 2, 3]);
  t.same(s, { count: 5, min: 1, mean: 3, p50: 3, p95: 5, p99: 5, max: 5 });
  t.throws(() => summarize([]), RangeError);
});
