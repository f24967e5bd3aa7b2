// What a hostile member can and cannot do to the router (real Routers on the in-memory mesh, real frames): it
// cannot speak for another agent (tag or signature), cannot take over another's announcement, cannot replay
// what it relayed, is blamed when it must have made a forgery itself, and a route through it that loses
// messages is left for another one.
import { describe, expect, it } from 'vitest';
import { BROADCAST_ID, groupId } from '../../../agent/mesh/address.js';
import {
  announceMessage,
  decodeMessage,
  encodeMessage,
  type RoutedMessage,
} from '../../../agent/protocol/index.js';
import type { AuthFailure } from '../../../agent/security/origin-auth.js';
import { OriginAuth } from '../../../agent/security/origin-auth.js';
import { buildSim, chainTopology, MeshSim, type SimNode } from '../../support/mesh-sim.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

/** A chain a - rogue - c - d: the rogue is a member (it holds the mesh key) in the middle of the path. */
function chainWithRogue(): { sim: MeshSim; a: SimNode; rogue: SimNode; c: SimNode; d: SimNode } {
  const { ids } = chainTopology(4);
  const sim = buildSim(chainTopology(4));
  sim.announceAll();
  const [a, rogue, c, d] = ids.map((id) => sim.node(id)) as [SimNode, SimNode, SimNode, SimNode];
  return { sim, a, rogue, c, d };
}

/** The auth.* counters of a node. */
function authCounters(node: SimNode): Record<string, number> {
  return Object.fromEntries(
    Object.entries(node.counters.snapshot()).filter(([name]) => name.startsWith('auth.')),
  );
}

function failuresAt(node: SimNode): AuthFailure[] {
  const failures: AuthFailure[] = [];
  node.router.on('auth-failure', (failure) => failures.push(failure));
  return failures;
}

describe('a member cannot speak for another', () => {
  it('a DATA in another agent’s name, tagged with the rogue’s own pairwise key, is dropped by its destination', () => {
    const { sim, a, rogue, d } = chainWithRogue();
    const forged: RoutedMessage = {
      type: 'data',
      id: 99,
      ackRequested: true,
      payload: text('unlock'),
      route: { ttlHops: 4, source: a.id, destination: d.id },
    };
    // The best the rogue can do: a tag under its own key with d, or any 16 bytes.
    const roguesAuth = new OriginAuth(rogue.identity, rogue.keys);
    rogue.keys.learn(d.identity.publicKey);
    sim.inject(rogue.id, sim.node(chainTopology(4).ids[2] as string).id, {
      ...forged,
      auth: roguesAuth.seal(forged, false),
    });
    sim.run();
    expect(d.delivered).toEqual([]);
    expect(d.counters.get('auth.dropped_bad_tag')).toBe(1);
    expect(a.acks).toEqual([]);
  });

  it('a signature in another agent’s name is dropped at the first honest relay, and blamed on the rogue', () => {
    const { sim, a, rogue, c, d } = chainWithRogue();
    const failures = failuresAt(c);
    const forged: RoutedMessage = {
      type: 'data',
      id: 100,
      ackRequested: false,
      payload: text('lights off'),
      route: { ttlHops: 4, source: a.id, destination: BROADCAST_ID },
    };
    const signed = new OriginAuth(rogue.identity, rogue.keys).seal(forged, true);
    // Its own key with its own signature: the key's hash is not a's id.
    sim.inject(rogue.id, c.id, { ...forged, auth: signed });
    // a's key with the rogue's signature: the signature does not verify.
    const spliced = Uint8Array.from(signed);
    spliced.set(a.identity.publicKey, 0);
    sim.inject(rogue.id, c.id, { ...forged, id: 101, auth: spliced });
    sim.run();
    expect(c.delivered).toEqual([]);
    expect(d.delivered).toEqual([]);
    expect(c.counters.get('auth.dropped_bad_signature')).toBe(2);
    expect(failures).toEqual([
      { neighbour: rogue.id, source: a.id, reason: 'bad-signature', attributable: true },
      { neighbour: rogue.id, source: a.id, reason: 'bad-signature', attributable: true },
    ]);
  });

  it('an ANNOUNCE in another agent’s name changes nothing anywhere', () => {
    const { sim, a, rogue, c, d } = chainWithRogue();
    const hijack = announceMessage({
      id: 5_000,
      relays: true,
      announcement: {
        initialTtl: 4,
        name: 'bravo-HIJACKED',
        groups: [],
        neighbours: [rogue.id],
        capabilities: { actions: ['open-door'], sensors: [] },
        keyEpoch: 0,
        revocationDigest: new Uint8Array(8),
      },
      route: { ttlHops: 4, source: a.id, destination: BROADCAST_ID },
      auth: new Uint8Array(96),
    });
    const sealed = { ...hijack, auth: new OriginAuth(rogue.identity, rogue.keys).seal(hijack, true) };
    sim.inject(rogue.id, c.id, sealed);
    sim.run();
    for (const node of [c, d]) {
      expect(node.router.agent(a.id)?.name).toBe(`n-${a.id.slice(-4)}`);
      expect(node.router.agent(a.id)?.capabilities?.actions).toEqual([]);
    }
    expect(c.counters.get('auth.dropped_bad_signature')).toBe(1);
  });

  it('a tag under the rogue’s own id that does not verify is attributable; under another id it is not', () => {
    const { sim, a, rogue, c } = chainWithRogue();
    const failures = failuresAt(c);
    const base: RoutedMessage = {
      type: 'data',
      id: 7,
      ackRequested: false,
      payload: text('x'),
      route: { ttlHops: 4, source: rogue.id, destination: c.id },
      auth: new Uint8Array(16).fill(1),
    };
    sim.inject(rogue.id, c.id, base);
    sim.inject(rogue.id, c.id, { ...base, route: { ttlHops: 4, source: a.id, destination: c.id } });
    sim.run();
    expect(failures.map((failure) => [failure.source, failure.attributable])).toEqual([
      [rogue.id, true],
      [a.id, false],
    ]);
  });
});

describe('messages for many must be signed', () => {
  it('an ANNOUNCE or a broadcast with a tag is dropped at the first agent, and blamed on who sent it', () => {
    const { sim, a, rogue, c, d } = chainWithRogue();
    const failures = failuresAt(c);
    const broadcast: RoutedMessage = {
      type: 'data',
      id: 200,
      ackRequested: false,
      payload: text('all doors open'),
      route: { ttlHops: 4, source: a.id, destination: BROADCAST_ID },
      auth: new Uint8Array(16).fill(9),
    };
    const hijack = announceMessage({
      id: 201,
      relays: true,
      announcement: {
        initialTtl: 4,
        name: 'a-HIJACKED',
        groups: [],
        neighbours: [],
        capabilities: { actions: [], sensors: [] },
        keyEpoch: 0,
        revocationDigest: new Uint8Array(8),
      },
      route: { ttlHops: 4, source: a.id, destination: BROADCAST_ID },
      auth: new Uint8Array(16).fill(9),
    });
    sim.inject(rogue.id, c.id, broadcast);
    sim.inject(rogue.id, c.id, hijack);
    sim.run();
    expect(c.delivered).toEqual([]);
    expect(d.delivered).toEqual([]);
    expect(c.router.agent(a.id)?.name).toBe(`n-${a.id.slice(-4)}`);
    expect(failures.map((failure) => [failure.reason, failure.attributable])).toEqual([
      ['bad-signature', true],
      ['bad-signature', true],
    ]);
  });
});

describe('an agent that does not relay', () => {
  it('drops a message that is not for it without checking its origin', () => {
    // a - quiet - c, quiet relaying off and in no group; c is in the kitchen group.
    const { ids, links } = chainTopology(3);
    const [aId, quietId, cId] = ids as [string, string, string];
    const sim = new MeshSim();
    const a = sim.add(aId);
    const quiet = sim.add(quietId, { relay: false });
    sim.add(cId, { groups: ['kitchen'] });
    for (const [one, other] of links) sim.link(one, other);
    sim.announceAll();
    const failures = failuresAt(quiet);
    const authBefore = authCounters(quiet);
    const notRelayedBefore = quiet.counters.get('mesh.not_relayed');
    const forKitchen: RoutedMessage = {
      type: 'data',
      id: 300,
      ackRequested: false,
      payload: text('kitchen lights on'),
      route: { ttlHops: 4, source: a.id, destination: groupId('kitchen') },
    };
    // A key and signature that do not verify: checking them would count a bad signature and blame a.
    sim.inject(a.id, quiet.id, { ...forKitchen, auth: new Uint8Array(96).fill(7) });
    sim.run();
    expect(quiet.counters.get('mesh.not_relayed') - notRelayedBefore).toBe(1);
    expect(authCounters(quiet)).toEqual(authBefore);
    expect(failures).toEqual([]);
    expect(quiet.delivered).toEqual([]);
  });
});

describe('a restart', () => {
  it('learns the mesh at once from its neighbour, though its replay windows saw those ANNOUNCEs', () => {
    const { sim, a, c, d } = chainWithRogue();
    const restarted = sim.restart(d.id);
    expect(restarted.router.agent(a.id)).toBeUndefined();
    sim.link(c.id, d.id);
    // c announces its changed links, as agents do soon after a link comes; a and the rogue do not.
    c.router.announceNow();
    sim.run();
    expect(restarted.router.agent(a.id)?.name).toBe(`n-${a.id.slice(-4)}`);
    expect(restarted.router.nextHopTo(a.id)).toBe(c.id);
    expect(restarted.counters.get('auth.dropped_repeat')).toBeGreaterThan(0);
  });
});

describe('replays', () => {
  it('a relayed message sent again later is not delivered again (its ACK is repeated, nothing more)', () => {
    const { sim, a, rogue, d } = chainWithRogue();
    // The rogue records what it relays (in the real mesh it sees every routed frame it forwards).
    const captured = sim.capture(rogue.id);
    const id = a.router.nextId();
    a.router.sendData(d.id, text('open the door'), { id, ackRequested: true });
    sim.run();
    const frames = captured();
    expect(d.delivered.map((delivery) => delivery.id)).toEqual([id]);
    const original = frames
      .map((frame) => decodeMessage(frame))
      .find((result) => result.kind === 'message' && result.message.type === 'data');
    if (original?.kind !== 'message' || original.message.type !== 'data') throw new Error('no DATA relayed');
    // Past the 2 s duplicate window, as a replay would come.
    sim.nowMs += 5_000;
    sim.inject(rogue.id, sim.node(chainTopology(4).ids[2] as string).id, original.message);
    sim.run();
    expect(d.delivered.map((delivery) => delivery.id)).toEqual([id, id]);
    expect(d.delivered[1]?.repeat).toBe(true);
    expect(d.counters.get('auth.dropped_repeat')).toBe(1);
  });

  it('a replayed broadcast stops at the first agent that saw it', () => {
    const { sim, a, c, d } = chainWithRogue();
    const id = a.router.nextId();
    const captured = sim.capture(a.id);
    a.router.sendData(BROADCAST_ID, text('all lights on'), { id, ackRequested: false });
    sim.run();
    const frame = captured()[0];
    if (frame === undefined) throw new Error('nothing sent');
    const result = decodeMessage(frame);
    if (result.kind !== 'message' || result.message.type !== 'data') throw new Error('not DATA');
    sim.nowMs += 5_000;
    const forwardedBefore = c.counters.get('mesh.forwarded');
    sim.inject(a.id, sim.node(chainTopology(4).ids[1] as string).id, result.message);
    sim.run();
    expect(d.delivered.filter((delivery) => !delivery.repeat)).toHaveLength(1);
    expect(c.counters.get('mesh.forwarded')).toBe(forwardedBefore);
  });
});

describe('revoked identities', () => {
  it('messages from or through a revoked identity are dropped', () => {
    const { sim, a, rogue, c, d } = chainWithRogue();
    for (const node of [c, d]) node.revoked.add(rogue.id);
    a.router.sendData(d.id, text('through the rogue'), { id: a.router.nextId(), ackRequested: false });
    rogue.router.sendData(d.id, text('from the rogue'), { id: rogue.router.nextId(), ackRequested: false });
    sim.run();
    expect(d.delivered).toEqual([]);
    expect(c.counters.get('auth.dropped_revoked')).toBe(2);
  });
});

describe('routes that lose messages', () => {
  it('a first hop that needed retransmissions twice in a row is avoided for the destination', () => {
    // A ring of 5: 0 reaches 2 through 1 (two hops) or through 4 and 3 (three).
    const ids = Array.from({ length: 5 }, (_, index) => MeshSim.idOf(index));
    const sim = buildSim({ ids, links: ids.map((id, index) => [id, ids[(index + 1) % 5] as string]) });
    sim.announceAll();
    const [zero, one, two, , four] = ids as [string, string, string, string, string];
    const router = sim.node(zero).router;
    expect(router.nextHopTo(two)).toBe(one);
    router.routeOutcome(two, one, false);
    expect(router.nextHopTo(two)).toBe(one);
    router.routeOutcome(two, one, true); // a success in between: one failure is an ordinary lost frame
    router.routeOutcome(two, one, false);
    expect(router.nextHopTo(two)).toBe(one);
    router.routeOutcome(two, one, false);
    expect(router.nextHopTo(two)).toBe(four);
    expect(router.routes()).toContainEqual(
      expect.objectContaining({ destination: two, nextHop: four, hops: 3 }),
    );
    expect(sim.node(zero).counters.get('mesh.routes_penalised')).toBe(1);
    // Other destinations still use the avoided hop.
    expect(router.nextHopTo(one)).toBe(one);
    sim.nowMs += 121_000;
    sim.announceAll();
    expect(router.nextHopTo(two)).toBe(one);
  });

  it('the last path to a destination is never avoided: that would leave only floods, which cross it anyway', () => {
    const { ids } = chainTopology(3);
    const sim = buildSim(chainTopology(3));
    sim.announceAll();
    const [first, middle, last] = ids as [string, string, string];
    const router = sim.node(first).router;
    for (let i = 0; i < 4; i++) router.routeOutcome(last, middle, false);
    expect(router.nextHopTo(last)).toBe(middle);
    expect(sim.node(first).counters.get('mesh.routes_penalised')).toBe(0);
  });
});

it('every routed frame the mesh carries has its origin’s auth, and encodes as sent', () => {
  const { sim, a, d } = chainWithRogue();
  const captured = sim.capture(a.id);
  a.router.sendData(d.id, text('hi'), { id: a.router.nextId(), ackRequested: true });
  sim.run();
  for (const frame of captured()) {
    const result = decodeMessage(frame);
    expect(result.kind).toBe('message');
    if (result.kind === 'message' && 'auth' in result.message) {
      expect([16, 96]).toContain(result.message.auth?.length);
      expect(encodeMessage(result.message)).toEqual(frame);
    }
  }
});
