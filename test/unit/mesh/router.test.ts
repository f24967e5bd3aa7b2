// The mesh router on in-memory topologies (real Routers, real encoded frames, no sockets): addressing,
// forwarding, TTL, duplicate suppression, link-state routes, rerouting and broadcast trees.
import { describe, expect, it } from 'vitest';
import { BROADCAST_ID, groupId } from '../../../agent/mesh/address.js';
import { DuplicateCache } from '../../../agent/mesh/duplicate-cache.js';
import { ROUTE_PENALTY_MS, RoutePenalties } from '../../../agent/mesh/route-penalties.js';
import { MAX_KNOWN_AGENTS, Topology } from '../../../agent/mesh/topology.js';
import { announceMessage, decodeMessage, type RoutedMessage } from '../../../agent/protocol/index.js';
import { buildSim, chainTopology, gridTopology, MeshSim } from '../../support/mesh-sim.js';

const payload = new TextEncoder().encode('hello');

describe('mesh router on a chain of 5', () => {
  it('carries a unicast to the far end, four hops, and the ACK back along the learned route', () => {
    const { ids } = chainTopology(5);
    const sim = buildSim(chainTopology(5));
    sim.announceAll();
    const [first, , , , last] = ids as [string, string, string, string, string];
    const id = sim.node(first).router.nextId();
    expect(sim.node(first).router.sendData(last, payload, { id, ackRequested: true }).links).toBe(1);
    sim.run();
    expect(sim.node(last).delivered).toEqual([
      expect.objectContaining({ source: first, destination: last, id, hops: 4, ackRequested: true }),
    ]);
    sim.node(last).router.sendAck(first, id);
    sim.run();
    expect(sim.node(first).acks).toEqual([{ source: last, id }]);
    expect(sim.node(last).router.routes()).toContainEqual(
      expect.objectContaining({ destination: first, nextHop: ids[3], hops: 4 }),
    );
    // Nobody else delivered it, and following routes it never flooded.
    for (const node of ids.slice(1, 4)) expect(sim.node(node).delivered).toEqual([]);
    expect(sim.node(ids[2] as string).counters.get('mesh.flooded')).toBe(0);
  });

  it('stops a message whose hop budget runs out, and counts it', () => {
    const { ids } = chainTopology(5);
    const sim = buildSim(chainTopology(5), { ttl: 2 });
    sim.announceAll();
    const first = ids[0] as string;
    const router = sim.node(first).router;
    const droppedBefore = sim.node(ids[2] as string).counters.get('mesh.dropped_ttl');
    router.sendData(ids[4] as string, payload, { id: router.nextId(), ackRequested: false });
    sim.run();
    expect(sim.node(ids[4] as string).delivered).toEqual([]);
    expect(sim.node(ids[3] as string).delivered).toEqual([]);
    expect(sim.node(ids[2] as string).counters.get('mesh.dropped_ttl') - droppedBefore).toBe(1);
  });

  it('does not forward through an agent with relaying off', () => {
    const { ids, links } = chainTopology(3);
    const sim = new MeshSim();
    sim.add(ids[0] as string);
    sim.add(ids[1] as string, { relay: false });
    sim.add(ids[2] as string);
    for (const [a, b] of links) sim.link(a, b);
    sim.announceAll();
    const router = sim.node(ids[0] as string).router;
    router.sendData(ids[2] as string, payload, { id: router.nextId(), ackRequested: false });
    sim.run();
    expect(sim.node(ids[2] as string).delivered).toEqual([]);
    expect(sim.node(ids[1] as string).counters.get('mesh.not_relayed')).toBeGreaterThan(0);
    // It still sends and receives for itself.
    router.sendData(ids[1] as string, payload, { id: router.nextId(), ackRequested: false });
    sim.run();
    expect(sim.node(ids[1] as string).delivered).toHaveLength(1);
  });
});

describe('mesh router, a link that comes up later', () => {
  it('tells the new neighbour about the agents already known, without waiting for their announcements', () => {
    const { ids } = chainTopology(3);
    const [a, b, c] = ids as [string, string, string];
    const sim = new MeshSim();
    for (const id of ids) sim.add(id);
    sim.link(a, b);
    sim.announceAll();
    sim.link(b, c);
    // b announces its new link, as agents do on a change; a does not announce again.
    sim.node(b).router.announceNow();
    sim.run();
    expect(sim.node(c).router.agent(a)?.name).toBe(`n-${a.slice(-4)}`);
    expect(sim.node(c).router.routes()).toContainEqual(
      expect.objectContaining({ destination: a, nextHop: b, hops: 2 }),
    );
    expect(sim.node(b).counters.get('mesh.announcements_synced')).toBe(1);
  });
});

describe('mesh router, an announcement that arrives late', () => {
  it('keeps what the newer one said: an older copy, handed over after it, is counted and ignored', () => {
    const { ids } = chainTopology(3);
    const [a, b, c] = ids as [string, string, string];
    const sim = new MeshSim();
    for (const id of ids) sim.add(id);
    sim.link(a, b);
    const sentByB = sim.capture(b);
    sim.node(b).router.announceNow(); // b's links: a
    sim.run();
    const [older] = sentByB()
      .map((frame) => decodeMessage(frame))
      .flatMap((result) =>
        result.kind === 'message' && result.message.type === 'announce' ? [result.message] : [],
      );
    sim.link(b, c);
    sim.announceAll(); // b's links: a and c
    expect([...(sim.node(c).router.agent(b)?.neighbours ?? [])].sort()).toEqual([a, c].sort());
    // The older announcement reaches c later (a slower path, or a neighbour's store): c never saw it, so its
    // signature and number pass the replay window, but it must not take back the link to c.
    sim.inject(b, c, older as RoutedMessage);
    sim.run();
    expect(sim.node(c).counters.get('mesh.announcements_overtaken')).toBe(1);
    expect([...(sim.node(c).router.agent(b)?.neighbours ?? [])].sort()).toEqual([a, c].sort());
  });
});

describe('mesh router, a flood whose first copy came the long way round', () => {
  /** s - x - e with a hop budget of 2: s's announcement reaches e in two hops, through x. */
  function edgeOfTheBudget() {
    const { ids } = chainTopology(3);
    const [s, x, e] = ids as [string, string, string];
    const sim = new MeshSim({ ttl: 2 });
    for (const id of ids) sim.add(id);
    sim.link(s, x);
    sim.link(x, e);
    return { sim, s, x, e };
  }

  /** What s announces, taken off its link (on a mesh of its own, so that nobody has heard it yet). */
  function announcementOfS(): Extract<RoutedMessage, { type: 'announce' }> & {
    route: NonNullable<RoutedMessage['route']>;
  } {
    const { sim, s } = edgeOfTheBudget();
    const sentByS = sim.capture(s);
    sim.node(s).router.announceNow();
    const [announcement] = sentByS()
      .map((frame) => decodeMessage(frame))
      .flatMap((result) =>
        result.kind === 'message' && result.message.type === 'announce' ? [result.message] : [],
      );
    if (announcement?.route === undefined) throw new Error('s sent no announcement');
    return { ...announcement, route: announcement.route };
  }

  it('sends on the copy with more hops left, so agents at the edge of the budget still get it', () => {
    const announcement = announcementOfS();
    const { sim, s, x, e } = edgeOfTheBudget();
    // What a slower path brought x first: the same announcement, its hop budget spent. Then s's own copy.
    sim.inject(s, x, { ...announcement, route: { ...announcement.route, ttlHops: 1 } });
    sim.inject(s, x, announcement);
    sim.run();
    expect(sim.node(x).counters.get('mesh.dropped_ttl')).toBe(1);
    expect(sim.node(x).counters.get('mesh.forwarded_more_hops')).toBe(1);
    expect(sim.node(e).router.agent(s)).toBeDefined();
    // Not learnt or counted twice at x: the second copy only went on.
    expect(sim.node(x).counters.get('mesh.dropped_duplicate')).toBe(0);
  });

  it('sends it on after the duplicate window too: the replay window alone remembers the first copy then', () => {
    const announcement = announcementOfS();
    const { sim, s, x, e } = edgeOfTheBudget();
    sim.inject(s, x, { ...announcement, route: { ...announcement.route, ttlHops: 1 } });
    sim.run();
    expect(sim.node(e).router.agent(s)).toBeUndefined();
    sim.nowMs += 3_000; // past the 2 s duplicate window: s's own copy comes late (a neighbour's store, a slow path)
    sim.inject(s, x, announcement);
    sim.run();
    expect(sim.node(x).counters.get('mesh.forwarded_more_hops')).toBe(1);
    expect(sim.node(e).router.agent(s)).toBeDefined();
    // Held with its larger budget: a neighbour linking to x now gets the copy that reaches as far.
    sim.inject(s, x, announcement);
    sim.run();
    expect(sim.node(x).counters.get('mesh.forwarded_more_hops')).toBe(1);
  });

  it('drops copies with no more hops left than before, and refuses an altered one however many it has', () => {
    const announcement = announcementOfS();
    const { sim, s, x, e } = edgeOfTheBudget();
    sim.inject(s, x, announcement);
    sim.run();
    expect(sim.node(e).router.agent(s)).toBeDefined();
    sim.inject(s, x, { ...announcement, route: { ...announcement.route, ttlHops: 1 } });
    sim.inject(s, x, announcement);
    sim.run();
    expect(sim.node(x).counters.get('mesh.dropped_duplicate')).toBe(2);
    expect(sim.node(x).counters.get('mesh.forwarded_more_hops')).toBe(0);
    // Its words changed under the same seal, with more hops than any copy before: checked, not passed on.
    const altered = announceMessage({
      id: announcement.id,
      relays: announcement.relays,
      announcement: { ...announcement.announcement, name: 'mallory' },
      route: { ...announcement.route, ttlHops: 3 },
      auth: announcement.auth,
    });
    sim.inject(s, x, altered);
    sim.run();
    expect(sim.node(x).counters.get('auth.dropped_bad_signature')).toBe(1);
    expect(sim.node(x).counters.get('mesh.forwarded_more_hops')).toBe(0);
    expect(sim.node(e).router.agent(s)?.name).not.toBe('mallory');
  });
});

describe('mesh router on a ring of 6', () => {
  it('drops routes with their link and goes the other way round at once', () => {
    const ids = Array.from({ length: 6 }, (_, index) => MeshSim.idOf(index));
    const links = ids.map((id, index) => [id, ids[(index + 1) % 6] as string] as [string, string]);
    const sim = buildSim({ ids, links });
    sim.announceAll();
    const [a, b] = ids as [string, string];
    const far = ids[2] as string; // two hops a → b → far
    expect(sim.node(a).router.routes()).toContainEqual(
      expect.objectContaining({ destination: far, nextHop: b }),
    );
    sim.cut(a, b);
    expect(
      sim
        .node(a)
        .router.routes()
        .some((route) => route.nextHop === b),
    ).toBe(false);
    // The announcements still show the rest of the ring: the path the other way, four hops.
    expect(sim.node(a).router.routes()).toContainEqual(
      expect.objectContaining({ destination: far, nextHop: ids[5], hops: 4 }),
    );
    const id = sim.node(a).router.nextId();
    sim.node(a).router.sendData(far, payload, { id, ackRequested: true });
    sim.run();
    expect(sim.node(far).delivered.map((d) => d.id)).toEqual([id]);
    expect(sim.node(far).delivered[0]).toMatchObject({ hops: 4, flooded: false });
    expect([...sim.nodes.values()].every((node) => node.counters.get('mesh.flooded') === 0)).toBe(true);
  });
});

describe('mesh router on a 3×3 grid', () => {
  it('delivers a broadcast to every agent exactly once, with fewer transmissions than flooding', () => {
    const topology = gridTopology(3, 3);
    const sim = buildSim(topology);
    sim.announceAll();
    for (const node of sim.nodes.values()) node.counters.increment('mesh.transmissions', 0);
    const before = [...sim.nodes.values()].map((n) => n.counters.get('mesh.transmissions'));
    const source = topology.ids[0] as string;
    sim
      .node(source)
      .router.sendData(BROADCAST_ID, payload, { id: sim.node(source).router.nextId(), ackRequested: false });
    sim.run();
    const sent = [...sim.nodes.values()].reduce(
      (sum, node, index) => sum + node.counters.get('mesh.transmissions') - (before[index] ?? 0),
      0,
    );
    for (const id of topology.ids.slice(1)) expect(sim.node(id).delivered).toHaveLength(1);
    expect(sim.node(source).delivered).toHaveLength(0);
    // A spanning tree needs 8; flooding every link but the incoming one takes 16 on this grid.
    expect(sent).toBe(8);
  });

  it('delivers a group message to the members only', () => {
    const topology = gridTopology(3, 3);
    const sim = new MeshSim();
    for (const [index, id] of topology.ids.entries()) {
      sim.add(id, { groups: index % 2 === 0 ? ['hall'] : [] });
    }
    for (const [a, b] of topology.links) sim.link(a, b);
    sim.announceAll();
    const source = topology.ids[1] as string;
    const router = sim.node(source).router;
    router.sendData(groupId('hall'), payload, { id: router.nextId(), ackRequested: false });
    sim.run();
    topology.ids.forEach((id, index) => {
      expect(sim.node(id).delivered).toHaveLength(index % 2 === 0 ? 1 : 0);
    });
  });

  it('floods before any announcement and still delivers once', () => {
    const topology = gridTopology(3, 3);
    const sim = buildSim(topology);
    const source = topology.ids[4] as string;
    const router = sim.node(source).router;
    router.sendData(BROADCAST_ID, payload, { id: router.nextId(), ackRequested: false });
    sim.run();
    for (const id of topology.ids) if (id !== source) expect(sim.node(id).delivered).toHaveLength(1);
    const duplicates = [...sim.nodes.values()].reduce(
      (sum, n) => sum + n.counters.get('mesh.dropped_duplicate'),
      0,
    );
    expect(duplicates).toBeGreaterThan(0);
  });
});

describe('group ids', () => {
  it('are the documented hash of the name (PROTOCOL.md §13.1)', () => {
    expect(groupId('hall')).toBe('0c9217d5cf87bef5');
    expect(groupId('hall')).not.toBe(groupId('Hall'));
    expect(groupId('hall')).not.toBe(BROADCAST_ID);
  });
});

describe('DuplicateCache', () => {
  it('drops a repeat inside the window and lets it through after', () => {
    const cache = new DuplicateCache({ windowMs: 1_000, capacity: 100 });
    expect(cache.add('a', 1, 7, 0)).toBe(true);
    expect(cache.add('a', 1, 7, 999)).toBe(false);
    expect(cache.add('a', 2, 7, 999)).toBe(true); // another type is another message
    expect(cache.add('a', 1, 7, 1_000)).toBe(true);
  });

  it('never holds more than its capacity, whatever arrives', () => {
    const cache = new DuplicateCache({ windowMs: 60_000, capacity: 1_000 });
    for (let id = 0; id < 50_000; id++) cache.add(`src${id % 7}`, 1, id, 0);
    expect(cache.size).toBe(1_000);
  });

  it('forgets by age and by count in arrival order, around its ring many times', () => {
    const cache = new DuplicateCache({ windowMs: 100, capacity: 5 });
    let nowMs = 0;
    for (let id = 0; id < 1_000; id++, nowMs += 30) {
      expect(cache.add('a', 1, id, nowMs)).toBe(true);
      // Within 100 ms: the last three or four (30 ms apart) are still there, and repeats of them are caught.
      expect(cache.add('a', 1, id, nowMs)).toBe(false);
      if (id >= 3) expect(cache.add('a', 1, id - 3, nowMs)).toBe(false);
      expect(cache.size).toBeLessThanOrEqual(4);
    }
    // A burst at one instant: only the last five are held; the sixth newest passes again.
    for (let id = 5_000; id < 5_020; id++) cache.add('b', 1, id, nowMs);
    expect(cache.size).toBe(5);
    expect(cache.add('b', 1, 5_019, nowMs)).toBe(false);
    expect(cache.add('b', 1, 5_015, nowMs)).toBe(false);
    expect(cache.add('b', 1, 5_014, nowMs)).toBe(true);
    // The window passes: everything goes.
    expect(cache.add('c', 1, 1, nowMs + 100)).toBe(true);
    expect(cache.size).toBe(1);
  });
});

describe('routes around avoided next hops', () => {
  it('are kept for the same avoided set, and follow the announcements when they change', () => {
    // A ring 0-1-2-3-4-0, seen from 0.
    const idOf = (index: number): string => (0x2000 + index).toString(16).padStart(16, '0');
    const ring = (index: number): string => idOf((index + 5) % 5);
    const topology = new Topology(idOf(0));
    topology.setOwn([idOf(1), idOf(4)], true);
    const announce = (index: number, neighbours: string[], nowMs: number): void => {
      const announcement = {
        initialTtl: 4,
        name: 'x',
        groups: [],
        neighbours,
        capabilities: { actions: [], sensors: [] },
        keyEpoch: 0,
        revocationDigest: new Uint8Array(8),
      };
      topology.update(idOf(index), announcement, true, nowMs);
    };
    for (let index = 1; index < 5; index++) announce(index, [ring(index - 1), ring(index + 1)], 0);
    const avoid = new Set([idOf(1)]);
    expect(topology.routeTo(idOf(2), 0)).toEqual({ nextHop: idOf(1), hops: 2 });
    expect(topology.routeTo(idOf(2), 0, avoid)).toEqual({ nextHop: idOf(4), hops: 3 });
    expect(topology.routeTo(idOf(2), 0, avoid)).toEqual({ nextHop: idOf(4), hops: 3 });
    // 3 loses its link to 2: the only way around 1 is gone.
    announce(3, [idOf(4)], 1);
    expect(topology.routeTo(idOf(2), 1, avoid)).toBeUndefined();
    expect(topology.routeTo(idOf(3), 1, new Set([idOf(1)]))).toEqual({ nextHop: idOf(4), hops: 2 });
  });

  it('are asked with one set per destination, built again only when a penalty starts or ends', () => {
    const penalties = new RoutePenalties();
    expect(penalties.failed('d', 'x', 0)).toBe(false);
    expect(penalties.avoided('d', 0)).toBeUndefined();
    expect(penalties.failed('d', 'x', 0)).toBe(true);
    const first = penalties.avoided('d', 1);
    expect(first).toEqual(new Set(['x']));
    expect(penalties.avoided('d', 2)).toBe(first);
    penalties.failed('d', 'y', 3);
    expect(penalties.avoided('d', 4)).toBe(first); // one failure of y changes nothing
    penalties.failed('d', 'y', 5);
    const second = penalties.avoided('d', 6);
    expect(second).toEqual(new Set(['x', 'y']));
    expect(penalties.avoided('d', ROUTE_PENALTY_MS)).toEqual(new Set(['y']));
    expect(penalties.avoided('d', ROUTE_PENALTY_MS + 5)).toBeUndefined();
    expect(penalties.avoided('e', 0)).toBeUndefined();
  });
});

describe('mesh tables under made-up agents', () => {
  it('keep at most their bound, forgetting the longest silent first', () => {
    const idOf = (index: number): string => (0x1000 + index).toString(16).padStart(16, '0');
    const topology = new Topology(idOf(0));
    topology.setOwn([idOf(1)], true);
    for (let index = 1; index <= 3_000; index++) {
      // Each made-up agent claims a link to the one before it, which that one confirms.
      const announcement = {
        initialTtl: 4,
        name: 'x',
        groups: ['g'],
        neighbours: [idOf(index - 1), idOf(index + 1)],
        capabilities: { actions: [], sensors: [] },
        keyEpoch: 0,
        revocationDigest: new Uint8Array(8),
      };
      topology.update(idOf(index), announcement, true, index);
    }
    expect(topology.agents(3_000)).toHaveLength(MAX_KNOWN_AGENTS);
    expect(topology.routes(3_000).size).toBeLessThanOrEqual(MAX_KNOWN_AGENTS);
    expect(topology.get(idOf(3_000), 3_000)).toBeDefined();
    expect(topology.get(idOf(1), 3_000)).toBeUndefined();
  });
});
