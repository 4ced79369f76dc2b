// A relay that checks nothing: the cheapest process that can stand between a phone and the store.
// Run by relay-ceiling.ts as its own process (like our server), never by a server or the SDK.
//
// POST /push with a push body ({"records":[…]}): JSON.parse, wrap each record in the envelope the
// server stores (storedDoc), JSON.stringify, one `_bulk_docs` to the store over a keep-alive pool,
// answer {"ok":<documents stored>}. No authentication, strict parsing, schema, merge, rights, form,
// audit or device bookkeeping: what is left is the hop itself (TLS, one parse, one serialisation).
//
// argv: <database>; env FIELDVAULT_RELAY_STORE_URL: the store URL with its credential (never on argv,
// which ps shows to every account). Prints one JSON line {"port","cert"} once listening on 127.0.0.1.
import { createServer } from 'node:https';
import { generate } from 'selfsigned';
import { Pool } from 'undici';
import type { ChildRecord } from '@fieldvault/protocol';
import { storedDoc } from './baselines.js';

const [db] = process.argv.slice(2);
const storeUrl = process.env['FIELDVAULT_RELAY_STORE_URL'];
if (storeUrl === undefined || db === undefined) throw new Error('usage: FIELDVAULT_RELAY_STORE_URL=<store URL> check-free-relay <database>');
// undici takes an origin; the URL's user:password becomes a Basic header, as nano does it.
const parsed = new URL(storeUrl);
const authorization =
  parsed.username === '' ? undefined : `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}`;
const store = new Pool(parsed.origin, { connections: 8 });
const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
  keyType: 'ec',
  curve: 'P-256',
  algorithm: 'sha256',
  notAfterDate: new Date(Date.now() + 86_400_000),
  extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
});
const server = createServer({ key: pems.private, cert: pems.cert, keepAliveTimeout: 10_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async () => {
      const push = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { records: ChildRecord[] };
      const body = JSON.stringify({ docs: push.records.map(storedDoc) });
      const headers = { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) };
      const answer = await store.request({ path: `/${db}/_bulk_docs`, method: 'POST', headers, body });
      const results = (await answer.body.json()) as Array<{ ok?: boolean }>;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: results.filter((r) => r.ok === true).length }));
    })().catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  process.stdout.write(`${JSON.stringify({ port: address.port, cert: pems.cert })}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  void store.close().then(() => process.exit(0));
});
