// The one wait for acknowledgements that the links and reliable unicast share: every wait ends exactly
// once, by an ACK, an error, its timeout or its abort signal, and leaves nothing behind.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TimeoutError } from '../../../agent/core/errors.js';
import { PendingAcks } from '../../../agent/core/pending-acks.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const describeWait = () => 'message to bravo: no acknowledgement;';

describe('pending acknowledgements', () => {
  it('resolves on its ACK, once, and forgets the id', async () => {
    const acks = new PendingAcks<string>();
    const onSettled = vi.fn();
    const waiting = acks.wait(7, 'payload', { timeoutMs: 1_000, describe: describeWait, onSettled });
    expect(acks.get(7)).toBe('payload');
    expect(acks.settle(7)).toBe(true);
    await expect(waiting).resolves.toBeUndefined();
    expect(acks.settle(7)).toBe(false);
    expect(acks.size).toBe(0);
    vi.advanceTimersByTime(5_000);
    expect(onSettled).toHaveBeenCalledTimes(1);
  });

  it('times out with a TimeoutError that says what waited and how long', async () => {
    const acks = new PendingAcks<null>();
    const waiting = acks.wait(1, null, { timeoutMs: 1_000, describe: describeWait });
    vi.advanceTimersByTime(999);
    expect(acks.size).toBe(1);
    vi.advanceTimersByTime(1);
    await expect(waiting).rejects.toBeInstanceOf(TimeoutError);
    await expect(waiting).rejects.toThrow('message to bravo: no acknowledgement; timed out after 1000 ms');
    expect(acks.size).toBe(0);
  });

  it('rejects with the abort reason, and an aborted signal leaves no entry at all', async () => {
    const acks = new PendingAcks<null>();
    const controller = new AbortController();
    const waiting = acks.wait(1, null, {
      timeoutMs: 1_000,
      describe: describeWait,
      signal: controller.signal,
    });
    controller.abort(new Error('caller gave up'));
    await expect(waiting).rejects.toThrow('caller gave up');
    expect(acks.size).toBe(0);
    const onSettled = vi.fn();
    const late = acks.wait(2, null, {
      timeoutMs: 1_000,
      describe: describeWait,
      signal: controller.signal,
      onSettled,
    });
    expect(acks.size).toBe(0);
    await expect(late).rejects.toThrow('caller gave up');
    expect(onSettled).toHaveBeenCalledTimes(1);
  });

  it('fails one wait with a given error, and every wait on failAll, in the order they began', async () => {
    const acks = new PendingAcks<string>();
    const first = acks.wait(1, 'a', { timeoutMs: 1_000, describe: describeWait });
    const second = acks.wait(2, 'b', { timeoutMs: 1_000, describe: describeWait });
    const third = acks.wait(3, 'c', { timeoutMs: 1_000, describe: describeWait });
    expect(acks.entries()).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ]);
    acks.settle(2, new Error('too large for this link'));
    await expect(second).rejects.toThrow('too large for this link');
    acks.failAll((value) => new Error(`stopping (${value})`));
    await expect(first).rejects.toThrow('stopping (a)');
    await expect(third).rejects.toThrow('stopping (c)');
    expect(acks.size).toBe(0);
  });
});
