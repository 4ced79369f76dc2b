import { PassThrough } from 'node:stream';
import t from 'tap';
import { bytes, createOutput, showValue } from '../src/index.js';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

t.test('without --json the human text goes to stdout with one final newline and notes to stderr', async (t) => {
  const out = capture();
  const err = capture();
  const o = createOutput(false, out.stream, err.stream);
  o.result({ a: 1 }, () => 'hello');
  o.result({ a: 2 }, () => 'twice\n');
  o.result({ a: 3 }, () => '');
  o.note('a note');
  t.equal(out.text(), 'hello\ntwice\n');
  t.equal(err.text(), 'a note\n');
});

t.test('with --json stdout gets the data as indented JSON, the human rendering is not built, notes are dropped', async (t) => {
  const out = capture();
  const err = capture();
  const o = createOutput(true, out.stream, err.stream);
  o.result({ a: [1] }, () => t.fail('human() must not run') as never);
  o.note('a note');
  t.equal(out.text(), '{\n  "a": [\n    1\n  ]\n}\n');
  t.equal(err.text(), '');
});

t.test('sizes are shown in B, KiB or MiB with one decimal', async (t) => {
  t.same([0, 1023, 1024, 1536, 1024 * 1024 - 1, 5 * 1024 * 1024].map(bytes), ['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '1024.0 KiB', '5.0 MiB']);
});

t.test('values are shown with lists joined and nothing as a dash', async (t) => {
  t.same([null, undefined, [], ['a', 'b'], true, false, 7, 'x'].map(showValue), ['—', '—', '—', 'a, b', 'yes', 'no', '7', 'x']);
});
