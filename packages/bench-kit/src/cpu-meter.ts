import { existsSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** CPU seconds (user + system, all threads) a process has used so far; Linux /proc only. */
function cpuSeconds(pid: number): number | undefined {
  const file = `/proc/${pid}/stat`;
  if (!existsSync(file)) return undefined;
  const stat = readFileSync(file, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds the whole machine has spent busy so far (all cores; user, nice, system, irq,
 * softirq and steal from /proc/stat), so that a phase can say how much went to other work.
 */
function machineBusySeconds(): number | undefined {
  if (!existsSync('/proc/stat')) return undefined;
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/**
 * CPU used by some processes (by pid) over one or more timed phases, summed over the phases:
 * `start()` … `stop()` as many times as needed, then `cores()`. Linux only (reads /proc); elsewhere
 * `cores()` is empty. Measures what a bench cannot see from inside: whether the cores were
 * saturated, by whom, and how much other programs took on a shared machine.
 */
export class CpuMeter {
  private wallSeconds = 0;
  private readonly used = new Map<string, number>();
  private open: { t0: number; before: Map<string, number | undefined> } | undefined;

  constructor(private readonly pids: Readonly<Record<string, number>>) {}

  start(): void {
    const before = new Map(Object.entries(this.pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
    before.set('machine', machineBusySeconds());
    this.open = { t0: performance.now(), before };
  }

  stop(): void {
    if (this.open === undefined) return;
    this.wallSeconds += (performance.now() - this.open.t0) / 1000;
    for (const [k, pid] of Object.entries(this.pids)) {
      const a = this.open.before.get(k);
      const b = cpuSeconds(pid);
      if (a !== undefined && b !== undefined) this.used.set(k, (this.used.get(k) ?? 0) + (b - a));
    }
    const m0 = this.open.before.get('machine');
    const m1 = machineBusySeconds();
    if (m0 !== undefined && m1 !== undefined) this.used.set('machine', (this.used.get('machine') ?? 0) + (m1 - m0));
    this.open = undefined;
  }

  /**
   * Cores busy on average per process, and `others`: the rest of the machine's busy time (other
   * programs on a shared machine), e.g. `{ server: 1.9, store: 0.1, loadgen: 0.05, others: 0.02 }`.
   */
  cores(): Record<string, number> {
    const out: Record<string, number> = {};
    let ours = 0;
    for (const [k, v] of this.used) {
      if (k === 'machine') continue;
      out[k] = round2(v / this.wallSeconds);
      ours += v;
    }
    const machine = this.used.get('machine');
    if (machine !== undefined) out.others = round2(Math.max(0, machine - ours) / this.wallSeconds);
    return out;
  }
}
