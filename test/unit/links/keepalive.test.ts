// The keep-alive: one clock ticks every link (an agent with many peers wakes as often as with one), the side
// that accepted a link leads it (PING every interval, answered by PONGs), the other pings ten times less often
// for its own RTT, both still hear each other every interval, and a silent link closes after deadAfterMs.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { silentLogger } from '../../../agent/core/logger.js';
import { generateIdentity } from '../../../agent/identity/identity.js';
import { KeepaliveClock } from '../../../agent/links/keepalive-clock.js';
import { FOLLOWER_PING_FACTOR, PeerConnection } from '../../../agent/links/peer-connection.js';
import { decodeMessage } from '../../../agent/protocol/index.js';
import { establishSecureLink } from '../../../agent/security/secure-channel.js';
import { MemoryLink } from '../../support/memory-link.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('KeepaliveClock', () => {
  it('ticks every member from one timer at the finest period asked, and stops with the last member', () => {
    vi.useFakeTimers();
    const clock = new KeepaliveClock();
    const ticks = { a: 0, b: 0 };
    const a = { tick: () => ticks.a++ };
    const b = { tick: () => ticks.b++ };
    clock.add(a, 1000);
    clock.add(b, 250);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(ticks).toEqual({ a: 4, b: 4 });
    clock.remove(a);
    clock.remove(b);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('PeerConnection keep-alive', () => {
  /** Two ends over memory links sharing one clock, the acceptor leading; PINGs each end received. */
  async function pair(intervalMs: number, deadAfterMs: number) {
    const a = new MemoryLink('memory:b', true, 1 << 20);
    const b = new MemoryLink('memory:a', false, 1 << 20);
    a.peer = b;
    b.peer = a;
    const meshKeys = [new Uint8Array(32).fill(9)];
    const [dialler, acceptor] = await Promise.all([
      establishSecureLink(a, { identity: generateIdentity(), meshKeys, name: 'dialler', timeoutMs: 2000 }),
      establishSecureLink(b, { identity: generateIdentity(), meshKeys, name: 'acceptor', timeoutMs: 2000 }),
    ]);
    vi.useFakeTimers();
    const clock = new KeepaliveClock();
    const counters = new Counters();
    const connection = (link: typeof dialler, leads: boolean) =>
      new PeerConnection(
        link,
        counters,
        silentLogger(),
        { intervalMs, deadAfterMs, leads },
        undefined,
        clock,
      );
    const left = connection(dialler, false);
    const right = connection(acceptor, true);
    const pingsTo = { dialler: 0, acceptor: 0 };
    const countPings = (into: 'dialler' | 'acceptor') => (plain: Uint8Array) => {
      const got = decodeMessage(plain);
      if (got.kind === 'message' && got.message.type === 'ping') pingsTo[into]++;
    };
    dialler.on('message', countPings('dialler'));
    acceptor.on('message', countPings('acceptor'));
    return { left, right, pingsTo, counters, b };
  }

  it('the acceptor pings every interval, the dialler ten times less often, and both have an RTT', async () => {
    const { left, right, pingsTo } = await pair(100, 300);
    await vi.advanceTimersByTimeAsync(100 * FOLLOWER_PING_FACTOR * 2);
    // Both ping as the link comes up (an RTT at once); then the leader every interval, the follower every tenth.
    expect(pingsTo.dialler).toBeGreaterThanOrEqual(2 * FOLLOWER_PING_FACTOR - 1);
    expect(pingsTo.acceptor).toBeGreaterThanOrEqual(2);
    expect(pingsTo.acceptor).toBeLessThanOrEqual(3);
    expect(left.rttMs).toBeDefined();
    expect(right.rttMs).toBeDefined();
    expect(left.isOpen && right.isOpen).toBe(true);
    left.link.close();
    right.link.close();
  });

  it('pings as soon as the link is up, so a new link has an RTT before the first tick', async () => {
    const { left, right, pingsTo } = await pair(10_000, 30_000);
    // Well before the clock's first tick (5 s here): only the PINGs sent at once, and their PONGs.
    await vi.advanceTimersByTimeAsync(10);
    expect(pingsTo).toEqual({ dialler: 1, acceptor: 1 });
    expect(left.rttMs).toBeDefined();
    expect(right.rttMs).toBeDefined();
    left.link.close();
    right.link.close();
  });

  it('closes a link that went silent after deadAfterMs (plus one check at most), on both sides, counted', async () => {
    const { left, right, counters, b } = await pair(100, 300);
    await vi.advanceTimersByTimeAsync(200);
    // The acceptor's frames stop arriving (its side is gone without a word): the dialler hears nothing more.
    b.peer = undefined;
    await vi.advanceTimersByTimeAsync(240);
    expect(left.isOpen).toBe(true);
    await vi.advanceTimersByTimeAsync(120);
    expect(left.isOpen).toBe(false);
    // The acceptor too: its PINGs go nowhere, so no PONG comes back either.
    expect(right.isOpen).toBe(false);
    expect(counters.get('links.keepalive_timeouts')).toBe(2);
  });
});
