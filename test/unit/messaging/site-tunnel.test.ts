// The site tunnel (PROTOCOL.md §20): what crosses a broker between sites arrives once, from the member that
// sent it, or not at all. The broker here is a list of frames the test can drop, repeat, alter or move.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { KeyDirectory } from '../../../agent/identity/key-directory.js';
import { ReplayGuard } from '../../../agent/mesh/replay-guard.js';
import { SequenceCounter } from '../../../agent/mesh/sequence.js';
import {
  SiteTunnel,
  TUNNEL_SYSTEM_EXPIRY_S,
  type TunnelAppMessage,
} from '../../../agent/messaging/site-tunnel.js';
import { encodeCoordination } from '../../../agent/protocol/coordination.js';
import type { SystemMessage } from '../../../agent/protocol/system-kind.js';
import { OriginAuth } from '../../../agent/security/origin-auth.js';
import { openTunnelFrame, sealTunnelFrame } from '../../../agent/security/tunnel-seal.js';
import { identityFromSeed } from '../../../scripts/bench/mesh-sim.js';

interface Frame {
  destination: string;
  frame: Uint8Array;
  expirySeconds: number | undefined;
}

/** One agent's tunnel over a fake broker that records every frame handed to it. */
function agent(meshKey: Uint8Array, options: { seed: number; revoked?: Set<string> }) {
  const identity = identityFromSeed(new Uint8Array(32).fill(options.seed));
  const counters = new Counters();
  const tunnel = new SiteTunnel({
    trust: {
      origin: new OriginAuth(identity, new KeyDirectory()),
      replay: new ReplayGuard(undefined),
      sequence: new SequenceCounter({ reservedSequence: 0, reserveSequence: () => {} }, () => {}, Date.now()),
      isRevoked: (peer) => options.revoked?.has(peer) === true,
    },
    meshKeys: () => [meshKey],
    counters,
  });
  const sent: Frame[] = [];
  const link = { up: true };
  tunnel.attach({
    isUp: () => link.up,
    carry: (destination, frame, { expirySeconds }) => {
      sent.push({ destination, frame, expirySeconds });
      return true;
    },
  });
  const system: SystemMessage[] = [];
  const messages: TunnelAppMessage[] = [];
  tunnel.on('system', (message) => system.push(message));
  tunnel.on('message', (message) => messages.push(message));
  return { id: identity.peerId, tunnel, counters, sent, link, system, messages };
}

const read = encodeCoordination({ kind: 'sensor-read', requestId: 7, sensor: 'room.temp' });

describe('the site tunnel', () => {
  const meshKey = randomBytes(32);

  it('delivers a coordination message once, from its sender, however often the broker repeats it', () => {
    const a = agent(meshKey, { seed: 1 });
    const b = agent(meshKey, { seed: 2 });
    a.tunnel.send(b.id, read, { system: true });
    const [frame] = a.sent;
    expect(frame).toMatchObject({ destination: b.id, expirySeconds: TUNNEL_SYSTEM_EXPIRY_S });
    // The broker cannot read it: the payload's bytes appear nowhere in the frame.
    expect(Buffer.from(frame?.frame ?? []).includes(Buffer.from(read))).toBe(false);
    b.tunnel.receive(frame?.frame ?? new Uint8Array());
    b.tunnel.receive(frame?.frame ?? new Uint8Array());
    expect(b.system).toEqual([{ from: a.id, payload: read, hops: 1, overDirectLink: false }]);
    expect(b.counters.get('tunnel.dropped_replayed')).toBe(1);
  });

  it('delivers app messages in order, each once, with no expiry on the broker', () => {
    const a = agent(meshKey, { seed: 1 });
    const b = agent(meshKey, { seed: 2 });
    for (const text of ['one', 'two', 'three']) a.tunnel.send(b.id, Buffer.from(text), { system: false });
    for (const { frame, expirySeconds } of [...a.sent, ...a.sent]) {
      expect(expirySeconds).toBeUndefined();
      b.tunnel.receive(frame);
    }
    expect(b.messages.map((m) => [m.from, Buffer.from(m.payload).toString()])).toEqual([
      [a.id, 'one'],
      [a.id, 'two'],
      [a.id, 'three'],
    ]);
    expect(b.system).toEqual([]);
  });

  it('refuses frames of another mesh, for another agent, or altered on the way', () => {
    const a = agent(meshKey, { seed: 1 });
    const b = agent(meshKey, { seed: 2 });
    const c = agent(meshKey, { seed: 3 });
    const stranger = agent(randomBytes(32), { seed: 4 });
    stranger.tunnel.send(b.id, read, { system: true });
    a.tunnel.send(c.id, read, { system: true });
    a.tunnel.send(b.id, read, { system: true });
    const [fromStranger, forC, forB] = [stranger.sent[0], a.sent[0], a.sent[1]].map((f) => f?.frame ?? []);
    const altered = Uint8Array.from(forB as Uint8Array);
    altered[altered.length - 20] = (altered[altered.length - 20] as number) ^ 1;
    for (const frame of [fromStranger, forC, altered]) b.tunnel.receive(frame as Uint8Array);
    expect(b.system).toEqual([]);
    expect(b.counters.get('tunnel.dropped_foreign')).toBe(3);
  });

  it('does not let one member speak for another', () => {
    const a = agent(meshKey, { seed: 1 });
    const b = agent(meshKey, { seed: 2 });
    const mallory = agent(meshKey, { seed: 3 });
    // Mallory seals with her own key a frame whose DATA claims to come from a: the signature is not a's.
    mallory.tunnel.send(b.id, read, { system: true });
    const frame = mallory.sent[0]?.frame ?? new Uint8Array();
    const forged = reseal(meshKey, b.id, frame, (message) => {
      const route = message.indexOf(Buffer.from(mallory.id, 'hex'));
      Buffer.from(a.id, 'hex').copy(message, route);
    });
    b.tunnel.receive(forged);
    expect(b.system).toEqual([]);
    expect(b.counters.get('tunnel.dropped_bad_origin')).toBe(1);
  });

  it('takes coordination only of the system kinds, and nothing from a revoked agent', () => {
    const a = agent(meshKey, { seed: 1 });
    const revoked = new Set<string>();
    const b = agent(meshKey, { seed: 2, revoked });
    // A reliable message (kind 12) needs the mesh's acknowledgements: not carried.
    a.tunnel.send(b.id, Uint8Array.from([0x82, 0x0c, 0x00]), { system: true });
    b.tunnel.receive(a.sent[0]?.frame ?? new Uint8Array());
    expect(b.counters.get('tunnel.dropped_kind')).toBe(1);
    revoked.add(a.id);
    a.tunnel.send(b.id, read, { system: true });
    b.tunnel.receive(a.sent[1]?.frame ?? new Uint8Array());
    expect(b.counters.get('tunnel.dropped_revoked')).toBe(1);
    expect(b.system).toEqual([]);
  });

  it('never queues a call while the broker is unreachable; app messages wait in the carrier', () => {
    const a = agent(meshKey, { seed: 1 });
    const b = agent(meshKey, { seed: 2 });
    a.link.up = false;
    expect(a.tunnel.isOpen()).toBe(false);
    expect(() => a.tunnel.send(b.id, read, { system: true })).toThrow(/upstream broker is not connected/);
    a.tunnel.send(b.id, Buffer.from('later'), { system: false });
    expect(a.sent).toHaveLength(1);
    expect(() => a.tunnel.send('garage-pi', read, { system: false })).toThrow(/peer ids/);
  });
});

/** Opens a frame, lets `edit` change the routed message inside, and seals it again under the mesh key. */
function reseal(
  meshKey: Uint8Array,
  destination: string,
  frame: Uint8Array,
  edit: (message: Buffer) => void,
): Uint8Array {
  const message = Buffer.from(openTunnelFrame([meshKey], destination, frame) ?? []);
  edit(message);
  return sealTunnelFrame(meshKey, destination, message);
}
