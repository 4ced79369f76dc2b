import t from 'tap';
import { parseStrictJson } from '../src/http/strict-json.js';

// Issue 3 item 8: duplicate keys and prototype keys are refused in request bodies.
const refused = (text: string) => {
  try {
    parseStrictJson(text);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

t.test('well-formed JSON parses as JSON.parse would', async (t) => {
  for (const text of ['{}', '[]', '"x"', '1', 'null', '{"a":{"a":1},"b":[{"a":1},{"a":2}]}', '{"a":"}\\"{,","b":"\\\\"}', '{"__proto_":1,"proto":2}']) {
    t.same(parseStrictJson(text), JSON.parse(text), text);
  }
});

t.test('a repeated key is refused at any depth, also when spelled with escapes', async (t) => {
  t.equal(refused('{"a":1,"a":2}'), 'INPUT_MALFORMED_JSON');
  t.equal(refused('{"x":{"a":1,"b":{},"a":2}}'), 'INPUT_MALFORMED_JSON');
  t.equal(refused('[{"a":1},{"b":1,"b":1}]'), 'INPUT_MALFORMED_JSON');
  t.equal(refused('{"a":1,"\\u0061":2}'), 'INPUT_MALFORMED_JSON');
  t.equal(refused('{"a":{"a":1}}'), undefined, 'the same key in different objects is fine');
});

t.test('prototype keys are refused', async (t) => {
  for (const text of ['{"__proto__":{}}', '{"a":[{"constructor":{"prototype":1}}]}', '{"prototype":1}', '{"\\u005f\\u005fproto\\u005f\\u005f":1}']) {
    t.equal(refused(text), 'INPUT_MALFORMED_JSON', text);
  }
  t.equal(refused('{"a":"__proto__"}'), undefined, 'as a value it is just a string');
});

t.test('malformed or too deeply nested text is refused without echoing it', async (t) => {
  for (const text of ['', '{', '{"a":}', '{"a":1}}', '"unterminated', '{"a" 1}', 'secret-canary', `${'['.repeat(40)}${']'.repeat(40)}`]) {
    try {
      parseStrictJson(text);
      t.fail(`accepted ${text}`);
    } catch (err) {
      t.equal((err as { code: string }).code, 'INPUT_MALFORMED_JSON');
      t.notOk(String((err as Error).message).includes('secret-canary'));
      t.equal((err as Error).cause, undefined, 'no cause that could quote the body');
    }
  }
});
