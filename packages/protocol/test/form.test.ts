import t from 'tap';
import {
  assertMatchesForm,
  defaultChildForm,
  parseFormDefinition,
  validateAgainstForm,
  type FormDefinition,
} from '../src/index.js';

const complete = {
  name: 'Ada',
  age: 7,
  sex: 'female',
  location: 'Camp 3, block B',
  caregiver: 'aunt',
  protection_concerns: ['separated', 'refugee'],
  notes: 'found near the market',
  flagged: false,
  reunited: false,
  investigated: true,
  duplicate: false,
  verified: false,
};

t.test('the default child form has the fields of DESIGN.md §4', async (t) => {
  t.strictSame(
    defaultChildForm.fields.map((f) => f.name),
    ['name', 'age', 'sex', 'location', 'caregiver', 'protection_concerns', 'notes', 'flagged', 'reunited', 'investigated', 'duplicate', 'verified'],
  );
  t.strictSame(parseFormDefinition(JSON.parse(JSON.stringify(defaultChildForm))), defaultChildForm, 'it is a valid form definition');
  t.ok(Object.isFrozen(defaultChildForm.fields[0]), 'the shared default cannot be mutated');
});

t.test('a complete child record matches the default form', async (t) => {
  t.strictSame(validateAgainstForm(complete, defaultChildForm), []);
  t.doesNotThrow(() => assertMatchesForm(complete, defaultChildForm));
});

t.test('only the required name must be present; null clears an optional field', async (t) => {
  t.strictSame(validateAgainstForm({ name: 'Ada', age: null }, defaultChildForm), []);
  t.strictSame(validateAgainstForm({ age: 3 }, defaultChildForm).map((p) => [p.field, p.problem]), [['name', 'required']]);
  t.strictSame(validateAgainstForm({ name: '' }, defaultChildForm).map((p) => p.problem), ['required']);
});

t.test('each kind of bad value is reported against its field', async (t) => {
  const problems = validateAgainstForm(
    {
      name: 42,
      age: 130,
      sex: 'f',
      location: 'x'.repeat(1_001),
      protection_concerns: ['separated', 'aliens'],
      flagged: 'yes',
      nickname: 'Addy',
      _deleted: false,
    },
    defaultChildForm,
  );
  t.strictSame(
    problems.map((p) => [p.field, p.problem]),
    [
      ['name', 'type'],
      ['age', 'range'],
      ['sex', 'option'],
      ['location', 'too_long'],
      ['protection_concerns', 'option'],
      ['flagged', 'type'],
      ['nickname', 'unknown'],
    ],
  );
  t.ok(problems.every((p) => !p.message.includes('aliens') && !p.message.includes('Addy')), 'values are not echoed');
});

t.test('unknown fields are accepted when asked', async (t) => {
  t.strictSame(validateAgainstForm({ name: 'Ada', nickname: 'Addy' }, defaultChildForm, { allowUnknown: true }), []);
});

t.test('dates must be real calendar dates', async (t) => {
  const form: FormDefinition = { id: 'visit', version: 1, fields: [{ name: 'seen_on', type: 'date' }] };
  t.strictSame(validateAgainstForm({ seen_on: '2024-02-29' }, form), []);
  for (const bad of ['2023-02-29', '2024-13-01', '24-01-01', '2024-1-1', 20240101]) {
    t.equal(validateAgainstForm({ seen_on: bad }, form)[0]?.problem, 'type', String(bad));
  }
});

t.test('string lists honour item count and item length', async (t) => {
  const form: FormDefinition = { id: 'tags', version: 1, fields: [{ name: 'tags', type: 'string[]', min: 1, max: 2, maxLength: 3 }] };
  t.strictSame(validateAgainstForm({ tags: ['a', 'bc'] }, form), []);
  t.equal(validateAgainstForm({ tags: ['a', 'b', 'c'] }, form)[0]?.problem, 'range');
  t.equal(validateAgainstForm({ tags: ['abcd'] }, form)[0]?.problem, 'too_long');
  t.equal(validateAgainstForm({ tags: 'a' }, form)[0]?.problem, 'type');
});

t.test('text values must be readable: no control characters but tab and line breaks, no unpaired surrogates', async (t) => {
  const form: FormDefinition = { id: 'notes', version: 1, fields: [{ name: 'note', type: 'string' }, { name: 'tags', type: 'string[]' }] };
  for (const good of ['Zoë', 'two\nlines\r\n\tindented', 'emoji \u{1F600} pair', 'עברית and العربية', 'e\u0301 combining', '']) {
    t.strictSame(validateAgainstForm({ note: good, tags: [good || 'x'] }, form), [], JSON.stringify(good));
  }
  for (const bad of ['a\u0000b', 'bell\u0007', 'esc\u001b[31m', 'del\u007f', 'lone \ud800 high', 'lone \udc00 low', 'reversed \udc00\ud800', 'end \ud83d']) {
    const p = validateAgainstForm({ note: bad, tags: ['ok', bad] }, form);
    t.strictSame(p.map((x) => [x.field, x.problem]), [['note', 'text'], ['tags', 'text']], JSON.stringify(bad));
    t.notOk(p.some((x) => x.message.includes(bad)), 'the value is not echoed');
  }
});

t.test('assertMatchesForm throws RECORD_INVALID naming the first bad field', async (t) => {
  t.throws(() => assertMatchesForm({ name: 'Ada', age: -1 }, defaultChildForm), {
    code: 'RECORD_INVALID',
    details: { field: 'age', problem: 'range', problems: 1 },
  });
});

t.test('malformed form definitions throw RECORD_FORM_INVALID naming the field', async (t) => {
  const cases: [string, unknown][] = [
    ['id', { id: 'Child Form', version: 1, fields: [{ name: 'a', type: 'string' }] }],
    ['version', { id: 'f', version: 0, fields: [{ name: 'a', type: 'string' }] }],
    ['fields', { id: 'f', version: 1, fields: [] }],
    ['fields.0.name', { id: 'f', version: 1, fields: [{ name: '_deleted', type: 'boolean' }] }],
    ['fields.0.type', { id: 'f', version: 1, fields: [{ name: 'a', type: 'photo' }] }],
    ['fields.0.colour', { id: 'f', version: 1, fields: [{ name: 'a', type: 'string', colour: 'red' }] }],
    ['fields.1.name', { id: 'f', version: 1, fields: [{ name: 'a', type: 'string' }, { name: 'a', type: 'number' }] }],
    ['fields.0.options', { id: 'f', version: 1, fields: [{ name: 'a', type: 'select' }] }],
    ['fields.0.options', { id: 'f', version: 1, fields: [{ name: 'a', type: 'select', options: ['x', 'x'] }] }],
    ['fields.0.options', { id: 'f', version: 1, fields: [{ name: 'a', type: 'number', options: ['x'] }] }],
    ['fields.0.min', { id: 'f', version: 1, fields: [{ name: 'a', type: 'number', min: 5, max: 1 }] }],
    ['fields.0.min', { id: 'f', version: 1, fields: [{ name: 'a', type: 'boolean', min: 0 }] }],
    ['fields.0.maxLength', { id: 'f', version: 1, fields: [{ name: 'a', type: 'number', maxLength: 3 }] }],
  ];
  for (const [field, value] of cases) {
    t.throws(() => parseFormDefinition(value), { code: 'RECORD_FORM_INVALID', details: { field } }, field);
  }
});
