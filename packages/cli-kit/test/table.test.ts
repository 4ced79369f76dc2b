import t from 'tap';
import { keyValues, table } from '../src/index.js';

interface Row {
  readonly name: string;
  readonly note: string;
}

const columns = [
  { header: 'NAME', value: (r: Row) => r.name },
  { header: 'NOTE', value: (r: Row) => r.note, max: 8 },
] as const;

t.test('a table pads every column but the last to its widest cell, under a header and a rule', async (t) => {
  const text = table<Row>(
    [
      { name: 'amina', note: 'ok' },
      { name: 'jo', note: 'fine' },
    ],
    columns,
  );
  t.equal(text, ['NAME   NOTE', '-----  ----', 'amina  ok', 'jo     fine'].join('\n'));
});

t.test('a cell longer than its column maximum is cut with an ellipsis and white space is folded', async (t) => {
  const text = table<Row>([{ name: 'x', note: 'line one\n\tline two' }], columns);
  t.equal(text.split('\n')[2], 'x     line on…');
});

t.test('the width counts characters, not UTF-16 units, and no line ends in spaces', async (t) => {
  const text = table<Row>([{ name: '😀😀', note: '' }, { name: 'abc', note: '' }], columns);
  t.same(text.split('\n'), ['NAME  NOTE', '----  ----', '😀😀', 'abc']);
});

t.test('a table with no rows is a header and a rule', async (t) => {
  t.equal(table<Row>([], columns), 'NAME  NOTE\n----  ----');
});

t.test('key-value lines align the values after the longest key', async (t) => {
  t.equal(keyValues([['user', 'amina'], ['server id', 'srv-1']]), 'user       amina\nserver id  srv-1');
  t.equal(keyValues([]), '');
});
