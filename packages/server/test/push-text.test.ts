import t from 'tap';
import { setupAdmin, makeApp, startStore } from './helpers.js';
import { edit, newRecord, phoneFor, pullAll, push } from './sync-helpers.js';

// Bad-input audit (session 16, F4): a text value must be readable — no NUL or other control
// characters but tab and line breaks, no unpaired surrogate — as every other text of the API is.
const couch = await startStore(t);

t.test('a pushed value with a control character or an unpaired surrogate fails alone, naming the field', async (t) => {
  const ta = await makeApp(t, couch);
  const { app, clock } = ta;
  const { token: admin } = await setupAdmin(app);
  const amina = await phoneFor(app, admin, clock, 'amina');
  const good = newRecord(amina, { name: 'Zoë 😀', location: 'Camp 3\nnear the well\t(east)' });
  const nul = newRecord(amina, { name: 'Ami\u0000na' });
  const lone = newRecord(amina, { name: 'Ami\ud800na' });
  const escape = newRecord(amina, { name: 'Amina', caregiver: 'aunt \u001b[2J' });
  const res = await push(app, amina.token, [good, nul, lone, escape]);
  t.same(
    res.results.map((r) => [r.id, r.status, r.code ?? null, r.field ?? null]),
    [
      [good.id, 'ok', null, null],
      [nul.id, 'error', 'RECORD_INVALID', 'name'],
      [lone.id, 'error', 'RECORD_INVALID', 'name'],
      [escape.id, 'error', 'RECORD_INVALID', 'caregiver'],
    ],
  );
  t.notOk(JSON.stringify(res).includes('Ami'), 'the value is not echoed');
  // An edit bringing such a value into a stored record is refused too, and the record stays as it was.
  const spoiled = edit(amina, good, 'location', 'bell\u0007');
  const again = await push(app, amina.token, [spoiled]);
  t.same(again.results.map((r) => [r.status, r.code ?? null, r.field ?? null]), [['error', 'RECORD_INVALID', 'location']]);
  const stored = (await pullAll(app, amina.token)).records;
  t.same(stored, [good], 'only the good record is stored, unchanged');
});
