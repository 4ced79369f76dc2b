import { readFileSync, readdirSync } from 'node:fs';

/** Resident set size (bytes) of `pid` and all its descendants (the server and its embedded store), from /proc. */
export function processTreeRss(pid: number): number {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  let total = 0;
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop() as number;
    try {
      const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1];
      total += Number(kb ?? 0) * 1024;
    } catch {
      continue;
    }
    todo.push(...(children.get(p) ?? []));
  }
  return total;
}

/** The direct children of `pid` with their command lines (Linux /proc; empty elsewhere). */
export function childProcesses(pid: number): Array<{ readonly pid: number; readonly cmdline: string }> {
  let ids: number[] = [];
  try {
    ids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number);
  } catch {
    return [];
  }
  return ids.map((id) => {
    try {
      return { pid: id, cmdline: readFileSync(`/proc/${id}/cmdline`, 'utf8').replace(/\0/g, ' ') };
    } catch {
      return { pid: id, cmdline: '' };
    }
  });
}
