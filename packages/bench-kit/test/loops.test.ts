import t from 'tap';
import { runClosedLoop, runOpenLoop, throughputPerSecond } from '../src/index.js';

t.test('a closed loop stops at its operation budget and counts errors apart', async (t) => {
  let calls = 0;
  const r = await runClosedLoop({
    concurrency: 3,
    durationMs: 60_000,
    maxOperations: 10,
    op: async () => {
      calls += 1;
      if (calls % 5 === 0) throw new Error('boom');
    },
  });
  t.equal(calls, 10);
  t.equal(r.completed, 8);
  t.equal(r.errors, 2);
  t.same(r.errorSamples, ['boom']);
  t.equal(r.latenciesMs.length, 8);
});

t.test('a closed loop gives each worker its own index', async (t) => {
  const seen = new Set<number>();
  await runClosedLoop({ concurrency: 4, durationMs: 60_000, maxOperations: 8, op: async (w) => void seen.add(w) });
  t.same([...seen].sort(), [0, 1, 2, 3]);
});

t.test('an open loop starts one operation per tick and skips ticks beyond its in-flight cap', async (t) => {
  const r = await runOpenLoop({ intervalMs: 5, durationMs: 50, maxInFlight: 100, op: async () => undefined });
  t.equal(r.completed + r.errors, 10);
  t.equal(r.errors, 0);
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const capped = runOpenLoop({ intervalMs: 5, durationMs: 50, maxInFlight: 2, op: () => held.then(() => undefined) });
  setTimeout(() => release(), 500); // well after the last tick (50 ms)
  const c = await capped;
  t.equal(c.completed, 2);
  t.equal(c.errors, 8);
});

t.test('closed-loop throughput counts only operations that ended within the duration', async (t) => {
  let n = 0;
  const r = await runClosedLoop({
    concurrency: 1,
    durationMs: 500,
    maxOperations: 3,
    // the third operation starts in time but ends well after the 500 ms
    op: () => new Promise((resolve) => setTimeout(resolve, ++n === 3 ? 1000 : 0)),
  });
  t.equal(r.completed, 3);
  t.equal(r.completedInTime, 2);
  t.equal(throughputPerSecond(r), 4);
});
