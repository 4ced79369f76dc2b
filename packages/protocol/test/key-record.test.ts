import fc from 'fast-check';
import t from 'tap';
import {
  IMEI_PATTERN,
  KEY_ID_PATTERN,
  NODE_ID_PATTERN,
  acceptKeyRecord,
  compareKeyRecords,
  createClock,
  formatHlc,
  parseKeyRecord,
  reconcile,
  type KeyRecord,
} from '../src/index.js';

const T0 = 1_700_000_000_000;
const IMEI = '356938035643809';

function keyRecord(over: Partial<KeyRecord> & { wall?: number; counter?: number } = {}): KeyRecord {
  const issuer = over.issuer ?? 'server-a';
  return {
    imei: over.imei ?? IMEI,
    keyId: over.keyId ?? 'a'.repeat(32),
    issuedAt: over.issuedAt ?? formatHlc({ wall: over.wall ?? T0, counter: over.counter ?? 0, node: issuer }),
    issuer,
  };
}

const recordArb = (imei: fc.Arbitrary<string>): fc.Arbitrary<KeyRecord> =>
  fc
    .record({
      imei,
      keyId: fc.stringMatching(KEY_ID_PATTERN),
      wall: fc.integer({ min: T0 - 10, max: T0 + 10 }),
      counter: fc.integer({ min: 0, max: 3 }),
      issuer: fc.constantFrom('server-a', 'server-b', 'a'),
    })
    .map((r) => keyRecord(r));

const sameImeiPair = fc.tuple(recordArb(fc.constant(IMEI)), recordArb(fc.constant(IMEI)));

t.test('a newer issuedAt wins regardless of the key id', async (t) => {
  const older = keyRecord({ wall: T0, keyId: 'f'.repeat(32) });
  const newer = keyRecord({ wall: T0 + 1, keyId: '0'.repeat(32) });
  t.equal(compareKeyRecords(newer, older), 1);
  t.equal(compareKeyRecords(older, newer), -1);
  t.same(reconcile(older, newer), newer);
});

t.test('the counter orders keys issued within one millisecond', async (t) => {
  const a = keyRecord({ counter: 1 });
  const b = keyRecord({ counter: 2, keyId: '0'.repeat(32) });
  t.same(reconcile(a, b), b);
});

t.test('equal timestamps are ordered by key id', async (t) => {
  const a = keyRecord({ keyId: '1'.repeat(32) });
  const b = keyRecord({ keyId: '2'.repeat(32) });
  t.equal(compareKeyRecords(a, b), -1);
  t.same(reconcile(a, b), b);
  t.same(reconcile(b, a), b);
});

t.test('the order is total, antisymmetric and transitive', async () => {
  fc.assert(
    fc.property(recordArb(fc.stringMatching(IMEI_PATTERN)), recordArb(fc.stringMatching(IMEI_PATTERN)), recordArb(fc.stringMatching(IMEI_PATTERN)), (a, b, c) => {
      const ab = compareKeyRecords(a, b);
      if (ab !== -compareKeyRecords(b, a)) return false;
      if (ab === 0 && JSON.stringify(a) !== JSON.stringify(b)) return false;
      if (ab <= 0 && compareKeyRecords(b, c) <= 0 && compareKeyRecords(a, c) > 0) return false;
      return true;
    }),
    { numRuns: 300 },
  );
});

t.test('reconcile is commutative', async () => {
  fc.assert(
    fc.property(sameImeiPair, ([a, b]) => JSON.stringify(reconcile(a, b)) === JSON.stringify(reconcile(b, a))),
    { numRuns: 300 },
  );
});

t.test('reconcile is idempotent and returns one of its inputs', async () => {
  fc.assert(
    fc.property(sameImeiPair, ([a, b]) => {
      const w = JSON.stringify(reconcile(a, b));
      return (
        JSON.stringify(reconcile(a, a)) === JSON.stringify(a) &&
        JSON.stringify(reconcile(reconcile(a, b), b)) === w &&
        (w === JSON.stringify(a) || w === JSON.stringify(b))
      );
    }),
    { numRuns: 300 },
  );
});

t.test('reconciling many records in any order gives the same winner', async () => {
  fc.assert(
    fc.property(fc.array(recordArb(fc.constant(IMEI)), { minLength: 1, maxLength: 8 }), (records) => {
      const forward = records.reduce((w, r) => reconcile(w, r));
      const backward = [...records].reverse().reduce((w, r) => reconcile(w, r));
      return JSON.stringify(forward) === JSON.stringify(backward);
    }),
    { numRuns: 200 },
  );
});

t.test('reconciling records of two different devices throws KEY_MISMATCH', async (t) => {
  t.throws(() => reconcile(keyRecord(), keyRecord({ imei: '490154203237518' })), { code: 'KEY_MISMATCH' });
});

t.test('malformed key records throw KEY_RECORD_INVALID naming the field', async (t) => {
  const cases: [string, unknown][] = [
    ['imei', { ...keyRecord(), imei: '35693803564380' }],
    ['keyId', { ...keyRecord(), keyId: 'A'.repeat(32) }],
    ['keyId', { ...keyRecord(), keyId: 'a'.repeat(64) }],
    ['issuedAt', { ...keyRecord(), issuedAt: '2024-01-01T00:00:00Z' }],
    ['issuer', { ...keyRecord(), issuer: 'Server A' }],
    ['issuer', { ...keyRecord(), issuer: 'server-b' }],
    ['extra', { ...keyRecord(), extra: 1 }],
    ['keyId', { imei: IMEI, issuedAt: keyRecord().issuedAt, issuer: 'server-a' }],
  ];
  for (const [field, value] of cases) {
    t.throws(() => parseKeyRecord(value), { code: 'KEY_RECORD_INVALID', details: { field } }, field);
  }
  t.throws(() => parseKeyRecord(null), { code: 'KEY_RECORD_INVALID' });
  t.throws(() => reconcile(keyRecord(), { ...keyRecord(), keyId: 'x' }), { code: 'KEY_RECORD_INVALID' });
});

t.test('parseKeyRecord returns a clean copy of a valid record', async (t) => {
  const r = keyRecord();
  const parsed = parseKeyRecord(JSON.parse(JSON.stringify(r)));
  t.strictSame(parsed, r);
  t.not(parsed, r);
});

t.test('a node id pattern is shared by issuers and clocks', async (t) => {
  t.ok(NODE_ID_PATTERN.test('server-a'));
  t.ok(NODE_ID_PATTERN.test(IMEI), 'an IMEI is a valid node id');
});

t.test('acceptKeyRecord stores the first key it sees for a device', async (t) => {
  const clock = createClock({ node: 'server-b', now: () => T0 });
  const offered = keyRecord();
  const res = acceptKeyRecord(clock, offered, undefined);
  t.equal(res.changed, true);
  t.strictSame(res.record, offered);
  t.ok(clock.now() > offered.issuedAt, 'keys this server issues later are newer');
});

t.test('acceptKeyRecord keeps the current key when an older one is offered', async (t) => {
  const clock = createClock({ node: 'server-b', now: () => T0 + 100 });
  const current = keyRecord({ wall: T0 + 50, issuer: 'server-b' });
  const res = acceptKeyRecord(clock, keyRecord({ wall: T0 }), current);
  t.equal(res.changed, false);
  t.strictSame(res.record, current);
});

t.test('acceptKeyRecord replaces the current key with a newer one', async (t) => {
  const clock = createClock({ node: 'server-b', now: () => T0 + 100 });
  const current = keyRecord({ wall: T0, issuer: 'server-b' });
  const offered = keyRecord({ wall: T0 + 10 });
  const res = acceptKeyRecord(clock, offered, current);
  t.equal(res.changed, true);
  t.strictSame(res.record, offered);
});

t.test('acceptKeyRecord rejects a key stamped too far ahead and does not move the clock', async (t) => {
  const clock = createClock({ node: 'server-b', now: () => T0 });
  const before = clock.last();
  t.throws(() => acceptKeyRecord(clock, keyRecord({ wall: T0 + 300_001 }), undefined), { code: 'HLC_TOO_FAR_AHEAD' });
  t.equal(clock.last(), before);
});

t.test('acceptKeyRecord refuses a current record of another device', async (t) => {
  const clock = createClock({ node: 'server-b', now: () => T0 });
  t.throws(() => acceptKeyRecord(clock, keyRecord(), keyRecord({ imei: '490154203237518' })), { code: 'KEY_MISMATCH' });
});
