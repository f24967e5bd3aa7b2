// A neighbour that stops reading (it may keep pinging) must not cost this agent its memory: past 1 MiB
// waiting for it, traffic relayed for others or sent best effort is not queued for it (counted); past
// 16 MiB (only acknowledged traffic can get there) its link is cut.
import { afterEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { silentLogger } from '../../../agent/core/logger.js';
import { generateIdentity } from '../../../agent/identity/identity.js';
import {
  MAX_BUFFERED_BYTES,
  PeerConnection,
  RELAY_BUFFER_LIMIT_BYTES,
  SlowPeerError,
} from '../../../agent/links/peer-connection.js';
import type { RoutedMessage } from '../../../agent/protocol/index.js';
import { establishSecureLink } from '../../../agent/security/secure-channel.js';
import { frameLength } from '../../../transports/transport.js';
import { MemoryLink } from '../../support/memory-link.js';

/** A memory link whose remote stops reading once `stalled`: what it is sent then only piles up. */
class StallingLink extends MemoryLink {
  stalled = false;

  override send(frame: Uint8Array | readonly Uint8Array[]): boolean {
    if (!this.stalled) return super.send(frame);
    if (!this.isOpen) return false;
    this.bufferedBytes += frameLength(frame);
    return false;
  }
}

const connections: PeerConnection[] = [];
afterEach(() => {
  for (const connection of connections.splice(0)) connection.link.close();
});

async function stalledNeighbour() {
  const a = new StallingLink('memory:b', true, 1 << 21);
  const b = new MemoryLink('memory:a', false, 1 << 21);
  a.peer = b;
  b.peer = a;
  const meshKeys = [new Uint8Array(32).fill(7)];
  const [left] = await Promise.all([
    establishSecureLink(a, { identity: generateIdentity(), meshKeys, name: 'alpha', timeoutMs: 2000 }),
    establishSecureLink(b, { identity: generateIdentity(), meshKeys, name: 'bravo', timeoutMs: 2000 }),
  ]);
  const counters = new Counters();
  const connection = new PeerConnection(left, counters, silentLogger());
  connections.push(connection);
  a.stalled = true;
  return { a, connection, counters };
}

function relayedData(bytes: number, ackRequested = false): RoutedMessage {
  return {
    type: 'data',
    id: 1,
    ackRequested,
    payload: new Uint8Array(bytes),
    route: { ttlHops: 4, source: '0123456789abcdef', destination: 'fedcba9876543210' },
    auth: new Uint8Array(16).fill(7),
  };
}

describe('a neighbour that stops reading', () => {
  it('gets no relayed traffic once 1 MiB waits for it, but still what this agent sends it', async () => {
    const { a, connection, counters } = await stalledNeighbour();
    let relayed = 0;
    while (connection.sendRouted(relayedData(60 * 1024), true)) relayed++;
    expect(a.bufferedBytes).toBeGreaterThan(RELAY_BUFFER_LIMIT_BYTES);
    expect(a.bufferedBytes).toBeLessThan(RELAY_BUFFER_LIMIT_BYTES + 64 * 1024);
    expect(relayed).toBe(Math.floor(RELAY_BUFFER_LIMIT_BYTES / (60 * 1024)) + 1);
    expect(counters.snapshot()['links.dropped_slow_peer']).toBe(1);
    // This agent's own best-effort messages do not go either; those it waits an acknowledgement for do.
    expect(connection.sendRouted(relayedData(100), false)).toBe(false);
    expect(connection.sendRouted(relayedData(100, true), false)).toBe(true);
    expect(connection.link.isOpen).toBe(true);
  });

  it('is cut, with a SlowPeerError and a counter, once more than 16 MiB waits for it', async () => {
    const { a, connection, counters } = await stalledNeighbour();
    const closed = new Promise<Error | undefined>((resolve) => connection.link.once('close', resolve));
    const payload = new Uint8Array(1 << 20);
    let sent = 0;
    while (connection.sendData(sent, payload, true)) sent++;
    // Cut by the message that took it past 16 MiB (1 MiB each, with their headers and tags).
    expect(sent).toBe(MAX_BUFFERED_BYTES / (1 << 20));
    await expect(closed).resolves.toBeInstanceOf(SlowPeerError);
    expect(counters.snapshot()['links.slow_peers_cut']).toBe(1);
    expect(a.isOpen).toBe(false);
  });
});
