// Server identity (field audit, item 3): the phone configures each server under an id that names
// its sync state and temporary database. A server that names another id in its challenge answer
// must be refused before the password, a key or a sign-up request is sent
// (TRANSPORT_SERVER_ID_MISMATCH), and `Device.identifyServer` reads the id for an "add server"
// screen. The real server is asked too; the id-telling answers come from a local HTTPS server
// presenting the real server's own certificate (so the pin holds), as in sync-hostile.test.ts.
import t, { type Test } from 'tap';
import { createHttpTransport } from '@fieldvault/client';
import { startIdentityStandIn, type ServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A, newDevice, rejection, snapshot, startServers } from './helpers.js';

const [A] = (await startServers(t, 'identity', ['server-a'], [['amina', PASSWORD_A]])) as [ServerProcess];
const NO_RETRY = { attempts: 1, baseDelayMs: 0 };

/** A stand-in with A's certificate whose challenge names `serverId` (closed when the test ends). */
async function telling(t: Test, serverId: string): Promise<{ url: string; paths: string[] }> {
  const standIn = await startIdentityStandIn(A, serverId);
  t.teardown(() => standIn.close());
  return standIn;
}

function transportTo(url: string, serverId: string) {
  return createHttpTransport({ baseUrl: url, serverId, tls: { pinSha256: A.fingerprint }, timeoutMs: 5_000 });
}

t.test('a server naming another id is refused before the password is sent; nothing changes on the phone', async (t) => {
  const standIn = await telling(t, 'server-real');
  const { dir, device } = await newDevice(t);
  await device.signUpOffline('amina', PASSWORD_A);
  const before = snapshot(dir);
  const err = await rejection(device.loginOnline('amina', PASSWORD_A, { transport: transportTo(standIn.url, 'server-nope'), retry: NO_RETRY }));
  t.equal(err.code, 'TRANSPORT_SERVER_ID_MISMATCH');
  t.match(err, { details: { serverId: 'server-nope', reported: 'server-real' } });
  t.same(standIn.paths, ['/v1/auth/challenge'], 'only the challenge was asked: no login (password, key) was sent');
  t.same(snapshot(dir), before, 'the phone is byte-identical');
  const signup = await rejection(device.requestAccount('amina', PASSWORD_A, { transport: transportTo(standIn.url, 'server-nope') }));
  t.equal(signup.code, 'TRANSPORT_SERVER_ID_MISMATCH');
  t.notOk(standIn.paths.includes('/v1/signups'), 'no sign-up request (records, password) was sent');
  const { 'device-key.json': _made, ...after } = snapshot(dir);
  t.same(after, before, 'nothing changed but the device key pair a sign-up request makes first');
});

t.test('a server naming the configured id passes the check (the login goes on to the server)', async (t) => {
  const standIn = await telling(t, 'server-real');
  const { device } = await newDevice(t);
  const err = await rejection(device.loginOnline('amina', PASSWORD_A, { transport: transportTo(standIn.url, 'server-real'), retry: NO_RETRY }));
  t.equal(err.code, 'AUTH_INVALID_CREDENTIALS', "the stand-in's own answer to the login");
  t.same(standIn.paths, ['/v1/auth/challenge', '/v1/auth/login']);
});

t.test('identifyServer reads the id a server tells, whatever id the transport was made with', async (t) => {
  const standIn = await telling(t, 'server-real');
  const { device } = await newDevice(t);
  t.same(await device.identifyServer(transportTo(standIn.url, 'unknown')), { serverId: 'server-real' });
  t.same(await device.identifyServer(A.transport()), { serverId: 'server-a' }, 'the real server names itself in its challenge');
  await (await device.loginOnline('amina', PASSWORD_A, { transport: A.transport() })).logout();
  const wrong = await rejection(device.loginOnline('amina', PASSWORD_A, { transport: A.transport({ serverId: 'server-z' }) }));
  t.equal(wrong.code, 'TRANSPORT_SERVER_ID_MISMATCH', 'a phone that configured the real server under another id is refused');
  t.equal((await rejection(device.identifyServer(undefined))).code, 'INPUT_INVALID');
});
