import { afterEach, describe, expect, it } from 'vitest';
import { EventLoopDelay } from '../../../agent/ops/event-loop-delay.js';

let monitor: EventLoopDelay | undefined;
afterEach(() => monitor?.stop());

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // the loop is blocked
  }
}

describe('EventLoopDelay', () => {
  it('reads 0 before its first sample, and a block of the loop as at least its length less the resolution', async () => {
    monitor = new EventLoopDelay();
    monitor.start();
    expect(monitor.read()).toEqual({ delay_max_ms: 0, delay_p99_ms: 0 });
    await wait(50);
    block(60);
    await wait(30);
    expect(monitor.read().delay_max_ms).toBeGreaterThanOrEqual(50);
  });

  it('stops sampling finely once the loop is quiet, still sees a stall, and samples finely again after it', async () => {
    monitor = new EventLoopDelay({ pulseMs: 50, quietPulses: 3 });
    monitor.start();
    expect(monitor.fine).toBe(true);
    await wait(400);
    expect(monitor.fine).toBe(false);
    block(200);
    await wait(120);
    expect(monitor.read().delay_max_ms).toBeGreaterThanOrEqual(100);
    expect(monitor.fine).toBe(true);
  });
});
