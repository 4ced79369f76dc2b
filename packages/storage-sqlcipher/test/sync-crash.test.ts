// Crash safety of sync (issue 5): kill -9 of the phone (a child process running the sync) mid-push
// and mid-pull, and kill -9 of the server (a real apps/server process, restarted on the same data
// directory) mid-push. After a restart nothing is lost or duplicated and the checkpoints are
// consistent: a checkpoint never runs ahead of what the phone committed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import type { Device, Session, SyncBatchOptions, Transport } from '@fieldvault/client';
import type { ChildRecord } from '@fieldvault/protocol';
import { PASSWORD_A, PASSWORD_B, TS_LOADER, newDevice, rejection } from './helpers.js';
import { startServerProcess, type ServerProcess } from '@fieldvault/test-support';

const CHILD = fileURLToPath(new URL('./fixtures/sync-child.ts', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'fieldvault-sync-crash-'));
let server: ServerProcess = await startServerProcess(join(root, 's'), 'server-s', {
  env: { FIELDVAULT_AUTH_RATE_LIMIT: '100000', FIELDVAULT_RATE_LIMIT: '100000' },
});
t.teardown(async () => {
  await server.stop();
  rmSync(root, { recursive: true, force: true });
});
await server.createUser('amina', PASSWORD_A);
await server.createUser('bilal', PASSWORD_B);

const BATCH: SyncBatchOptions = { pushRecords: 10, pullRecords: 10 };
let nextImei = 356938035645000;

function runChild(args: Record<string, unknown>): Promise<{ signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TS_LOADER, CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
    // The arguments hold a password: stdin, never argv (argv is readable by every local user).
    child.stdin.end(JSON.stringify(args));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (_code, signal) => resolve({ signal, out }));
  });
}

/** A phone with `n` records of amina's, logged out (the child logs in again, as after a restart). */
async function phoneWith(t: Test, n: number): Promise<{ dir: string; device: Device; imei: string; ids: string[] }> {
  const imei = String(nextImei++);
  const { dir, device } = await newDevice(t, { imei });
  const s = await device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await s.createRecord({ name: `Crash ${imei} ${i}`, age: i % 17 })).id);
  await s.logout();
  return { dir, device, imei, ids };
}

function childArgs(p: { dir: string; imei: string }, kill: string, at: number): Record<string, unknown> {
  return { dir: p.dir, imei: p.imei, username: 'amina', password: PASSWORD_A, url: server.url, fingerprint: server.fingerprint, serverId: server.serverId, kill, at, batch: BATCH };
}

/** Every record on the phone is on the server, identical, each once; nothing is pending. */
async function assertConverged(t: Test, s: Session, mine: readonly string[]): Promise<void> {
  const local = await s.listRecords({ limit: 1000, includeDeleted: true });
  const onServer = await server.records();
  const serverIds = onServer.map((r) => r.id);
  t.equal(new Set(serverIds).size, serverIds.length, 'no record twice on the server');
  const byId = new Map<string, ChildRecord>(onServer.map((r) => [r.id, r]));
  for (const id of mine) t.ok(byId.has(id), `record ${id} reached the server`);
  t.equal(new Set(local.map((r) => r.id)).size, local.length, 'no record twice on the phone');
  const differing = local.filter((r) => !sameRecord(byId.get(r.id), r));
  t.same(differing.map((r) => r.id), [], 'every record on the phone is identical on the server');
  t.same(await s.pendingCounts(server.serverId), { records: 0, photos: 0 }, 'nothing pending');
}

function sameRecord(a: ChildRecord | undefined, b: ChildRecord): boolean {
  if (a === undefined) return false;
  const canon = (v: unknown): string =>
    Array.isArray(v) ? `[${v.map(canon).join(',')}]` : typeof v === 'object' && v !== null ? `{${Object.keys(v).sort().map((k) => `${k}:${canon((v as Record<string, unknown>)[k])}`).join(',')}}` : JSON.stringify(v);
  return canon(a) === canon(b);
}

// The SDK keeps two push batches in flight (sync-engine.ts), so when the phone dies the server may
// hold one batch more than the phone saw answered, and when the second answer arrives the first may
// not be acknowledged yet; what the phone acknowledged is exact after a commit.
for (const [kill, pendingAfter] of [
  ['push-sent', [25, 35]],
  ['push-committed', [15]],
] as const) {
  t.test(`kill -9 of the phone mid-push (${kill} of batch 2 of 4): after the restart nothing is lost or duplicated`, async (t) => {
    const p = await phoneWith(t, 35);
    const child = await runChild(childArgs(p, kill, 2));
    t.equal(child.signal, 'SIGKILL', `killed${child.signal === null ? `: ${child.out}` : ''}`);
    const onServer = new Set((await server.records()).map((r) => r.id));
    const held = p.ids.filter((id) => onServer.has(id)).length;
    t.ok(held === 20 || held === 30, `the server holds the two batches it answered, and at most the one batch in flight besides (${held})`);

    const off = await p.device.loginOffline('amina', PASSWORD_A);
    const pending = (await off.pendingCounts(server.serverId)).records;
    t.ok((pendingAfter as readonly number[]).includes(pending), `pending = what the phone had not recorded as acknowledged (${pending})`);
    t.same(await off.pendingCounts(server.serverId), { records: pending, photos: 0 }, 'no photo pending');
    t.equal((await off.listRecords({ limit: 1000 })).length, 35, 'every record still on the phone');
    await off.logout();

    const s = await p.device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
    const summary = await s.sync({ transport: server.transport(), batch: BATCH });
    t.equal(summary.pushed, pending, 'the next sync pushes the rest (an answered batch again: idempotent)');
    t.same(summary.failed, []);
    await assertConverged(t, s, p.ids);
  });
}

// Page n+1 is fetched while page n is committed, so page 2 may arrive before page 1 is committed
// (with a storage adapter whose commit yields to I/O): page 3 is asked for only after page 1's
// commit, so killing at its arrival makes sure at least one page was committed.
for (const [kill, at] of [
  ['pull-received', 3],
  ['pull-committed', 2],
] as const) {
  t.test(`kill -9 of the phone mid-pull (${kill}, page ${at}): the checkpoint is the last committed page; the restart completes without duplicates`, async (t) => {
    // Another phone puts 35 records on the server for this one to pull.
    const producer = await phoneWith(t, 35);
    const ps = await producer.device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
    await ps.sync({ transport: server.transport() });
    await ps.logout();

    const p = await phoneWith(t, 0);
    const child = await runChild(childArgs(p, kill, at));
    t.equal(child.signal, 'SIGKILL', `killed${child.signal === null ? `: ${child.out}` : ''}`);
    const committed = Number(/pulled-committed (\d+)/.exec(child.out)?.[1] ?? NaN);
    t.ok(committed > 0, `the child committed ${committed} pulled records`);

    const off = await p.device.loginOffline('amina', PASSWORD_A);
    const kept = (await off.listRecords({ limit: 1000, includeDeleted: true })).length;
    t.equal(kept, committed, 'exactly the committed pages survived');
    await off.logout();

    const s = await p.device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
    const summary = await s.sync({ transport: server.transport(), batch: BATCH });
    const total = (await server.records()).length;
    t.equal(kept + summary.pulled, total, 'the resumed pull started at the checkpoint of the last committed page: nothing skipped, nothing twice');
    t.equal((await s.listRecords({ limit: 1000, includeDeleted: true })).length, total, 'the phone holds every record of the server');
    await assertConverged(t, s, producer.ids);
  });
}

/** A transport that SIGKILLs the server while push number `which` is in flight. */
function killingServerDuring(which: number, onKilled: () => void): Transport {
  const base = server.transport();
  let pushes = 0;
  return {
    ...base,
    push: (token, request, options) => {
      const answer = base.push(token, request, options);
      if (++pushes === which) {
        // The request is on its way (or being processed): kill -9 the server now.
        setTimeout(() => {
          void server.kill().then(onKilled);
        }, 5);
      }
      return answer;
    },
  };
}

t.test('kill -9 of the server mid-push: the retries reach the restarted server and the sync completes, nothing lost or duplicated', async (t) => {
  const p = await phoneWith(t, 60);
  const s = await p.device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
  let restarted: Promise<ServerProcess> | undefined;
  const transport = killingServerDuring(3, () => {
    restarted = server.restart();
  });
  const summary = await s.sync({ transport, batch: BATCH, retry: { attempts: 14, baseDelayMs: 200 } });
  t.ok(restarted !== undefined, 'the server was killed during the sync');
  server = await (restarted as Promise<ServerProcess>);
  t.equal(summary.pushed, 60, 'every record acknowledged once the server was back');
  t.same(summary.failed, []);
  await assertConverged(t, s, p.ids);
});

t.test('kill -9 of the server mid-push without retries: the sync fails, and the next one after the restart completes', async (t) => {
  const p = await phoneWith(t, 40);
  const s = await p.device.loginOnline('amina', PASSWORD_A, { transport: server.transport() });
  let dead: () => void = () => undefined;
  const killed = new Promise<void>((resolve) => (dead = resolve));
  // Push 3: it is sent once batch 1 is acknowledged (two batches are in flight at a time).
  const err = await rejection(s.sync({ transport: killingServerDuring(3, () => dead()), batch: BATCH, retry: { attempts: 1, baseDelayMs: 0 } }));
  t.ok(['TRANSPORT_UNREACHABLE', 'TRANSPORT_BAD_RESPONSE'].includes(err.code ?? ''), `the sync failed (${String(err.code)})`);
  await killed;
  server = await server.restart();
  const pending = await s.pendingCounts(server.serverId);
  t.ok(pending.records >= 10 && pending.records <= 30, `what the server answered is acknowledged, the rest pending (${pending.records})`);
  const summary = await s.sync({ transport: server.transport(), batch: BATCH });
  t.equal(summary.pushed, pending.records);
  await assertConverged(t, s, p.ids);
});
