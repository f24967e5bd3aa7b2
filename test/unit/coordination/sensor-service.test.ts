// Local sensor reads: a read that hangs is cancelled after READ_TIMEOUT_MS; one that answers stops its timer.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SensorHandler } from '../../../agent/coordination/handler.js';
import { SensorReadError } from '../../../agent/coordination/handler.js';
import { CapabilityRegistry } from '../../../agent/coordination/registry.js';
import { READ_TIMEOUT_MS, SensorService } from '../../../agent/coordination/sensor-service.js';

function serviceWith(handler: SensorHandler): SensorService {
  const registry = new CapabilityRegistry();
  registry.addSensor({ name: 's', handler, unit: null, everyMs: undefined });
  return new SensorService({
    selfId: 'self',
    registry,
    send: async () => {},
    learned: () => {},
    count: () => {},
  });
}

describe('SensorService.readLocal', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('cancels a read that does not answer within READ_TIMEOUT_MS', async () => {
    vi.useFakeTimers();
    const service = serviceWith({
      kind: 'test',
      read: (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => reject(new SensorReadError('aborted', 'cancelled')));
        }),
    });
    const reading = service.readLocal('s');
    const outcome = expect(reading).rejects.toMatchObject({ code: 'aborted' });
    await vi.advanceTimersByTimeAsync(READ_TIMEOUT_MS - 1);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await outcome;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops the timer of a read that answered', async () => {
    vi.useFakeTimers();
    const service = serviceWith({ kind: 'test', read: async () => ({ value: 1, readAtMs: Date.now() }) });
    expect((await service.readLocal('s')).value).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
