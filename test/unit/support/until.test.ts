// The tests' one wait (test/support/until.ts): it returns what the condition found, names what it waited
// for when it gives up, lets a condition's error through at once, and keeps real time under fake timers.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { until } from '../../support/until.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('until', () => {
  it('returns the first truthy value of a sync or async condition', async () => {
    let checks = 0;
    expect(await until('the third check', () => (++checks >= 3 ? { checks } : undefined))).toEqual({
      checks: 3,
    });
    expect(await until('an async answer', async () => 'yes')).toBe('yes');
  });

  it('fails after the timeout with what it waited for, told when it gives up', async () => {
    let state = 'starting';
    const started = Date.now();
    const waiting = until(
      () => `ready (still ${state})`,
      () => false,
      { timeoutMs: 100, intervalMs: 10 },
    );
    state = 'stuck';
    await expect(waiting).rejects.toThrow('timed out after 100 ms waiting for ready (still stuck)');
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
  });

  it('lets an error of the condition through at once', async () => {
    const started = Date.now();
    await expect(
      until('a child that exited', () => {
        throw new Error('exited with 1');
      }),
    ).rejects.toThrow('exited with 1');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('keeps real time when the test fakes the timers', async () => {
    vi.useFakeTimers();
    let flag = false;
    globalThis.setTimeout(() => {
      flag = true;
    }, 60_000);
    const waiting = until('the faked minute', () => flag, { timeoutMs: 5_000 });
    vi.advanceTimersByTime(60_000);
    expect(await waiting).toBe(true);
    await expect(until('what never comes', () => false, { timeoutMs: 50 })).rejects.toThrow(/50 ms/);
  });
});
