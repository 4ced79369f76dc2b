// A worker thread hosting some of the simulated phones. Each phone is a real SDK `Device` on its own
// SQLCipher directory with its own IMEI; they run concurrently on this thread's event loop (the
// SQLite calls are synchronous, as on a phone, so two threads keep both cores busy).
// Phase 1: every phone logs in, registers its records and photos, and sends them (`direction:
// 'send'`). Phase 2, once the main thread says every phone has sent: the pullers run a full sync.
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { createDevice, createHttpTransport, type Device, type Session, type Transport } from '@fieldvault/client';
import { SqlCipherStorage } from '@fieldvault/storage-sqlcipher';
import type { MainMessage, PhoneOutcome, PhonePlan, PullOutcome, WorkerInput, WorkerMessage } from './messages.js';
import { syntheticJpeg } from './photo.js';
import { newCallLog, timedTransport, type CallLog } from './timed-transport.js';

const input = workerData as WorkerInput;
const calls = newCallLog();

/** Resolves on the main thread's message of this type. */
function word(type: MainMessage['type']): Promise<void> {
  return new Promise((resolve) => {
    const on = (m: MainMessage): void => {
      if (m.type !== type) return;
      // Removed once heard: a listener left on the port would keep this thread alive.
      parentPort?.off('message', on);
      resolve();
    };
    parentPort?.on('message', on);
  });
}
// Both listen from the start: a message that arrives while no listener is on the port is lost.
const sendWord = input.sendTogether ? word('send') : Promise.resolve();
const pullWord = word('pull');
let registered = 0;
/** Counts a phone as ready to send (registered, or failed before); tells the main thread when all are. */
function phoneRegistered(): void {
  registered++;
  if (registered === input.phones.length) parentPort?.postMessage({ type: 'registered' } satisfies WorkerMessage);
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

interface Live {
  readonly device: Device;
  readonly session: Session | undefined;
  readonly transport: Transport;
}

async function sendPhase(plan: PhonePlan, log: CallLog): Promise<{ outcome: PhoneOutcome; live: Live }> {
  const directory = join(input.directory, `phone-${plan.index}`);
  const device = await createDevice({
    directory,
    imei: plan.imei,
    storage: new SqlCipherStorage({ directory: join(directory, 'databases') }),
    ...(input.kdf === undefined ? {} : { kdf: input.kdf }),
  });
  const transport = timedTransport(
    createHttpTransport({ baseUrl: input.server.url, serverId: input.server.serverId, tls: { pinSha256: input.server.fingerprint }, timeoutMs: 120_000 }),
    log,
  );
  const created: Array<{ id: string; name: string; photoId?: string }> = [];
  const base = { index: plan.index, imei: plan.imei, username: plan.username, created };
  let session: Session | undefined;
  let syncMs = 0;
  let syncStartedAt = 0;
  let syncEndedAt = 0;
  let counted = false;
  try {
    session = await device.loginOnline(plan.username, plan.password, { transport, retry: { attempts: 30, baseDelayMs: 500 } });
    for (let i = 0; i < input.records; i++) {
      const name = `Load child ${plan.index}-${i}`;
      const record = await session.createRecord({ name, age: (i % 17) + 1, location: `Camp ${plan.index % 7}` });
      if (i < input.photos) {
        const photo = await session.addPhoto(record.id, syntheticJpeg(input.photoBytes, plan.index * 1000 + i));
        created.push({ id: record.id, name, photoId: photo.photoId });
      } else {
        created.push({ id: record.id, name });
      }
    }
    counted = true;
    phoneRegistered();
    await sendWord;
    const started = performance.now();
    syncStartedAt = Date.now();
    const summary = await session.sync({ transport, direction: 'send', retry: { attempts: 8, baseDelayMs: 250 } });
    syncEndedAt = Date.now();
    syncMs = performance.now() - started;
    const pending = await session.pendingCounts(input.server.serverId);
    return {
      outcome: { ...base, pushed: summary.pushed, pulled: 0, failed: summary.failed, photosUploaded: summary.photos.uploaded, photosFailed: summary.photos.failed, pending, syncMs, syncStartedAt, syncEndedAt },
      live: { device, session, transport },
    };
  } catch (err) {
    if (!counted) phoneRegistered();
    return {
      outcome: { ...base, pushed: 0, pulled: 0, failed: [], photosUploaded: 0, photosFailed: [], pending: { records: created.length, photos: 0 }, error: codeOf(err), syncMs, syncStartedAt, syncEndedAt },
      live: { device, session, transport },
    };
  }
}

async function pullPhase(index: number, live: Live): Promise<PullOutcome> {
  const started = performance.now();
  if (live.session === undefined) return { index, pulled: 0, photosDownloaded: 0, photosFailed: 0, error: 'NOT_LOGGED_IN', syncMs: 0 };
  try {
    const summary = await live.session.sync({ transport: live.transport, retry: { attempts: 8, baseDelayMs: 250 } });
    return { index, pulled: summary.pulled, photosDownloaded: summary.photos.downloaded, photosFailed: summary.photos.failed.length, syncMs: performance.now() - started };
  } catch (err) {
    return { index, pulled: 0, photosDownloaded: 0, photosFailed: 0, error: codeOf(err), syncMs: performance.now() - started };
  }
}

const live = new Map<number, Live>();
await Promise.all(
  input.phones.map(async (plan) => {
    const { outcome, live: l } = await sendPhase(plan, calls);
    live.set(plan.index, l);
    parentPort?.postMessage({ type: 'phone', outcome } satisfies WorkerMessage);
  }),
);
parentPort?.postMessage({ type: 'sent' } satisfies WorkerMessage);
await pullWord;
await Promise.all(
  input.pullers.map(async (index) => {
    const l = live.get(index);
    if (l === undefined) return;
    parentPort?.postMessage({ type: 'pulled', outcome: await pullPhase(index, l) } satisfies WorkerMessage);
  }),
);
for (const l of live.values()) await l.device.logout();
parentPort?.postMessage({ type: 'done', calls } satisfies WorkerMessage);
