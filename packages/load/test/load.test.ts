// A small real load run: one server process, phones in two worker threads, everything over TLS.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { kdfBounds } from '@fieldvault/crypto';
import { formatReport, runLoad, type LoadReport } from '../src/index.js';

// The built command, as `npm run load` runs it (the root `npm test` builds every package first).
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

t.test('three phones sync at once and the server holds exactly what it acknowledged', async (t) => {
  const report = await runLoad({ devices: 3, records: 6, photos: 2, photoBytes: 8192, workers: 2, clientKdf: { m: kdfBounds.m.min, t: kdfBounds.t.min, p: 1 } });
  t.same(report.phoneFailures, []);
  t.equal(report.recordsPushed, 18);
  t.equal(report.photosUploaded, 6);
  t.equal(report.serverRecords, 18);
  t.equal(report.pullers, 3, 'every phone ran the full sync of phase 2');
  t.equal(report.recordsPulled, 3 * 18, 'each received every record the server holds');
  t.same(report.incompletePullers, []);
  t.equal(report.photosDownloaded, 3 * 2 * 2, "and the other two phones' photos");
  t.match(report.holding, { ok: true, acknowledged: 18, missing: [], unexpected: [], duplicates: [], missingPhotos: [] });
  const byName = Object.fromEntries(report.endpoints.map((e) => [e.endpoint, e]));
  t.equal(byName['POST /v1/auth/login']?.count, 3, 'one login per phone');
  t.ok((byName['POST /v1/sync/push']?.count ?? 0) >= 3, 'every phone pushed');
  t.ok((byName['GET /v1/sync/pull']?.count ?? 0) >= 3, 'every phone pulled');
  t.equal(byName['photo upload (GET status + PUT)']?.count, 6);
  t.ok(report.serverRssMiB.peak >= report.serverRssMiB.start && report.serverRssMiB.start > 0, 'server memory sampled');
  t.ok(report.photoUploadMBps > 0 && report.photoDownloadMBps > 0, 'photo payload rates measured');
  t.equal(report.disk.senderPhone, null, 'every phone pulled, so none only sent');
  // Each puller holds all 6 photos, encrypted (AES-GCM adds a header and a tag per chunk).
  t.ok((report.disk.pullerPhone?.photoBytes ?? 0) >= 6 * 8192, `a puller's photo folder holds every photo (${report.disk.pullerPhone?.photoBytes})`);
  t.ok((report.disk.pullerPhone?.databaseBytes ?? 0) > 0, "a puller's databases measured");
  t.ok((report.disk.serverParts['couch'] ?? 0) > 0 && report.disk.serverBytes >= (report.disk.serverParts['couch'] ?? 0), "the server's store measured");
  const text = formatReport(report);
  t.match(text, /^disk: server data [\d.]+ MiB \(.*couch [\d.]+/m);
  t.match(text, /invariant \(server holds exactly the acknowledged records\): holds — 18 acknowledged, 18 on the server/);
  t.match(text, /^POST \/v1\/sync\/push\s+\d+/m);
});

t.test('the CLI grows records and photo size by option, sends together on request, and a puller holds more than a phone that only sent', async (t) => {
  const dir = t.testdir();
  const json = join(dir, 'report.json');
  const run = spawnSync(process.execPath, [CLI, '--devices', '3', '--records', '30', '--photos', '1', '--photo-kib', '200', '--pullers', '1', '--workers', '2', '--send-together', '--json', json], { encoding: 'utf8' });
  t.equal(run.status, 0, 'the run passes its checks', { stdout: run.stdout, stderr: run.stderr });
  t.match(run.stdout, /3 phones \(1 pulling\), 3 users, 30 records \+ 1 photos of 200 KiB each/);
  const report = JSON.parse(readFileSync(json, 'utf8')) as LoadReport;
  t.equal(report.serverRecords, 90);
  t.equal(report.photoBytes, 200 * 1024);
  t.equal(report.recordsPulled, 90, 'the puller received every record');
  t.equal(report.photosDownloaded, 2, "and the other phones' photos");
  t.equal(report.sendTogether, true);
  t.ok(report.registerSeconds > 0, 'phase 1 waited for every phone to register');
  t.equal(report.syncsBeforeSendWord, 0, 'no phone started sending before the word');
  t.match(run.stdout, /then sent together/);
  for (const phase of ['register', 'send', 'pull'] as const) {
    const cores = report.cpuCores[phase];
    t.ok(cores !== undefined && cores['server'] !== undefined && cores['store'] !== undefined && cores['phones'] !== undefined, `CPU measured by process in the ${phase} phase`);
  }
  t.ok(report.serverRssMiB.peakByPhase.register !== undefined && report.serverRssMiB.peakByPhase.send !== undefined && report.serverRssMiB.peakByPhase.pull !== undefined, 'memory peak sampled in each phase');
  const sender = report.disk.senderPhone;
  const puller = report.disk.pullerPhone;
  t.ok(sender !== null && puller !== null);
  if (sender === null || puller === null) return;
  // One photo of its own vs all three (each ≥ 200 KiB once encrypted).
  t.ok(sender.photoBytes >= 200 * 1024 && sender.photoBytes < 2 * 200 * 1024, `sender photos ${sender.photoBytes}`);
  t.ok(puller.photoBytes >= 3 * 200 * 1024, `puller photos ${puller.photoBytes}`);
  t.ok(puller.databaseBytes > sender.databaseBytes, `puller database ${puller.databaseBytes} > sender ${sender.databaseBytes}`);
});
