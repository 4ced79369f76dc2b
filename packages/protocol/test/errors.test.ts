import t from 'tap';
import {
  FieldvaultError,
  errorAreas,
  errorCatalogue,
  isErrorCode,
  isFieldvaultError,
  isSdkOnlyCode,
  renderErrorCatalogueMarkdown,
  toErrorBody,
  type ErrorCode,
} from '../src/index.js';

const codes = Object.keys(errorCatalogue) as ErrorCode[];

t.test('every catalogue entry has an HTTP status, a message and a hint', async (t) => {
  for (const code of codes) {
    const spec = errorCatalogue[code];
    t.ok(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, `${code} status`);
    t.ok(typeof spec.message === 'string' && spec.message.trim().length > 10, `${code} message`);
    t.ok(typeof spec.hint === 'string' && spec.hint.trim().length > 10, `${code} hint`);
  }
});

t.test('every code is UPPER_SNAKE with a known area prefix', async (t) => {
  const areas = Object.keys(errorAreas);
  for (const code of codes) {
    t.match(code, /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/, code);
    t.ok(areas.some((a) => code.startsWith(`${a}_`)), `${code} has a known area prefix`);
  }
});

t.test('FieldvaultError carries code, status, hint, details and cause', async (t) => {
  const cause = new Error('low level');
  const err = new FieldvaultError('HLC_TOO_FAR_AHEAD', { detail: 'by 6 minutes', details: { aheadMs: 360_000 }, cause });
  t.equal(err.code, 'HLC_TOO_FAR_AHEAD');
  t.equal(err.statusCode, errorCatalogue.HLC_TOO_FAR_AHEAD.status);
  t.equal(err.hint, errorCatalogue.HLC_TOO_FAR_AHEAD.hint);
  t.strictSame(err.details, { aheadMs: 360_000 });
  t.equal(err.cause, cause);
  t.equal(err.name, 'FieldvaultError');
  t.ok(err.message.includes('(by 6 minutes)'), 'detail is part of the message');
  t.ok(err instanceof Error);
});

t.test('isFieldvaultError matches on code and name, also across package copies', async (t) => {
  t.ok(isFieldvaultError(new FieldvaultError('INPUT_INVALID')));
  t.ok(isFieldvaultError({ name: 'FieldvaultError', code: 'INPUT_INVALID', message: 'copy' }));
  t.notOk(isFieldvaultError({ name: 'FieldvaultError', code: 'NOT_A_CODE' }));
  t.notOk(isFieldvaultError(Object.assign(new Error('x'), { code: 'INPUT_INVALID' })));
  t.notOk(isFieldvaultError(null));
  t.ok(isErrorCode('RECORD_INVALID'));
  t.notOk(isErrorCode('toString'));
});

t.test('toErrorBody passes a catalogued error through in the wire shape', async (t) => {
  const body = toErrorBody(new FieldvaultError('RECORD_MERGE_MISMATCH'));
  t.strictSame(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode']);
  t.equal(body.code, 'RECORD_MERGE_MISMATCH');
  t.equal(body.statusCode, 400);
  t.equal(body.error, 'Bad Request');
});

t.test('toErrorBody turns anything else into INTERNAL_ERROR without leaking the original message', async (t) => {
  const secret = 'ECONNREFUSED couchdb://admin:hunter2@10.0.0.5/records';
  for (const err of [new Error(secret), Object.assign(new Error(secret), { code: 'ECONNREFUSED' }), secret, { message: secret }, undefined]) {
    const body = toErrorBody(err);
    t.equal(body.code, 'INTERNAL_ERROR');
    t.equal(body.statusCode, 500);
    t.notOk(JSON.stringify(body).includes('hunter2'));
  }
});

t.test('the generated error catalogue document lists every code', async (t) => {
  const md = renderErrorCatalogueMarkdown();
  for (const code of codes) t.ok(md.includes(`\`${code}\``), code);
});

t.test("issue 5: the field CLI's FIELD_* codes are in the one catalogue and never accepted from a server", async (t) => {
  const field = codes.filter((c) => c.startsWith('FIELD_'));
  t.ok(field.length >= 12, 'the CLI codes moved here');
  for (const c of field) t.ok(isSdkOnlyCode(c), `${c} is raised on the phone side only`);
  t.notOk(isSdkOnlyCode('RECORD_FIELD_FORBIDDEN'), 'a server code that merely contains FIELD is not');
  t.ok(renderErrorCatalogueMarkdown().includes('| `FIELD_USAGE` |'), 'and listed in docs/errors.md');
});
