import { existsSync } from 'node:fs';
import t from 'tap';
import { CpuMeter } from '../src/index.js';

t.test('a CPU meter reports cores per named process and for other programs', { skip: !existsSync('/proc/stat') && 'needs Linux /proc' }, async (t) => {
  const meter = new CpuMeter({ self: process.pid });
  for (let phase = 0; phase < 2; phase += 1) {
    meter.start();
    let x = 0;
    for (let i = 0; i < 2e6; i += 1) x += i % 7; // some work of our own
    t.ok(x > 0);
    meter.stop();
  }
  const cores = meter.cores();
  t.same(Object.keys(cores).sort(), ['others', 'self']);
  t.ok((cores.self ?? -1) >= 0);
  t.ok((cores.others ?? -1) >= 0);
});

t.test('a CPU meter that never ran reports nothing', async (t) => {
  t.same(new CpuMeter({ self: process.pid }).cores(), {});
});
