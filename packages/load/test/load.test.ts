// A small real load run: one server process, phones in two worker threads, everything over TLS.
import t from 'tap';
import { kdfBounds } from '@fieldvault/crypto';
import { formatReport, runLoad } from '../src/index.js';

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
  const text = formatReport(report);
  t.match(text, /invariant \(server holds exactly the acknowledged records\): holds — 18 acknowledged, 18 on the server/);
  t.match(text, /^POST \/v1\/sync\/push\s+\d+/m);
});
