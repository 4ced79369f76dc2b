// Invitations and password resets from the SDK (field audit, item 2): `setPasswordWithToken` over
// `createHttpTransport` against a real server process. The policy is checked on the phone before
// anything is sent; the token is never repeated in an error; a used or unknown token is refused by
// the server; the new password then logs in online.
import t from 'tap';
import { setPasswordWithToken, type Transport } from '@fieldvault/client';
import type { ServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A, PASSWORD_B, newDevice, rejection, startServers } from './helpers.js';

const [A] = (await startServers(t, 'set-password', ['server-a'], [])) as [ServerProcess];

async function invite(username: string): Promise<string> {
  const made = await A.admin('POST', '/v1/users', { username, role: 'supervisor' });
  if (made.status !== 201) throw new Error(JSON.stringify(made.body));
  return (made.body['invitation'] as { token: string }).token;
}

/** A real transport that counts its setPassword calls (to prove a refused password was never sent). */
function counting(): { transport: Transport; calls: () => number } {
  const real = A.transport();
  let n = 0;
  const transport: Transport = {
    ...real,
    serverId: real.serverId,
    setPassword: (body) => {
      n += 1;
      return real.setPassword(body);
    },
  };
  return { transport, calls: () => n };
}

t.test('an invited user sets her password with the token, then logs in online with it', async (t) => {
  const token = await invite('amina');
  const { transport, calls } = counting();
  t.same(await setPasswordWithToken({ transport, token, password: PASSWORD_A }), { username: 'amina', role: 'supervisor' });
  t.equal(calls(), 1);
  const { device } = await newDevice(t, { imei: '356938035643827' });
  const session = await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() });
  t.equal(session.serverLogins[0]?.role, 'supervisor');
  await session.logout();
  const again = await rejection(setPasswordWithToken({ transport: A.transport(), token, password: PASSWORD_B }));
  t.equal(again.code, 'AUTH_RESET_TOKEN_INVALID', 'the token works once');
});

t.test('the password policy is checked on the phone first: nothing is sent and the token stays usable', async (t) => {
  const token = await invite('bilal');
  const { transport, calls } = counting();
  t.equal((await rejection(setPasswordWithToken({ transport, token, password: 'too short' }))).code, 'PASSWORD_TOO_SHORT');
  t.equal((await rejection(setPasswordWithToken({ transport, token, password: 'password1234567890' }))).code, 'PASSWORD_TOO_COMMON');
  t.equal(
    (await rejection(setPasswordWithToken({ transport, token, password: 'bilal writes long passwords', username: 'bilal' }))).code,
    'PASSWORD_TOO_COMMON',
    'with the user name known, a password containing it is refused as the server does',
  );
  t.equal(calls(), 0, 'no refused password left the phone');
  t.same(await setPasswordWithToken({ transport, token, password: PASSWORD_B }), { username: 'bilal', role: 'supervisor' });
});

t.test('a malformed token is refused without repeating it; an unknown one by the server', async (t) => {
  const secretish = 'not-a-token-but-secret-looking-value-12345';
  const bad = await rejection(setPasswordWithToken({ transport: A.transport(), token: secretish, password: PASSWORD_A }));
  t.equal(bad.code, 'INPUT_INVALID');
  t.notOk(JSON.stringify(bad).includes(secretish) || String(bad.message).includes(secretish), 'the value is not in the error');
  const unknown = await rejection(setPasswordWithToken({ transport: A.transport(), token: 'A'.repeat(43), password: PASSWORD_A }));
  t.equal(unknown.code, 'AUTH_RESET_TOKEN_INVALID');
  const { setPassword: _omitted, ...withoutSetPassword } = A.transport();
  const noCall = await rejection(setPasswordWithToken({ transport: withoutSetPassword, token: 'A'.repeat(43), password: PASSWORD_A }));
  t.equal(noCall.code, 'INPUT_INVALID');
});

t.test('after an admin reset the reset token sets a new password and the old one stops working', async (t) => {
  await setPasswordWithToken({ transport: A.transport(), token: await invite('chidi'), password: PASSWORD_A });
  const reset = await A.admin('POST', '/v1/users/chidi/password-reset', {});
  t.equal(reset.status, 200);
  const token = (reset.body['reset'] as { token: string }).token;
  t.same(await setPasswordWithToken({ transport: A.transport(), token, password: PASSWORD_B, username: 'chidi' }), { username: 'chidi', role: 'supervisor' });
  const { device } = await newDevice(t, { imei: '356938035643835' });
  t.equal((await rejection(device.loginOnline('chidi', PASSWORD_A, { transport: A.transport(), retry: { attempts: 1, baseDelayMs: 0 } }))).code, 'AUTH_INVALID_CREDENTIALS');
  await (await device.loginOnline('chidi', PASSWORD_B, { transport: A.transport() })).logout();
});
