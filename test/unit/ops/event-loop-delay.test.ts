import { afterEach, describe, expect, it } from 'vitest';
import { EventLoopDelay } from '../../../agent/ops/event-loop-delay.js';

let monitor: EventLoopDelay | undefined;
afterEach(() => monitor?.stop());

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('EventLoopDelay', () => {
  it('reads 0 before its first sample, and a block of the loop as at least its length less the resolution', async () => {
    monitor = new EventLoopDelay();
    monitor.start();
    expect(monitor.read()).toEqual({ delay_max_ms: 0, delay_p99_ms: 0 });
    await wait(50);
    const blockedUntil = Date.now() + 60;
    while (Date.now() < blockedUntil) {
      // the loop is blocked
    }
    await wait(30);
    expect(monitor.read().delay_max_ms).toBeGreaterThanOrEqual(50);
  });
});
