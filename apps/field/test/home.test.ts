// The CLI home's config file and IMEIs (unit level: the module of this app, no process).
import t from 'tap';
import { generateImei, isValidImei, luhnCheckDigit, parseConfig, serializeConfig, type HomeConfig } from '../src/home.js';

t.test('Luhn check digits match known IMEIs', async (t) => {
  t.equal(luhnCheckDigit('49015420323751'), 8);
  t.equal(luhnCheckDigit('35209900176148'), 1);
  t.ok(isValidImei('490154203237518'));
  t.notOk(isValidImei('490154203237519'), 'a wrong check digit');
  t.notOk(isValidImei('49015420323751'), 'too short');
  t.notOk(isValidImei('49015420323751a'));
});

t.test('generated IMEIs are 15 digits with a valid check digit, and differ', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const imei = generateImei();
    t.ok(isValidImei(imei), imei);
    seen.add(imei);
  }
  t.ok(seen.size > 190, 'random');
});

t.test('config.json round-trips and anything unexpected is FIELD_HOME_CORRUPT', async (t) => {
  const config: HomeConfig = {
    imei: '490154203237518',
    currentUser: 'amina',
    servers: { office: { url: 'https://10.0.0.5:8443', serverId: 'srv-1a2b3c4d', pinSha256: ['AB'.repeat(32)] } },
  };
  t.same(parseConfig(serializeConfig(config)), config);
  const text = serializeConfig(config);
  for (const broken of [
    '',
    '[]',
    text.replace('"v": 1', '"v": 2'),
    text.replace('490154203237518', '490154203237519'),
    text.replace('"amina"', '"Amina!"'),
    text.replace('https://10.0.0.5:8443', 'http://10.0.0.5:8443'),
    text.replace(/"pinSha256": \[[^\]]*\]/, '"note": 1'),
  ]) {
    t.throws(() => parseConfig(broken), { code: 'FIELD_HOME_CORRUPT' });
  }
});
