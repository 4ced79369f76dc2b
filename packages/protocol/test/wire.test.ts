import t from 'tap';
import { Value } from '@sinclair/typebox/value';
import { LOGIN_SIGNATURE_LABEL, LoginBodySchema, loginSignatureMessage } from '../src/index.js';

const base = { challenge: 'c'.repeat(43), username: 'amina', imei: '490154203237518', keyId: '' };

t.test('the login message is length-prefixed items starting with the domain label', async (t) => {
  const msg = loginSignatureMessage(base);
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const first = view.getUint32(0);
  t.equal(first, LOGIN_SIGNATURE_LABEL.length);
  t.equal(new TextDecoder().decode(msg.subarray(4, 4 + first)), LOGIN_SIGNATURE_LABEL);
  t.same(loginSignatureMessage(base), msg, 'deterministic');
});

t.test('moving characters between fields changes the signed bytes (no ambiguous concatenation)', async (t) => {
  const a = loginSignatureMessage({ ...base, username: 'amina', imei: '490154203237518' });
  const b = loginSignatureMessage({ ...base, username: 'amina4', imei: '90154203237518' });
  t.not(Buffer.from(a).toString('hex'), Buffer.from(b).toString('hex'));
});

t.test('a login body with an unknown property is rejected by the shared schema', async (t) => {
  const body = {
    username: 'amina', password: 'x', imei: '490154203237518', devicePublicKey: `${'A'.repeat(42)}A=`,
    challenge: 'c'.repeat(43), signature: `${'A'.repeat(85)}A==`,
  };
  t.ok(Value.Check(LoginBodySchema, body));
  t.notOk(Value.Check(LoginBodySchema, { ...body, role: 'admin' }));
});
