// docs/sdk.md's code blocks are regions of examples/sdk-tour.ts, and the tour runs: offline on its
// own, then online against a real server process (embedded store, pinned self-signed TLS) with
// the default Argon2id parameters, exactly as `npm run example:sdk` runs it.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { isDeleted } from '@fieldvault/protocol';
import { startServerProcess } from '@fieldvault/test-support';
import { PASSWORD_A, jpegWithGps } from './helpers.js';

const EXAMPLE_SOURCE = fileURLToPath(new URL('../examples/sdk-tour.ts', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../dist-examples/sdk-tour.js', import.meta.url));
const GUIDE = fileURLToPath(new URL('../../../docs/sdk.md', import.meta.url));

/** The lines between `// #region name` and `// #endregion`, with the common indentation removed. */
function regions(source: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of source.matchAll(/^[ \t]*\/\/ #region (\S+)\n([\s\S]*?)^[ \t]*\/\/ #endregion$/gm)) {
    const lines = (m[2] ?? '').replace(/\n$/, '').split('\n');
    const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)?.[0].length ?? 0));
    out.set(m[1] ?? '', lines.map((l) => l.slice(indent)).join('\n'));
  }
  return out;
}

function run(args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [EXAMPLE, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('every code block of the SDK guide is a region of the example, and every region is in the guide', async (t) => {
  const source = regions(readFileSync(EXAMPLE_SOURCE, 'utf8'));
  const blocks = [...readFileSync(GUIDE, 'utf8').matchAll(/^```ts\n([\s\S]*?)\n```$/gm)].map((m) => m[1] ?? '');
  t.ok(source.size >= 7, `${source.size} regions`);
  t.equal(blocks.length, source.size, 'as many blocks as regions');
  const quoted = new Set(blocks);
  for (const [name, text] of source) t.ok(quoted.has(text), `region ${name} is quoted verbatim`);
});

t.test('the example needs a directory and a password', async (t) => {
  const r = await run([], {});
  t.equal(r.code, 2);
  t.match(r.stderr, /usage: FIELDVAULT_EXAMPLE_PASSWORD=/);
});

t.test('the tour runs offline, then online with records, a photo and a sync the server holds', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'fieldvault-sdk-example-'));
  const server = await startServerProcess(join(root, 'server'), 'server-example', {
    env: { FIELDVAULT_AUTH_RATE_LIMIT: '100000', FIELDVAULT_RATE_LIMIT: '100000' },
  });
  t.teardown(async () => {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  });
  await server.createUser('amina', PASSWORD_A);

  const offline = await run(['--dir', join(root, 'offline-phone')], { FIELDVAULT_EXAMPLE_PASSWORD: PASSWORD_A });
  t.equal(offline.code, 0, offline.stderr);
  t.match(offline.stdout, /^offline: noor signed up and registered [0-9a-f-]{36}$/m);
  t.match(offline.stdout, /^offline: a wrong password gives VAULT_WRONG_PASSWORD$/m);
  t.notMatch(offline.stdout, /^online:/m, 'no server, no online part');

  const photo = join(root, 'child.jpg');
  writeFileSync(photo, jpegWithGps('GPS-CANARY'));
  const online = await run(
    ['--dir', join(root, 'phone'), '--url', server.url, '--server-id', server.serverId, '--pin', server.fingerprint, '--user', 'amina', '--photo', photo],
    { FIELDVAULT_EXAMPLE_PASSWORD: PASSWORD_A },
  );
  t.equal(online.code, 0, online.stderr);
  t.match(online.stdout, /^online: amina logged into server-example$/m);
  const id = /^records: ([0-9a-f-]{36}) created, local search found (\d+) \((\d+) named "child"\)$/m.exec(online.stdout);
  t.ok(id, 'record line');
  t.equal(Number(id?.[2]), 1, 'search finds the one live child of the verified database');
  t.equal(Number(id?.[3]), 1, 'and the count agrees');
  t.match(online.stdout, /^photos: \d+ bytes of image\/jpeg, sha256 [0-9a-f]{64} stored encrypted and read back$/m);
  t.match(online.stdout, /^push 2\/2 records/m, 'progress events reach the app');
  t.match(online.stdout, /^sync: pushed 2, pulled \d+, failed 0, photos up 1; pending 0$/m);

  const held = await server.records();
  const child = held.find((r) => r.id === id?.[1]);
  t.ok(child, 'the server holds the record');
  t.equal(child?.fields['caregiver']?.value, 'Aunt');
  const refs = Object.values(child?.photos ?? {});
  t.equal(refs.filter((p) => p.removedAt === undefined).length, 1, 'and its photo');
  t.equal(refs.filter((p) => p.removedAt !== undefined && p.removedBy === 'amina').length, 1, 'and the removed one as a tombstone');
  const scratch = held.find((r) => r.fields['name']?.value === 'Entered by mistake');
  t.ok(scratch !== undefined && isDeleted(scratch), 'the deleted record reached the server as a tombstone');
  t.notOk(held.some((r) => r.fields['name']?.value === 'Child A'), "the newcomer's unverified record stays on the phone");
});
