// The BLE scan duty cycle (scan-duty.ts) against a fake scanner under fake timers: the start/stop sequence,
// duty 1 as continuous scanning, duty changes in the middle of a period, the paused time the resolver
// subtracts, holding the scan for a moment (suspend/resume), and commands that fail or are never confirmed.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  clampScanDuty,
  type DutyScanner,
  MIN_SCAN_DUTY,
  ScanDutyScheduler,
} from '../../../../transports/ble/scan-duty.js';

const PERIOD_MS = 10_000;

/** Records [ms since the test began, 'resume' | 'pause'] for every command. */
class FakeScanner implements DutyScanner {
  readonly calls: Array<[number, 'resume' | 'pause']> = [];
  constructor(readonly startMs: number) {}
  async resume(): Promise<void> {
    this.calls.push([Date.now() - this.startMs, 'resume']);
  }
  async pause(): Promise<void> {
    this.calls.push([Date.now() - this.startMs, 'pause']);
  }
}

function setup(options: { periodMs?: number } = {}) {
  const scanner = new FakeScanner(Date.now());
  const errors: Error[] = [];
  const scheduler = new ScanDutyScheduler({
    scanner,
    periodMs: options.periodMs ?? PERIOD_MS,
    onError: (error) => errors.push(error),
  });
  return { scanner, scheduler, errors };
}

describe('ScanDutyScheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('scans continuously at duty 1: one start, no pauses, no paused time', async () => {
    const { scanner, scheduler } = setup();
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(5 * PERIOD_MS);
    expect(scanner.calls).toEqual([[0, 'resume']]);
    expect(scheduler.isScanWindow).toBe(true);
    expect(scheduler.pausedMs()).toBe(0);
    await scheduler.stop();
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [5 * PERIOD_MS, 'pause'],
    ]);
  });

  it('at duty 0.25 scans the first 2.5 s of every 10 s period and counts the 7.5 s pauses', async () => {
    const { scanner, scheduler } = setup();
    expect(scheduler.setDuty(0.25)).toBe(true);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(3 * PERIOD_MS);
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [2_500, 'pause'],
      [10_000, 'resume'],
      [12_500, 'pause'],
      [20_000, 'resume'],
      [22_500, 'pause'],
      [30_000, 'resume'],
    ]);
    expect(scheduler.pausedMs()).toBe(3 * 7_500);
    await vi.advanceTimersByTimeAsync(4_000); // 1.5 s into the next pause
    expect(scheduler.isScanWindow).toBe(false);
    expect(scheduler.pausedMs()).toBe(3 * 7_500 + 1_500);
  });

  it('stops without further commands, whether stopped in a scan window or paused', async () => {
    const { scanner, scheduler } = setup();
    scheduler.setDuty(0.5);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(6_000); // paused
    await scheduler.stop();
    const paused = scanner.calls.length;
    expect(scanner.calls.at(-1)).toEqual([6_000, 'pause']);
    await vi.advanceTimersByTimeAsync(3 * PERIOD_MS);
    expect(scanner.calls).toHaveLength(paused);
    expect(scheduler.isActive).toBe(false);
    // Restarted: a new period at once.
    await scheduler.start();
    expect(scanner.calls.at(-1)).toEqual([36_000, 'resume']);
  });

  it('halts without a scan command (the owner stops the scanner) and keeps the paused time counted', async () => {
    const { scanner, scheduler } = setup();
    scheduler.setDuty(0.25);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(4_000);
    scheduler.halt();
    await vi.advanceTimersByTimeAsync(3 * PERIOD_MS);
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [2_500, 'pause'],
    ]);
    expect(scheduler.pausedMs()).toBe(1_500);
    expect(scheduler.isScanWindow).toBe(false);
  });

  it('applies a lower duty in the middle of a continuous scan by starting a period there', async () => {
    const { scanner, scheduler } = setup();
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(4_000);
    scheduler.setDuty(0.3);
    await vi.advanceTimersByTimeAsync(PERIOD_MS);
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [7_000, 'pause'],
      [14_000, 'resume'],
    ]);
  });

  it('ends a pause at once when the duty goes back to 1, and then scans without pausing', async () => {
    const { scanner, scheduler } = setup();
    scheduler.setDuty(0.25);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(5_000); // paused since 2.5 s
    expect(scheduler.setDuty(1)).toBe(true);
    await vi.advanceTimersByTimeAsync(3 * PERIOD_MS);
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [2_500, 'pause'],
      [5_000, 'resume'],
    ]);
    expect(scheduler.pausedMs()).toBe(2_500);
  });

  it('moves the pause of the current period when the duty changes within its scan window', async () => {
    const { scanner, scheduler } = setup();
    scheduler.setDuty(0.5);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(1_000);
    scheduler.setDuty(0.25); // the window now ends at 2.5 s
    await vi.advanceTimersByTimeAsync(2_000);
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [2_500, 'pause'],
    ]);
    await vi.advanceTimersByTimeAsync(8_000); // the next period began at 10 s; now 11 s
    scheduler.setDuty(0.1); // 1 s into the window, which is now 1 s long: pause at once
    await vi.advanceTimersByTimeAsync(0);
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [2_500, 'pause'],
      [10_000, 'resume'],
      [11_000, 'pause'],
    ]);
  });

  it('keeps the next period start when the duty changes during a pause', async () => {
    const { scanner, scheduler } = setup();
    scheduler.setDuty(0.25);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(5_000);
    scheduler.setDuty(0.5);
    await vi.advanceTimersByTimeAsync(PERIOD_MS);
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [2_500, 'pause'],
      [10_000, 'resume'],
      [15_000, 'pause'],
    ]);
  });

  it('reports an unchanged duty as no change, and keeps the duty within [MIN_SCAN_DUTY, 1]', () => {
    const { scheduler } = setup();
    expect(scheduler.setDuty(1)).toBe(false);
    expect(scheduler.setDuty(0.3)).toBe(true);
    expect(scheduler.setDuty(0.3)).toBe(false);
    expect(clampScanDuty(0)).toBe(MIN_SCAN_DUTY);
    expect(clampScanDuty(-1)).toBe(MIN_SCAN_DUTY);
    expect(clampScanDuty(2)).toBe(1);
    expect(clampScanDuty(Number.NaN)).toBe(1);
    expect(clampScanDuty(0.6)).toBe(0.6);
  });

  it('holds the scan stopped while suspended: no period start restarts it, the last resume does', async () => {
    const { scanner, scheduler } = setup();
    scheduler.setDuty(0.25);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(1_000);
    await scheduler.suspend();
    expect(scanner.calls.at(-1)).toEqual([1_000, 'pause']);
    expect(scheduler.isScanWindow).toBe(false);
    // Nested holds; the duty cycle's pause and the next period start pass silently underneath.
    await scheduler.suspend();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [1_000, 'pause'],
    ]);
    await scheduler.resume();
    expect(scanner.calls).toHaveLength(2);
    await scheduler.resume();
    // 11 s: in the second period's scan window, so the scan starts again; the cycle goes on as before.
    expect(scanner.calls.at(-1)).toEqual([11_000, 'resume']);
    await vi.advanceTimersByTimeAsync(1_500);
    expect(scanner.calls.at(-1)).toEqual([12_500, 'pause']);
    // An extra resume() is no command.
    await scheduler.resume();
    expect(scanner.calls.at(-1)).toEqual([12_500, 'pause']);
  });

  it('does not restart the scan on resume in a paused stretch of the duty cycle, nor once stopped', async () => {
    const { scanner, scheduler } = setup();
    scheduler.setDuty(0.25);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(2_000);
    await scheduler.suspend();
    await vi.advanceTimersByTimeAsync(1_000); // the pause at 2.5 s came and went
    await scheduler.resume();
    expect(scanner.calls).toEqual([
      [0, 'resume'],
      [2_000, 'pause'],
    ]);
    await vi.advanceTimersByTimeAsync(7_000);
    expect(scanner.calls.at(-1)).toEqual([10_000, 'resume']);

    await scheduler.suspend();
    scheduler.halt();
    await scheduler.resume();
    await vi.advanceTimersByTimeAsync(3 * PERIOD_MS);
    expect(scanner.calls.at(-1)).toEqual([10_000, 'pause']);
    // Suspended while not scanning at all: no command either way.
    const count = scanner.calls.length;
    await scheduler.suspend();
    await scheduler.resume();
    expect(scanner.calls).toHaveLength(count);
  });

  it('reports a failing or unconfirmed command and goes on with the next ones', async () => {
    const calls: string[] = [];
    let resumes = 0;
    const errors: Error[] = [];
    const scheduler = new ScanDutyScheduler({
      scanner: {
        resume: async () => {
          resumes++;
          calls.push('resume');
          if (resumes === 1) throw new Error('scan start refused');
          if (resumes === 2) await new Promise<void>(() => undefined); // never confirmed
        },
        pause: async () => {
          calls.push('pause');
        },
      },
      periodMs: PERIOD_MS,
      commandTimeoutMs: 1_000,
      onError: (error) => errors.push(error),
    });
    scheduler.setDuty(0.5);
    await scheduler.start();
    await vi.advanceTimersByTimeAsync(3 * PERIOD_MS);
    expect(calls).toEqual(['resume', 'pause', 'resume', 'pause', 'resume', 'pause', 'resume']);
    expect(errors.map((error) => error.message)).toEqual([
      'scan start refused',
      'BLE scan command not confirmed within 1000 ms',
    ]);
  });
});
