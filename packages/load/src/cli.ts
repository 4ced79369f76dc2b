#!/usr/bin/env node
// npm run load -- --devices 100 [--records 50 --photos 2 --photo-kib 48 --users 50 --workers 2 --pullers 20 --send-together --json out.json --keep]
import { writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { kdfBounds } from '@fieldvault/crypto';
import { formatReport, runLoad } from './run.js';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}
function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('an integer ≥ 0');
  return n;
}

const program = new Command('load')
  .description('N simulated phones (real SDK + SQLCipher, worker threads) syncing at once against one real server')
  .option('--devices <n>', 'phones', positive, 100)
  .option('--users <n>', 'field workers sharing the phones (default min(devices, 50))', positive)
  .option('--records <n>', 'records each phone registers (records per device)', count, 50)
  .option('--photos <n>', 'photos per device: that many of its records get one photo (at most --records)', count, 2)
  .option('--photo-kib <n>', 'photo size in KiB (a camera JPEG is ~200)', positive, 48)
  .option('--workers <n>', 'worker threads hosting the phones', positive, 2)
  .option('--pullers <n>', 'phones that run a full sync (pull everything) once all have sent; default min(devices, 20)', count)
  .option('--send-together', 'phase 1 in two steps: all phones log in and register first, then all send at once (a sending window without the login queue)')
  .option('--client-kdf <cost>', "phones' Argon2id cost: 'light' (the minimum the SDK allows; the server is under test) or 'default'", 'light')
  .option('--json <file>', 'also write the report as JSON')
  .option('--keep', 'keep the data directory')
  .action(async (o: { devices: number; users?: number; records: number; photos: number; photoKib: number; workers: number; pullers?: number; clientKdf: string; sendTogether?: boolean; json?: string; keep?: boolean }) => {
    if (o.clientKdf !== 'light' && o.clientKdf !== 'default') throw new InvalidArgumentError("--client-kdf is 'light' or 'default'");
    let last = 0;
    const report = await runLoad({
      devices: o.devices,
      ...(o.users === undefined ? {} : { users: o.users }),
      records: o.records,
      photos: o.photos,
      photoBytes: o.photoKib * 1024,
      workers: o.workers,
      ...(o.pullers === undefined ? {} : { pullers: o.pullers }),
      ...(o.clientKdf === 'light' ? { clientKdf: { m: kdfBounds.m.min, t: kdfBounds.t.min, p: 1 } } : {}),
      sendTogether: o.sendTogether === true,
      keep: o.keep === true,
      onProgress: (done, total) => {
        const pct = Math.floor((done / total) * 10);
        if (pct > last || done === total) {
          last = pct;
          process.stderr.write(`  ${done}/${total} phones done\n`);
        }
      },
    });
    console.log(formatReport(report));
    if (o.json !== undefined) writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
    if (!report.holding.ok || report.incompletePullers.length > 0) process.exitCode = 1;
  });

await program.parseAsync();
