// Crash audit s16 #1 with real processes: a server killed (SIGKILL) between the first-admin setup's
// two writes (the setup claim, then the admin) used to come back with no admin and no setup token.
// The store is left exactly as that kill leaves it: the claim document as the route writes it
// (`meta:setup` in the users database), no user; then the server process is really killed.
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import t from 'tap';
import { startEmbeddedCouch } from '@fieldvault/couch-embedded';
import { startServerChild, type ServerChild } from './server-child.js';

const PASSWORD = 'granite owls measure the slow river';

function post(url: string, ca: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'POST', ca, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } }, (res) => {
      let out = '';
      res.on('data', (d: Buffer) => (out += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: out === '' ? {} : (JSON.parse(out) as Record<string, unknown>) }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret, computed here, independently of the server. */
function totpCode(base32: string, ms: number): string {
  let bits = '';
  for (const c of base32.replace(/=+$/, '')) bits += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(ms / 30_000)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

t.test('a server killed between the setup claim and the admin keeps its token; setup then creates the admin, once', async (t) => {
  const dir = t.testdir();
  const dataDir = join(dir, 'data');
  const tokenFile = join(dataDir, 'secrets', 'setup-token');
  const couch = await startEmbeddedCouch({ dataDir: join(dir, 'couch') });
  t.teardown(() => couch.stop());
  const env = { COUCHDB_URL: couch.url, FIELDVAULT_HTTP_PORT: 'off', FIELDVAULT_SERVER_ID: 'server-a' };
  const children: ServerChild[] = [];
  t.teardown(() => { for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL'); });

  const first = await startServerChild(dataDir, env);
  children.push(first);
  const token = readFileSync(tokenFile, 'utf8').trim();
  const ca = readFileSync(join(dataDir, 'tls', 'dev-cert.pem'), 'utf8');
  // The route's first write, as it makes it; then the kill lands before its second.
  const auth = `Basic ${Buffer.from(`${couch.credential.username}:${couch.credential.password}`).toString('base64')}`;
  const claim = await fetch(`${couch.origin}/fieldvault_users/meta%3Asetup`, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ at: Date.now(), username: 'admin', type: 'meta' }),
  });
  t.equal(claim.status, 201, 'the claim is in the store');
  first.child.kill('SIGKILL');
  await first.exited;
  t.equal(first.child.signalCode, 'SIGKILL', 'killed, not stopped');

  const second = await startServerChild(dataDir, env);
  children.push(second);
  t.ok(existsSync(tokenFile), 'the setup token file is kept: no admin exists yet');
  t.equal(readFileSync(tokenFile, 'utf8').trim(), token, 'the same token');
  t.match(second.output(), 'one-time setup token', 'the banner still offers the setup');

  const made = await post(`${second.url}/v1/setup/admin`, ca, { setupToken: token, username: 'admin', password: PASSWORD });
  t.equal(made.status, 201, JSON.stringify(made.json));
  // The admin logs in: enrol TOTP with the password, confirm with the first code: a console session.
  const enrol = await post(`${second.url}/v1/admin/totp/enrol`, ca, { username: 'admin', password: PASSWORD });
  t.equal(enrol.status, 200, JSON.stringify(enrol.json));
  t.match(String(enrol.json['otpauthUri']), /^otpauth:\/\/totp\/fieldvault%20server-a:admin\?/, 'the authenticator entry names the server (audit s16 F10)');
  const confirm = await post(`${second.url}/v1/admin/totp/confirm`, ca, { username: 'admin', password: PASSWORD, code: totpCode(String(enrol.json['secret']), Date.now()) });
  t.equal(confirm.status, 200, JSON.stringify(confirm.json));
  t.match(confirm.json, { session: { token: String, user: { username: 'admin', role: 'admin' } } }, 'the admin is logged in');

  const again = await post(`${second.url}/v1/setup/admin`, ca, { setupToken: token, username: 'admin2', password: PASSWORD });
  t.equal(again.json['code'], 'AUTH_SETUP_COMPLETED', 'the token is single-use once the admin exists');
  second.child.kill('SIGINT');
  t.equal(await second.exited, 0);

  const third = await startServerChild(dataDir, env);
  children.push(third);
  t.notOk(existsSync(tokenFile), 'with the admin in place the next start deletes the token file');
  third.child.kill('SIGINT');
  t.equal(await third.exited, 0);
});
