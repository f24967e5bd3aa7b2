// What /proc says about a process the test started: its resident memory and its scheduler state.
import { readFileSync } from 'node:fs';

/** Resident set in MB (VmRSS). */
export function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/** The state letter of /proc/PID/stat: R running, S sleeping, T stopped (SIGTSTP/SIGSTOP), Z zombie ... */
export function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name in parentheses may hold spaces and ')': the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}
