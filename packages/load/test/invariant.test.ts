// The load test's invariant must catch what it claims to: loss, invention, duplicates and missing
// photos — and must not blame the server for records it refused.
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { applyEdit, createRecord, formatHlc, type ChildRecord } from '@fieldvault/protocol';
import { checkHolding, type PhoneOutcome } from '../src/index.js';

const IMEI = '350000000000001';
function made(name: string, photoId?: string): { record: ChildRecord; created: { id: string; name: string; photoId?: string } } {
  const id = randomUUID();
  let record = createRecord({ id, createdBy: 'worker0000', device: IMEI, clockTs: formatHlc({ wall: Date.now(), counter: 0, node: 'phone' }), fields: { name } });
  if (photoId !== undefined) {
    record = { ...record, photos: { [photoId]: { sha256: 'a'.repeat(64), size: 10, type: 'image/jpeg', addedAt: record.createdAt, by: 'worker0000' } } };
  }
  return { record, created: { id, name, ...(photoId === undefined ? {} : { photoId }) } };
}
function phone(created: PhoneOutcome['created'], extra: Partial<PhoneOutcome> = {}): PhoneOutcome {
  return { index: 0, imei: IMEI, username: 'worker0000', created, pushed: created.length, pulled: 0, failed: [], photosUploaded: 0, photosFailed: [], pending: { records: 0, photos: 0 }, syncMs: 1, syncStartedAt: 1, syncEndedAt: 2, ...extra };
}

t.test('everything acknowledged and held: holds', async (t) => {
  const p = randomUUID();
  const a = made('A', p);
  const b = made('B');
  const check = checkHolding([a.record, b.record], [phone([a.created, b.created])], new Set([p]));
  t.match(check, { ok: true, acknowledged: 2, missing: [], unexpected: [], duplicates: [], missingPhotos: [] });
});

t.test('an acknowledged record the server lacks, holds under another value, or holds deleted is missing', async (t) => {
  const a = made('A');
  const b = made('B');
  const c = made('C');
  const renamed: ChildRecord = { ...b.record, fields: { ...b.record.fields, name: { ...(b.record.fields['name'] as ChildRecord['fields'][string]), value: 'not B' } } };
  const gone = applyEdit(c.record, { field: '_deleted', value: true, by: 'worker0000', device: IMEI, ts: formatHlc({ wall: Date.now() + 1000, counter: 0, node: 'phone' }) });
  const check = checkHolding([renamed, gone], [phone([a.created, b.created, c.created])], new Set());
  t.equal(check.ok, false);
  t.same([...check.missing].sort(), [a.created.id, b.created.id, c.created.id].sort());
});

t.test('a record no phone created, or returned twice, breaks it', async (t) => {
  const a = made('A');
  const stranger = made('Stranger');
  const check = checkHolding([a.record, a.record, stranger.record], [phone([a.created])], new Set());
  t.same(check.unexpected, [stranger.created.id]);
  t.same(check.duplicates, [a.created.id]);
  t.equal(check.ok, false);
});

t.test('an acknowledged photo the server does not hold complete is missing; a refused one is not', async (t) => {
  const p1 = randomUUID();
  const p2 = randomUUID();
  const a = made('A', p1);
  const b = made('B', p2);
  const check = checkHolding([a.record, b.record], [phone([a.created, b.created], { photosFailed: [{ photoId: p2, code: 'PHOTO_TOO_LARGE' }] })], new Set());
  t.same(check.missingPhotos, [p1]);
});

t.test('records the server refused, or a phone that failed, are not counted as acknowledged', async (t) => {
  const a = made('A');
  const b = made('B');
  const refusedPhone = phone([a.created], { failed: [{ id: a.created.id, code: 'RECORD_INVALID' }], pending: { records: 1, photos: 0 } });
  const failedPhone = phone([b.created], { error: 'TRANSPORT_UNREACHABLE', pending: { records: 1, photos: 0 } });
  const check = checkHolding([], [refusedPhone, failedPhone], new Set());
  t.match(check, { ok: true, acknowledged: 0 });
});
