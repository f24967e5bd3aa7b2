// Pre-auth slots as an attacker without the mesh key meets them: it cannot hold more than a few from one
// address, silent handshakes give their slots to newcomers, and a known peer's address always gets in
// (all the agents behind it at once).
import { describe, expect, it } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import {
  HandshakeSlots,
  MAX_HANDSHAKES,
  MAX_HANDSHAKES_PER_KNOWN_SOURCE,
  MAX_HANDSHAKES_PER_SOURCE,
  sourceOf,
} from '../../../agent/links/handshake-slots.js';
import type { FrameLink } from '../../../transports/transport.js';

/** Just what the slots look at: address, direction, when bytes last came, and whether it was closed. */
function fakeLink(remoteAddress: string, options: { isInitiator?: boolean; at?: number } = {}) {
  const link = {
    medium: 'wifi',
    remoteAddress,
    isInitiator: options.isInitiator ?? false,
    lastReceivedAtMs: options.at ?? 0,
    closed: false,
    close() {
      link.closed = true;
    },
  };
  return link as typeof link & FrameLink;
}

function slots(known: readonly string[] = []) {
  const counters = new Counters();
  const table = new HandshakeSlots({ counters, isKnownSource: (source) => known.includes(source) });
  return { table, counters };
}

describe('handshake slots', () => {
  it('gives one source at most 4 inbound slots: a fifth takes its own oldest silent one, or is refused', () => {
    const { table, counters } = slots();
    const held = Array.from({ length: MAX_HANDSHAKES_PER_SOURCE }, (_, i) =>
      fakeLink(`10.0.0.9:${4000 + i}`),
    );
    for (const link of held) expect(table.takeForInbound(link)).toBe(true);
    expect(table.takeForInbound(fakeLink('10.0.0.9:5000'))).toBe(true);
    expect(held[0]?.closed).toBe(true);
    expect(counters.snapshot()['links.handshakes_evicted']).toBe(1);
    // Once every one it holds has spoken (a replayed first message), the source gets no more.
    const spoken = slots();
    const talkers = Array.from({ length: MAX_HANDSHAKES_PER_SOURCE }, (_, i) =>
      fakeLink(`10.0.0.9:${6000 + i}`),
    );
    for (const link of talkers) spoken.table.takeForInbound(link);
    for (const link of talkers) link.lastReceivedAtMs = 1;
    expect(spoken.table.takeForInbound(fakeLink('10.0.0.9:5002'))).toBe(false);
    expect(spoken.counters.snapshot()['links.inbound_refused_per_source']).toBe(1);
    // Another address is not affected.
    expect(spoken.table.takeForInbound(fakeLink('10.0.0.7:4000'))).toBe(true);
  });

  it('when full, a newcomer takes the slot of the oldest silent stranger, never of one that spoke', () => {
    const { table, counters } = slots();
    const strangers = Array.from({ length: MAX_HANDSHAKES }, (_, i) =>
      fakeLink(`10.1.${i >> 8}.${i & 255}:4000`),
    );
    for (const link of strangers) expect(table.takeForInbound(link)).toBe(true);
    // The oldest has spoken (its first message arrived): the next oldest, silent, goes.
    strangers[0]!.lastReceivedAtMs = 10;
    expect(table.takeForInbound(fakeLink('10.2.0.1:4001'))).toBe(true);
    expect(strangers[0]?.closed).toBe(false);
    expect(strangers[1]?.closed).toBe(true);
    expect(table.size).toBe(MAX_HANDSHAKES);
    // When every one has spoken, a stranger is refused.
    const full = slots();
    const talkers = Array.from({ length: MAX_HANDSHAKES }, (_, i) =>
      fakeLink(`10.5.${i >> 8}.${i & 255}:4000`),
    );
    for (const link of talkers) full.table.takeForInbound(link);
    for (const link of talkers) link.lastReceivedAtMs = 10;
    expect(full.table.takeForInbound(fakeLink('10.3.0.1:4000'))).toBe(false);
    expect(full.counters.snapshot()['links.inbound_refused_busy']).toBe(1);
    expect(counters.snapshot()['links.handshakes_evicted']).toBe(1);
  });

  it("a known peer's address gets in even when every stranger has spoken; dials always get a slot", () => {
    const { table } = slots(['10.9.9.9']);
    const talkers = Array.from({ length: MAX_HANDSHAKES }, (_, i) =>
      fakeLink(`10.1.${i >> 8}.${i & 255}:4000`),
    );
    for (const link of talkers) {
      expect(table.takeForInbound(link)).toBe(true);
      link.lastReceivedAtMs = 1;
    }
    expect(table.takeForInbound(fakeLink('10.3.0.1:4000'))).toBe(false);
    expect(table.takeForInbound(fakeLink('10.9.9.9:4000'))).toBe(true);
    expect(talkers[0]?.closed).toBe(true);
    table.takeForDial(fakeLink('10.4.0.1:7450', { isInitiator: true }));
    expect(table.size).toBe(MAX_HANDSHAKES + 1);
  });

  it('lets many agents behind one known address (one host, a NAT) run their handshakes together', () => {
    const { table, counters } = slots(['10.0.0.9']);
    const agents = Array.from({ length: 50 }, (_, i) => fakeLink(`10.0.0.9:${4000 + i}`));
    for (const link of agents) expect(table.takeForInbound(link)).toBe(true);
    expect(agents.some((link) => link.closed)).toBe(false);
    expect(counters.snapshot()['links.inbound_refused_per_source']).toBeUndefined();
  });

  it('still bounds a known address: past 64 its own oldest silent handshake goes, and those that spoke stay', () => {
    const { table, counters } = slots(['10.0.0.9']);
    const held = Array.from({ length: MAX_HANDSHAKES_PER_KNOWN_SOURCE }, (_, i) =>
      fakeLink(`10.0.0.9:${4000 + i}`),
    );
    for (const link of held) expect(table.takeForInbound(link)).toBe(true);
    const newcomer = fakeLink('10.0.0.9:5000');
    expect(table.takeForInbound(newcomer)).toBe(true);
    expect(held[0]?.closed).toBe(true);
    expect(table.size).toBe(MAX_HANDSHAKES_PER_KNOWN_SOURCE);
    for (const link of [...held, newcomer]) link.lastReceivedAtMs = 1;
    expect(table.takeForInbound(fakeLink('10.0.0.9:5001'))).toBe(false);
    expect(counters.snapshot()['links.inbound_refused_per_source']).toBe(1);
  });

  it('names the source of a Wi-Fi link by its host, IPv6 without brackets', () => {
    expect(sourceOf(fakeLink('10.0.0.2:7450'))).toBe('10.0.0.2');
    expect(sourceOf(fakeLink('[fe80::1]:7450'))).toBe('fe80::1');
  });
});
