// In-order delivery across a handover: messages that come on the new link wait for the old link's
// CUTOVER (or its close, or the hold time), while the old link's late messages go first.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HandoverOrder, HOLD_MS } from '../../../agent/links/handover-order.js';

afterEach(() => vi.useRealTimers());

function setUp() {
  const delivered: string[] = [];
  const open = new Set(['ble', 'wifi']);
  const order = new HandoverOrder<string, string>(
    (item) => delivered.push(item),
    (link) => open.has(link),
  );
  return { order, delivered, open };
}

describe('handover order', () => {
  it('holds the new link until the old link ends with CUTOVER, delivering the old link first', () => {
    const { order, delivered } = setUp();
    order.receive('ble', 'm1');
    order.receive('wifi', 'm3');
    order.receive('ble', 'm2');
    order.receive('wifi', 'm4');
    expect(delivered).toEqual(['m1', 'm2']);
    order.cutover('ble');
    expect(delivered).toEqual(['m1', 'm2', 'm3', 'm4']);
    order.receive('wifi', 'm5');
    expect(delivered).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
  });

  it('does not hold when the CUTOVER came before the new link carried anything', () => {
    const { order, delivered } = setUp();
    order.receive('ble', 'm1');
    order.cutover('ble');
    order.receive('wifi', 'm2');
    expect(delivered).toEqual(['m1', 'm2']);
  });

  it('does not hold after the old link closed, and releases held messages when it closes', () => {
    const { order, delivered, open } = setUp();
    order.receive('wifi', 'm1');
    order.receive('ble', 'm2');
    expect(delivered).toEqual(['m1']);
    open.delete('wifi');
    order.closed('wifi');
    expect(delivered).toEqual(['m1', 'm2']);
    order.receive('ble', 'm3');
    expect(delivered).toEqual(['m1', 'm2', 'm3']);
  });

  it('gives up holding after HOLD_MS: a CUTOVER that never comes does not stall the peer', () => {
    vi.useFakeTimers();
    const { order, delivered } = setUp();
    order.receive('ble', 'm1');
    order.receive('wifi', 'm2');
    vi.advanceTimersByTime(HOLD_MS - 1);
    expect(delivered).toEqual(['m1']);
    vi.advanceTimersByTime(1);
    expect(delivered).toEqual(['m1', 'm2']);
  });
});
