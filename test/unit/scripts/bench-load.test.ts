// The bench's load reading: a row is judged only when the machine was not too busy with other work, so the
// split between the bench's own processes and everything else must be right.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadSince, ownTreeTicks, readLoad } from '../../../scripts/bench/cpu-usage.js';
import { formatTable, type ResultRow, withLoad } from '../../../scripts/bench/table.js';

const SPIN_MS = 400;

/** A child process of this one that spins until it has used `ms` of CPU (however busy the machine is). */
function spinChild(ms: number): Promise<void> {
  const spin = `const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
    const end = cpu() + ${ms}; while (cpu() < end);`;
  const child = spawn(process.execPath, ['-e', spin]);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
}

const row: ResultRow = {
  benchmark: '99 something',
  nearmesh: '1 ms',
  baseline: '1 ms',
  ratio: '1.00×',
  goal: '≤ 2×',
  pass: 'PASS',
};

describe('bench load', () => {
  it("counts a child's CPU as the bench's own, after it ended and was reaped", async () => {
    const before = ownTreeTicks();
    await spinChild(SPIN_MS);
    // 100 ticks per second: 400 ms of CPU is 40 ticks (a tick or two lost to rounding).
    expect(ownTreeTicks() - before).toBeGreaterThanOrEqual(38);
  });

  it("does not count the bench's own spinning as other work", async () => {
    const [before, startedAt] = [readLoad(), performance.now()];
    await spinChild(SPIN_MS);
    const load = loadSince(before);
    // The spin's share of all cores' time over the window (less a little for the ticks' rounding).
    const spin = (0.9 * SPIN_MS) / ((performance.now() - startedAt) * availableParallelism());
    expect(load.busy).toBeGreaterThanOrEqual(spin);
    // Whatever else the machine did, the spin is not in `other`.
    expect(load.other).toBeLessThanOrEqual(load.busy - spin);
  });

  it('marks a judged row BUSY above 30 % other work, and leaves info rows alone', () => {
    expect(withLoad(row, { busy: 0.9, other: 0.31 }).pass).toBe('BUSY');
    expect(withLoad(row, { busy: 0.9, other: 0.29 }).pass).toBe('PASS');
    expect(withLoad({ ...row, pass: 'FAIL' }, { busy: 0.5, other: 0.5 }).pass).toBe('BUSY');
    expect(withLoad({ ...row, pass: '—' }, { busy: 0.5, other: 0.5 }).pass).toBe('—');
    // A row's own window wins over the section's.
    const own = withLoad({ ...row, load: { busy: 0.1, other: 0 } }, { busy: 0.9, other: 0.9 });
    expect(own.pass).toBe('PASS');
    expect(formatTable([own])).toContain('10 % (0 %)');
  });
});
