import t from 'tap';
import { assertPasswordAcceptable, defaultPasswordPolicy, findPasswordProblem } from '@fieldvault/protocol';

// Issue 3: NIST SP 800-63B-4 password rules (protocol/src/password-policy.ts, shared with the SDK).
t.test('length is counted in code points after NFKC, 15 to 256 by default', async (t) => {
  t.equal(findPasswordProblem('fourteen chars'), 'PASSWORD_TOO_SHORT');
  t.equal(findPasswordProblem('fifteen chars!!'), undefined);
  t.equal(findPasswordProblem('😀'.repeat(5) + 'xyzq wvut'), 'PASSWORD_TOO_SHORT', 'emoji count as one character each');
  t.equal(findPasswordProblem('x'.repeat(10) + 'ab'.repeat(124)), 'PASSWORD_TOO_LONG');
  t.equal(findPasswordProblem('a mix of words ' + 'y'.repeat(60), { minLength: 15, maxLength: 64 }), 'PASSWORD_TOO_LONG');
  t.equal(findPasswordProblem('short but ok', { minLength: 8, maxLength: 64 }), undefined);
  t.same(defaultPasswordPolicy, { minLength: 15, maxLength: 256 });
});

t.test('no composition rules: spaces, Unicode and lowercase-only phrases are fine', async (t) => {
  for (const pw of ['tranquil seaside evening', 'пароль для полевой работы', '野外で使うための長いパスワードです', 'onlylowercaselettershere']) {
    t.equal(findPasswordProblem(pw), undefined, pw);
  }
});

t.test('NFKC: compatibility forms normalise to one password', async (t) => {
  const fullwidth = 'ｔｒａｎｑｕｉｌ ｓｅａｓｉｄｅ ｅｖｅｎｉｎｇ';
  t.equal(assertPasswordAcceptable(fullwidth), 'tranquil seaside evening');
});

t.test('common, repeated, sequential and context passwords are refused', async (t) => {
  for (const pw of [
    'qwertyuiopasdfgh',
    'password1234567',
    '123456789987654321',
    'passwordpassword',
    'aaaaaaaaaaaaaaaa',
    'abcabcabcabcabcabc',
    'abcdefghijklmnop',
    '987654321098765',
    '1qaz2wsx3edc4rfv',
    'Fieldvault2025!!!',
    'iloveyou1234567!',
  ]) {
    t.equal(findPasswordProblem(pw), 'PASSWORD_TOO_COMMON', pw);
  }
  t.equal(findPasswordProblem('mariana-trench-diver', defaultPasswordPolicy, { username: 'mariana' }), 'PASSWORD_TOO_COMMON', 'contains the username');
});

t.test('errors name the rule, never the password', async (t) => {
  t.throws(() => assertPasswordAcceptable('tiny'), { code: 'PASSWORD_TOO_SHORT' });
  try {
    assertPasswordAcceptable('password1234567');
  } catch (err) {
    t.notMatch((err as Error).message, /password1234567/);
  }
});
