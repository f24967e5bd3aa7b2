// Neighbours comparing what they hold (SYNC, PROTOCOL.md §13.2) on in-memory meshes of real Routers: an
// announcement lost on the way is made good at the next SYNC instead of at its origin's next renewal, equal
// holdings cost one small frame per link, a lasting difference is not paid for again and again, and what is
// handed over again is dropped before its signature is checked. Plus the expiry that replaces the 95 s one:
// an agent stays known while a path leads to it, and is forgotten 95 s after the last one went.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UNREACHABLE_EXPIRY_MS } from '../../../agent/mesh/topology.js';
import type { RoutedMessage } from '../../../agent/protocol/index.js';
import { OriginAuth } from '../../../agent/security/origin-auth.js';
import { buildSim, chainTopology, gridTopology, MeshSim } from '../../support/mesh-sim.js';

afterEach(() => {
  vi.restoreAllMocks();
});

function chainOf(length: number, ttl = 4) {
  const topology = chainTopology(length);
  const sim = buildSim(topology, { ttl });
  sim.announceAll();
  return { sim, ids: topology.ids };
}

/** a starts offering an action; its announcement is lost on the way from b to c. */
function offerAndLoseOnTheWay(sim: MeshSim, a: string, b: string, c: string): void {
  sim.node(a).router.setCapabilities({ actions: ['open'], sensors: [] });
  sim.losing = (from, to, message) => from === b && to === c && message.type === 'announce';
  sim.node(a).router.announceNow();
  sim.run();
  sim.losing = undefined;
}

describe('SYNC between neighbours', () => {
  it('brings an agent that lost an announcement up to date at the next SYNC, with no renewal', () => {
    const { sim, ids } = chainOf(3);
    const [a, b, c] = ids as [string, string, string];
    offerAndLoseOnTheWay(sim, a, b, c);
    expect(sim.lost).toBe(1);
    expect(sim.node(b).router.agent(a)?.capabilities.actions).toEqual(['open']);
    expect(sim.node(c).router.agent(a)?.capabilities.actions).toEqual([]);

    sim.syncAll();
    expect(sim.node(c).router.agent(a)?.capabilities.actions).toEqual(['open']);
    expect(sim.node(b).counters.get('mesh.syncs_differed')).toBe(1);
  });

  it('hands on an announcement whose first copy came the long way round, with the budget of the short way', () => {
    // ttl 2 on a chain a - b - c: c, two hops from a, learns a only through b. b's copy of a's announcement
    // came the long way (one hop of budget left, it forwards nothing) and the short-way copy was lost.
    const { sim, ids } = chainOf(3, 2);
    const [a, b, c] = ids as [string, string, string];
    const lost: RoutedMessage[] = [];
    sim.node(a).router.setCapabilities({ actions: ['open'], sensors: [] });
    sim.losing = (from, _to, message) => {
      if (from !== a || message.type !== 'announce') return false;
      lost.push(message);
      return true;
    };
    sim.node(a).router.announceNow();
    sim.run();
    sim.losing = undefined;
    const announcement = lost[0] as Extract<RoutedMessage, { type: 'announce' }>;
    sim.inject(a, b, { ...announcement, route: { ...announcement.route, ttlHops: 1 } });
    sim.run();
    expect(sim.node(b).router.agent(a)?.capabilities.actions).toEqual(['open']);
    expect(sim.node(c).router.agent(a)?.capabilities.actions).toEqual([]);
    sim.syncAll();
    expect(sim.node(c).router.agent(a)?.capabilities.actions).toEqual(['open']);
  });

  it('sends an agent its own latest announcement again when a neighbour lacks it', () => {
    const { sim, ids } = chainOf(2);
    const [a, b] = ids as [string, string];
    sim.node(a).router.setCapabilities({ actions: ['ring'], sensors: [] });
    sim.losing = (from, _to, message) => from === a && message.type === 'announce';
    sim.node(a).router.announceNow();
    sim.run();
    sim.losing = undefined;
    expect(sim.node(b).router.agent(a)?.capabilities.actions).toEqual([]);
    sim.syncAll();
    expect(sim.node(b).router.agent(a)?.capabilities.actions).toEqual(['ring']);
  });

  it('costs one SYNC per link and direction when holdings are equal, and nothing else', () => {
    const topology = gridTopology(3, 3);
    const sim = buildSim(topology);
    sim.announceAll();
    const before = sim.frames;
    sim.syncAll();
    expect(sim.frames - before).toBe(2 * topology.links.length);
    for (const id of topology.ids) {
      expect(sim.node(id).counters.get('mesh.syncs_differed')).toBe(0);
      const degree = topology.links.filter((link) => link.includes(id)).length;
      expect(sim.node(id).counters.get('mesh.syncs_sent')).toBe(degree);
    }
  });

  it('agrees at the edge of a hop budget, and with an agent that does not relay: SYNCs only', () => {
    // ttl 2 on a chain of 5, the middle one not relaying: the ends never hear of each other, and nothing
    // crosses the middle, yet every pair of neighbours agrees on what they should both hold.
    const { ids, links } = chainTopology(5);
    const sim = new MeshSim({ ttl: 2 });
    for (const [index, id] of ids.entries()) sim.add(id, { relay: index !== 2 });
    for (const [a, b] of links) sim.link(a, b);
    sim.announceAll();
    for (let period = 0; period < 3; period++) {
      const before = sim.frames;
      sim.syncAll();
      expect(sim.frames - before).toBe(2 * links.length);
    }
    for (const id of ids) expect(sim.node(id).counters.get('mesh.syncs_differed')).toBe(0);
  });

  it('does not send everything again each period while a difference lasts', () => {
    // c has revoked a (it is told before the others): b and c hold different sets until b is told too.
    const { sim, ids } = chainOf(3);
    const [a, b, c] = ids as [string, string, string];
    sim.node(c).revoked.add(a);
    sim.node(c).router.forgetAgent(a);
    sim.syncAll();
    expect(sim.node(b).counters.get('mesh.syncs_differed')).toBe(1);
    const before = sim.frames;
    sim.syncAll();
    // Only the SYNCs themselves (2 links, both ways), and the difference is still seen.
    expect(sim.frames - before).toBe(4);
    expect(sim.node(b).counters.get('mesh.syncs_differed')).toBe(1);
    expect(sim.node(b).counters.get('mesh.syncs_unchanged')).toBe(1);
  });

  it('drops announcements it already holds, handed over again, before checking their signatures', () => {
    const { sim, ids } = chainOf(3);
    const [a, b, c] = ids as [string, string, string];
    offerAndLoseOnTheWay(sim, a, b, c);
    const verify = vi.spyOn(OriginAuth.prototype, 'verify');
    sim.syncAll();
    // b sends c what it holds but c's own (a's latest and b's): c checks only a's, the one it lacked.
    const checkedAtC = verify.mock.contexts.filter((auth) => auth === sim.node(c).origin);
    expect(checkedAtC.length).toBe(1);
    expect(sim.node(c).counters.get('mesh.dropped_duplicate')).toBe(1);
    expect(sim.node(c).router.agent(a)?.capabilities.actions).toEqual(['open']);
  });

  it("tells the router which key epoch and revocation list a neighbour holds, for the trust layer's catch-up", () => {
    const { sim, ids } = chainOf(2);
    const heard: [string, number, string][] = [];
    sim.node(ids[1] as string).router.on('neighbour-sync', (neighbour, keyEpoch, revocationDigest) => {
      heard.push([neighbour, keyEpoch, Buffer.from(revocationDigest).toString('hex')]);
    });
    sim.syncAll();
    expect(heard).toEqual([[ids[0], 0, '0000000000000000']]);
  });
});

describe('how long agents stay known', () => {
  it('keeps an agent in reach known for hours without a new announcement, and its route', () => {
    const { sim, ids } = chainOf(3);
    const [a, , c] = ids as [string, string, string];
    sim.nowMs += 2 * 3_600_000;
    expect(
      sim
        .node(c)
        .router.knownAgents()
        .map((agent) => agent.id),
    ).toContain(a);
    expect(sim.node(c).router.nextHopTo(a)).toBe(ids[1]);
  });

  it('forgets an agent 95 s after no path leads to it any more, and routes nothing to it meanwhile', () => {
    const { sim, ids } = chainOf(3);
    const [a, b, c] = ids as [string, string, string];
    const knownAtC = (): string[] =>
      sim
        .node(c)
        .router.knownAgents()
        .map((agent) => agent.id);
    sim.cut(a, b);
    expect(sim.node(c).router.hasRoute(a)).toBe(false);
    // The lists and routes look for agents out of reach at most once a second, whenever asked.
    sim.nowMs += 1_000;
    expect(knownAtC()).toContain(a);
    sim.nowMs += UNREACHABLE_EXPIRY_MS - 1_000;
    expect(knownAtC()).toContain(a);
    sim.nowMs += 1_000;
    expect(knownAtC()).not.toContain(a);
  });
});
