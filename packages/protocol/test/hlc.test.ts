import fc from 'fast-check';
import t from 'tap';
import {
  DEFAULT_MAX_SKEW_MS,
  HLC_MAX_COUNTER,
  HLC_MAX_WALL,
  HLC_PATTERN,
  NODE_ID_PATTERN,
  compareHlc,
  createClock,
  formatHlc,
  isHlc,
  parseHlc,
  type Hlc,
} from '../src/index.js';

const T0 = 1_700_000_000_000;

/** A wall clock the test moves by hand (the only fake allowed: time). */
function fakeTime(start = T0) {
  const time = { ms: start, now: () => time.ms };
  return time;
}

const nodeArb = fc.stringMatching(NODE_ID_PATTERN);
const hlcArb: fc.Arbitrary<Hlc> = fc.record({
  wall: fc.integer({ min: 0, max: HLC_MAX_WALL }),
  counter: fc.integer({ min: 0, max: HLC_MAX_COUNTER }),
  node: nodeArb,
});

function tupleCompare(a: Hlc, b: Hlc): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

t.test('the string form is 13-digit wall ms, 4-hex-digit counter and the node id', async (t) => {
  t.equal(formatHlc({ wall: T0, counter: 26, node: 'server-a' }), '1700000000000-001a-server-a');
  t.equal(formatHlc({ wall: 5, counter: 0, node: '356938035643809' }), '0000000000005-0000-356938035643809');
});

t.test('parse and format round-trip for every valid timestamp', async () => {
  fc.assert(
    fc.property(hlcArb, (h) => {
      const s = formatHlc(h);
      const back = parseHlc(s);
      return HLC_PATTERN.test(s) && back.wall === h.wall && back.counter === h.counter && back.node === h.node && formatHlc(back) === s;
    }),
    { numRuns: 300 },
  );
});

t.test('plain string order equals (wall, counter, node) order', async () => {
  fc.assert(
    fc.property(hlcArb, hlcArb, (a, b) => {
      const sa = formatHlc(a);
      const sb = formatHlc(b);
      const byString = sa < sb ? -1 : sa > sb ? 1 : 0;
      return byString === Math.sign(tupleCompare(a, b)) && compareHlc(sa, sb) === byString;
    }),
    { numRuns: 500 },
  );
});

t.test('string order equals tuple order also for nodes that are prefixes of each other', async (t) => {
  const a = formatHlc({ wall: T0, counter: 1, node: 'a' });
  const b = formatHlc({ wall: T0, counter: 1, node: 'a-b' });
  const c = formatHlc({ wall: T0, counter: 1, node: 'a.b' });
  t.ok(a < b && b < c, 'a < a-b < a.b');
  t.equal(compareHlc(a, a), 0);
});

t.test('malformed timestamp strings are rejected as HLC_INVALID', async (t) => {
  const bad: unknown[] = [
    '',
    '1700000000000-0000',
    '1700000000000-0000-',
    '170000000000-0000-node', // 12-digit wall
    '17000000000000-0000-node', // 14-digit wall
    '1700000000000-000g-node',
    '1700000000000-00A0-node', // upper-case hex
    '1700000000000-0000-Node',
    '1700000000000-0000--node',
    '1700000000000-0000-node ',
    `1700000000000-0000-${'a'.repeat(65)}`,
    '1700000000000_0000_node',
    42,
    null,
    undefined,
    { wall: 1 },
  ];
  for (const s of bad) {
    t.notOk(isHlc(s), `isHlc(${JSON.stringify(s)})`);
    t.throws(() => parseHlc(s), { code: 'HLC_INVALID' }, `parseHlc(${JSON.stringify(s)})`);
  }
  t.throws(() => compareHlc('nope', '1700000000000-0000-a'), { code: 'HLC_INVALID' });
});

t.test('formatting out-of-range parts is rejected as HLC_INVALID', async (t) => {
  t.throws(() => formatHlc({ wall: -1, counter: 0, node: 'a' }), { code: 'HLC_INVALID' });
  t.throws(() => formatHlc({ wall: HLC_MAX_WALL + 1, counter: 0, node: 'a' }), { code: 'HLC_INVALID' });
  t.throws(() => formatHlc({ wall: 1.5, counter: 0, node: 'a' }), { code: 'HLC_INVALID' });
  t.throws(() => formatHlc({ wall: 1, counter: HLC_MAX_COUNTER + 1, node: 'a' }), { code: 'HLC_INVALID' });
  t.throws(() => formatHlc({ wall: 1, counter: 0, node: 'A' }), { code: 'HLC_INVALID' });
});

t.test('a clock with an invalid node id or skew is refused', async (t) => {
  t.throws(() => createClock({ node: 'Server A' }), { code: 'INPUT_INVALID' });
  t.throws(() => createClock({ node: 'a', maxSkewMs: -1 }), { code: 'INPUT_INVALID' });
  t.throws(() => createClock({ node: 'a', maxSkewMs: Number.NaN }), { code: 'INPUT_INVALID' });
  t.throws(() => createClock({ node: 'a', last: 'garbage' }), { code: 'HLC_INVALID' });
});

t.test('now() follows the wall clock while it moves forward', async (t) => {
  const time = fakeTime();
  const clock = createClock({ node: 'a', now: time.now });
  t.equal(clock.now(), formatHlc({ wall: T0, counter: 0, node: 'a' }));
  time.ms += 5;
  t.equal(clock.now(), formatHlc({ wall: T0 + 5, counter: 0, node: 'a' }));
});

t.test('now() counts up within one millisecond', async (t) => {
  const time = fakeTime();
  const clock = createClock({ node: 'a', now: time.now });
  const a = clock.now();
  const b = clock.now();
  t.equal(parseHlc(b).wall, T0);
  t.equal(parseHlc(b).counter, 1);
  t.ok(a < b);
});

t.test('now() stays monotonic when the wall clock steps back', async (t) => {
  const time = fakeTime();
  const clock = createClock({ node: 'a', now: time.now });
  const before = clock.now();
  time.ms -= 60_000; // NTP step back by a minute
  const after = [clock.now(), clock.now()];
  t.ok(before < after[0]! && after[0]! < after[1]!, 'strictly increasing');
  t.equal(parseHlc(after[1]!).wall, T0, 'keeps the newest wall time seen');
  time.ms = T0 + 1;
  t.equal(clock.now(), formatHlc({ wall: T0 + 1, counter: 0, node: 'a' }), 'resumes physical time once it catches up');
});

t.test('now() is strictly increasing under any sequence of wall-clock moves', async () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -5_000, max: 5_000 }), { maxLength: 200 }), (moves) => {
      const time = fakeTime();
      const clock = createClock({ node: 'a', now: time.now });
      let prev = clock.now();
      for (const m of moves) {
        time.ms += m;
        const next = clock.now();
        if (!(prev < next)) return false;
        prev = next;
      }
      return true;
    }),
    { numRuns: 200 },
  );
});

t.test('now() throws HLC_COUNTER_OVERFLOW after 65 536 events in one millisecond and changes nothing', async (t) => {
  const time = fakeTime();
  const clock = createClock({ node: 'a', now: time.now });
  let last = '';
  for (let i = 0; i <= HLC_MAX_COUNTER; i++) last = clock.now();
  t.equal(parseHlc(last).counter, HLC_MAX_COUNTER);
  t.throws(() => clock.now(), { code: 'HLC_COUNTER_OVERFLOW' });
  t.equal(clock.last(), last);
  time.ms += 1;
  t.equal(clock.now(), formatHlc({ wall: T0 + 1, counter: 0, node: 'a' }), 'recovers in the next millisecond');
});

t.test('receive() returns a timestamp after both the remote and every local one', async (t) => {
  const time = fakeTime();
  const local = createClock({ node: 'a', now: time.now });
  const l1 = local.now();
  const remote = formatHlc({ wall: T0 + 1_000, counter: 7, node: 'b' });
  const r = local.receive(remote);
  t.ok(r > remote && r > l1);
  t.same(parseHlc(r), { wall: T0 + 1_000, counter: 8, node: 'a' });
  t.ok(local.now() > r, 'later local events stay after the received one');
});

t.test('receive() of an older remote still advances the local counter', async (t) => {
  const time = fakeTime();
  const local = createClock({ node: 'a', now: time.now });
  const l1 = local.now();
  const r = local.receive(formatHlc({ wall: T0 - 10_000, counter: 3, node: 'b' }));
  t.same(parseHlc(r), { wall: T0, counter: 1, node: 'a' });
  t.ok(r > l1);
});

t.test('receive() with equal wall times takes the larger counter plus one', async (t) => {
  const time = fakeTime();
  const local = createClock({ node: 'a', now: time.now });
  local.now();
  local.now(); // counter 1 at T0
  const r = local.receive(formatHlc({ wall: T0, counter: 9, node: 'b' }));
  t.same(parseHlc(r), { wall: T0, counter: 10, node: 'a' });
});

t.test('receive() rejects a remote more than maxSkewMs ahead and leaves the clock unchanged', async (t) => {
  const time = fakeTime();
  const clock = createClock({ node: 'a', now: time.now });
  const l1 = clock.now();
  const tooFar = formatHlc({ wall: T0 + DEFAULT_MAX_SKEW_MS + 1, counter: 0, node: 'b' });
  t.throws(() => clock.receive(tooFar), { code: 'HLC_TOO_FAR_AHEAD' });
  t.equal(clock.last(), l1, 'state untouched');
  t.equal(clock.now(), formatHlc({ wall: T0, counter: 1, node: 'a' }), 'next local event continues from before');
});

t.test('receive() accepts a remote exactly maxSkewMs ahead', async (t) => {
  const time = fakeTime();
  const clock = createClock({ node: 'a', now: time.now, maxSkewMs: 1_000 });
  const r = clock.receive(formatHlc({ wall: T0 + 1_000, counter: 0, node: 'b' }));
  t.equal(parseHlc(r).wall, T0 + 1_000);
  t.throws(() => clock.receive(formatHlc({ wall: T0 + 1_001, counter: 0, node: 'b' })), { code: 'HLC_TOO_FAR_AHEAD' });
});

t.test('issue 5: receive() with a reference (the server clock) takes in a remote ahead of a local clock that runs behind', async (t) => {
  const time = fakeTime();
  const phone = createClock({ node: 'a', now: time.now }); // 10 minutes behind the server
  const server = T0 + 600_000;
  const remote = formatHlc({ wall: server - 1_000, counter: 2, node: 'b' });
  t.throws(() => phone.receive(remote), { code: 'HLC_TOO_FAR_AHEAD' }, 'without the reference: refused, as before');
  const r = phone.receive(remote, server);
  t.same(parseHlc(r), { wall: server - 1_000, counter: 3, node: 'a' });
  t.ok(phone.now() > remote, 'later local events are ordered after what was received');
  t.ok(phone.receive(formatHlc({ wall: server + DEFAULT_MAX_SKEW_MS, counter: 0, node: 'b' }), server) > remote, 'up to the skew beyond the reference');
  const l = phone.last();
  t.throws(() => phone.receive(formatHlc({ wall: server + DEFAULT_MAX_SKEW_MS + 1, counter: 0, node: 'b' }), server), { code: 'HLC_TOO_FAR_AHEAD' }, 'ahead of both: refused');
  t.throws(() => phone.receive(remote, -1), { code: 'HLC_INVALID' }, 'a reference that is not a wall time');
  t.equal(phone.last(), l, 'refusals change nothing');
  t.ok(phone.receive(formatHlc({ wall: T0 + 100, counter: 0, node: 'b' }), T0 - 3_600_000) > l, 'a reference behind the local clock changes nothing to the rule');
});

t.test('receive() of a malformed string throws HLC_INVALID and leaves the clock unchanged', async (t) => {
  const time = fakeTime();
  const clock = createClock({ node: 'a', now: time.now });
  const l1 = clock.now();
  t.throws(() => clock.receive('1700000000000-0000-B'), { code: 'HLC_INVALID' });
  t.equal(clock.last(), l1);
});

t.test('receive() of a remote at the counter limit throws HLC_COUNTER_OVERFLOW and changes nothing', async (t) => {
  const time = fakeTime();
  const clock = createClock({ node: 'a', now: time.now });
  const l1 = clock.now();
  t.throws(() => clock.receive(formatHlc({ wall: T0 + 5, counter: HLC_MAX_COUNTER, node: 'b' })), { code: 'HLC_COUNTER_OVERFLOW' });
  t.equal(clock.last(), l1);
});

t.test('every timestamp a clock issues is after everything it issued or received, across skewed clocks', async () => {
  fc.assert(
    fc.property(
      // Skew and backward steps stay well inside the allowed 5 minutes, so nothing is rejected.
      fc.integer({ min: -200_000, max: 200_000 }),
      fc.array(fc.record({ from: fc.nat(1), tick: fc.integer({ min: -100, max: 1_000 }), send: fc.boolean() }), { maxLength: 60 }),
      (skew, steps) => {
        const time = fakeTime();
        const clocks = [createClock({ node: 'a', now: time.now }), createClock({ node: 'b', now: () => time.ms + skew })];
        const newest = ['', ''];
        for (const s of steps) {
          time.ms += s.tick;
          const me = s.from;
          const other = 1 - me;
          const sent = clocks[me]!.now();
          if (!(sent > newest[me]!)) return false;
          newest[me] = sent;
          if (s.send) {
            const got = clocks[other]!.receive(sent);
            if (!(got > sent && got > newest[other]!)) return false;
            newest[other] = got;
          }
        }
        return true;
      },
    ),
    { numRuns: 200 },
  );
});

t.test('a clock restored from last() never issues an older timestamp', async (t) => {
  const time = fakeTime();
  const first = createClock({ node: 'a', now: time.now });
  first.now();
  first.receive(formatHlc({ wall: T0 + 2_000, counter: 4, node: 'b' }));
  const saved = first.last();
  time.ms -= 30_000; // restarted with a wall clock behind
  const restarted = createClock({ node: 'a', now: time.now, last: saved });
  t.equal(restarted.last(), saved);
  t.ok(restarted.now() > saved);
});
