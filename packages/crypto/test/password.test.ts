import t from 'tap';
import { normalizePassword } from '../src/index.js';

t.test('normalizePassword applies NFKC', async (t) => {
  // Composed vs decomposed é, full-width letters, the "ﬁ" ligature.
  t.equal(normalizePassword('cafe\u0301'), 'caf\u00e9');
  t.equal(normalizePassword('\uff30\uff41\uff53\uff53'), 'Pass');
  t.equal(normalizePassword('\ufb01le'), 'file');
});

t.test('normalizePassword rejects a non-string with INPUT_INVALID', async (t) => {
  t.throws(() => normalizePassword(42 as unknown as string), { code: 'INPUT_INVALID' });
});
