// CPU time read from /proc, to tell whether a run was bound by the machine's cores rather than by waiting:
// a process's user + system time, and how busy all cores were between two readings.

import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** /proc counts in USER_HZ ticks, 100 per second on every Linux the bench runs on. */
const MS_PER_TICK = 10;

/** User + system CPU milliseconds from /proc/<pid>/stat: the process's own, and its waited-for children's. */
function statCpuMs(pid: number | 'self'): { own: number; reapedChildren: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces: state is field 3,
  // utime field 14, stime 15, cutime 16, cstime 17.
  const ticks = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .slice(11, 15)
    .map(Number);
  const [utime = NaN, stime = NaN, cutime = NaN, cstime = NaN] = ticks;
  if (!ticks.every(Number.isFinite)) throw new Error(`unreadable /proc/${pid}/stat`);
  return { own: (utime + stime) * MS_PER_TICK, reapedChildren: (cutime + cstime) * MS_PER_TICK };
}

/** User + system CPU milliseconds `pid` has used so far (its own, not its children's). */
export function processCpuMs(pid: number): number {
  return statCpuMs(pid).own;
}

/** CPU milliseconds of `pid`'s children that exited and were waited for, theirs included in turn. */
export function reapedChildrenCpuMs(pid: number | 'self'): number {
  return statCpuMs(pid).reapedChildren;
}

/** The machine's busy and total ticks over all cores so far (the "cpu" line of /proc/stat). */
export interface MachineTicks {
  readonly busy: number;
  readonly total: number;
}

export function machineTicks(): MachineTicks {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const total = ticks.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  if (!Number.isFinite(total) || total === 0) throw new Error('unreadable /proc/stat');
  return { busy: total - idle, total };
}

/** The share of all cores' time that was busy between two readings, and how many cores that is. */
export function busyShare(from: MachineTicks, to: MachineTicks): { share: number; cores: number } {
  const total = to.total - from.total;
  return { share: total > 0 ? (to.busy - from.busy) / total : 0, cores: availableParallelism() };
}

/**
 * CPU nanoseconds `pid` has used so far over all its threads (/proc/<pid>/task/<tid>/schedstat, the scheduler's
 * own count): exact where /proc/<pid>/stat counts 10 ms ticks, so an idle process's few ms per second show.
 */
export function processCpuNs(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ', 1)[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return total;
}

/** user + system ticks of a process's own threads and of its children it has reaped (/proc/<pid>/stat). */
function treeFields(stat: string): { ppid: number; ticks: number } {
  // Fields after the command name: state is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index]), 0);
  return { ppid: Number(fields[1]), ticks };
}

/**
 * CPU ticks this process and all its live descendants have used so far. A child that ended and was reaped is
 * counted in its parent's cutime/cstime, so the figure only grows as processes come and go.
 */
export function ownTreeTicks(): number {
  const processes = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      processes.set(pid, treeFields(readFileSync(`/proc/${pid}/stat`, 'utf8')));
    } catch {
      // the process ended between the listing and the read
    }
  }
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of processes) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  let total = 0;
  const pending = [process.pid];
  for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
    total += processes.get(pid)?.ticks ?? 0;
    pending.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** How busy the machine was between two readings: all of it, and with work other than this bench's own processes. */
export interface Load {
  /** Busy share of all cores' time. */
  readonly busy: number;
  /** The part of `busy` spent outside this process and its descendants. */
  readonly other: number;
}

export interface LoadReading {
  readonly machine: MachineTicks;
  readonly own: number;
}

export function readLoad(): LoadReading {
  return { machine: machineTicks(), own: ownTreeTicks() };
}

export function loadSince(from: LoadReading, to: LoadReading = readLoad()): Load {
  const total = to.machine.total - from.machine.total;
  if (total <= 0) return { busy: 0, other: 0 };
  const busy = (to.machine.busy - from.machine.busy) / total;
  const own = (to.own - from.own) / total;
  return { busy, other: Math.max(0, busy - own) };
}

/** CPU-seconds between two ownTreeTicks() readings. */
export function treeCpuSeconds(from: number, to: number): number {
  return ((to - from) * MS_PER_TICK) / 1000;
}
