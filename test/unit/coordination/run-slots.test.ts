// Run slots: runs at once per action and across the agent, first come first served, bounded queues that
// answer busy when full, and a deadline that ends a wait without a run.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RunSlots, type SlotOutcome } from '../../../agent/coordination/run-slots.js';

const FAR = 60_000;

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** Acquires and records the outcome as soon as it is known. */
function take(
  slots: RunSlots,
  action: string,
  limits: { running: number; queued: number },
  deadlineMs = FAR,
) {
  const taken: { outcome?: SlotOutcome } = {};
  void slots.acquire(action, limits, Date.now() + deadlineMs).then((outcome) => {
    taken.outcome = outcome;
  });
  return taken;
}

function release(taken: { outcome?: SlotOutcome }): void {
  if (taken.outcome?.kind !== 'run') throw new Error(`expected a run, got ${JSON.stringify(taken.outcome)}`);
  taken.outcome.release();
}

describe('run slots', () => {
  it("runs at most an action's concurrency at once; the next waits and runs when one ends", async () => {
    const slots = new RunSlots({ running: 16, queued: 64 });
    const limits = { running: 2, queued: 4 };
    const first = take(slots, 'relay.set', limits);
    const second = take(slots, 'relay.set', limits);
    const third = take(slots, 'relay.set', limits);
    await vi.advanceTimersByTimeAsync(0);
    expect([first, second, third].map((taken) => taken.outcome?.kind)).toEqual(['run', 'run', undefined]);
    expect(slots.running).toBe(2);
    expect(slots.queued).toBe(1);
    release(first);
    await vi.advanceTimersByTimeAsync(0);
    expect(third.outcome?.kind).toBe('run');
    expect(slots.running).toBe(2);
  });

  it('keeps to the agent-wide limit across actions, and starts the oldest waiting call first', async () => {
    const slots = new RunSlots({ running: 2, queued: 64 });
    const limits = { running: 4, queued: 4 };
    const a1 = take(slots, 'a', limits);
    const b1 = take(slots, 'b', limits);
    const a2 = take(slots, 'a', limits);
    const b2 = take(slots, 'b', limits);
    await vi.advanceTimersByTimeAsync(0);
    expect(slots.running).toBe(2);
    expect([a2.outcome, b2.outcome]).toEqual([undefined, undefined]);
    release(b1);
    await vi.advanceTimersByTimeAsync(0);
    expect(a2.outcome?.kind).toBe('run');
    expect(b2.outcome).toBeUndefined();
    release(a1);
    await vi.advanceTimersByTimeAsync(0);
    expect(b2.outcome?.kind).toBe('run');
    expect(slots.running).toBe(2);
  });

  it("does not let one action's full concurrency hold up another action's waiting call", async () => {
    const slots = new RunSlots({ running: 3, queued: 64 });
    const one = { running: 1, queued: 4 };
    const gpio1 = take(slots, 'gpio', one);
    const gpio2 = take(slots, 'gpio', one);
    const exec1 = take(slots, 'exec', { running: 4, queued: 4 });
    await vi.advanceTimersByTimeAsync(0);
    expect([gpio1.outcome?.kind, gpio2.outcome, exec1.outcome?.kind]).toEqual(['run', undefined, 'run']);
  });

  it("answers busy when the action's queue is full", async () => {
    const slots = new RunSlots({ running: 16, queued: 64 });
    const limits = { running: 1, queued: 2 };
    const taken = [1, 2, 3, 4].map(() => take(slots, 'a', limits));
    await vi.advanceTimersByTimeAsync(0);
    expect(taken.map((entry) => entry.outcome?.kind)).toEqual(['run', undefined, undefined, 'busy']);
  });

  it('answers busy when the agent-wide queue is full, whichever action the call is for', async () => {
    const slots = new RunSlots({ running: 1, queued: 2 });
    const limits = { running: 1, queued: 10 };
    const taken = ['a', 'b', 'c', 'd'].map((action) => take(slots, action, limits));
    await vi.advanceTimersByTimeAsync(0);
    expect(taken.map((entry) => entry.outcome?.kind)).toEqual(['run', undefined, undefined, 'busy']);
    expect(slots.queued).toBe(2);
  });

  it('with queue 0 a call without a free slot is busy at once', async () => {
    const slots = new RunSlots({ running: 16, queued: 64 });
    const taken = [1, 2].map(() => take(slots, 'a', { running: 1, queued: 0 }));
    await vi.advanceTimersByTimeAsync(0);
    expect(taken.map((entry) => entry.outcome?.kind)).toEqual(['run', 'busy']);
  });

  it('a waiting call whose deadline passes times out, frees its place, and never runs later', async () => {
    const slots = new RunSlots({ running: 16, queued: 64 });
    const limits = { running: 1, queued: 1 };
    const running = take(slots, 'a', limits);
    const waiting = take(slots, 'a', limits, 1_000);
    await vi.advanceTimersByTimeAsync(999);
    expect(waiting.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.outcome).toEqual({ kind: 'timeout' });
    expect(slots.queued).toBe(0);
    // Its place in the queue is free again, and ending the run starts nothing that timed out.
    const next = take(slots, 'a', limits);
    release(running);
    await vi.advanceTimersByTimeAsync(0);
    expect(next.outcome?.kind).toBe('run');
    expect(slots.running).toBe(1);
  });

  it('a release called twice gives back one slot', async () => {
    const slots = new RunSlots({ running: 16, queued: 64 });
    const limits = { running: 1, queued: 4 };
    const first = take(slots, 'a', limits);
    await vi.advanceTimersByTimeAsync(0);
    release(first);
    release(first);
    expect(slots.running).toBe(0);
    const [second, third] = [take(slots, 'a', limits), take(slots, 'a', limits)];
    await vi.advanceTimersByTimeAsync(0);
    expect([second.outcome?.kind, third.outcome]).toEqual(['run', undefined]);
  });
});
