// The link manager against real handshakes and protocol over in-memory links: one connection per
// pair however both sides dial, acknowledged delivery exactly once, and hostile input counted; and over
// loopback TCP, what a peer meets while an agent stops.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { PeerUnreachableError, TimeoutError } from '../../../agent/core/errors.js';
import { silentLogger } from '../../../agent/core/logger.js';
import { generateIdentity, type Identity } from '../../../agent/identity/identity.js';
import { type LinkFrame, LinkManager, type ReceivedMessage } from '../../../agent/links/link-manager.js';
import { TcpTransport } from '../../../transports/wifi/tcp-transport.js';
import { ListResolver, MemoryNetwork, MemoryTransport } from '../../support/memory-transport.js';
import { until } from '../../support/until.js';

interface Node {
  manager: LinkManager;
  transport: MemoryTransport;
  counters: Counters;
  received: ReceivedMessage[];
}

const running: LinkManager[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((manager) => manager.stop()));
});

async function startNode(
  network: MemoryNetwork,
  address: string,
  dials: string[],
  options: {
    meshKey?: Uint8Array;
    name?: string;
    identity?: Identity;
    keepalive?: { intervalMs: number; deadAfterMs: number };
    /** Bandwidth of the links this node dials. */
    bytesPerSecond?: number;
  } = {},
): Promise<Node> {
  const transport = new MemoryTransport(network, address, 'memory', 0, options.bytesPerSecond);
  const counters = new Counters();
  const manager = new LinkManager({
    identity: options.identity ?? generateIdentity(),
    name: options.name ?? address,
    meshKeys: () => [options.meshKey ?? MESH_KEY],
    transports: [transport],
    resolvers: [new ListResolver(dials)],
    log: silentLogger(),
    counters,
    redial: { initialMs: 20, maxMs: 100 },
    ...(options.keepalive !== undefined && { keepalive: options.keepalive }),
  });
  const received: ReceivedMessage[] = [];
  manager.on('message', (message) => received.push(message));
  running.push(manager);
  await manager.start();
  return { manager, transport, counters, received };
}

const MESH_KEY = randomBytes(32);

const connectedPeers = (node: Node) => node.manager.peers().filter((peer) => peer.state === 'connected');

describe('LinkManager', () => {
  it('links two agents and delivers an acknowledged message once', async () => {
    const network = new MemoryNetwork();
    const b = await startNode(network, 'mem:b', []);
    const a = await startNode(network, 'mem:a', ['mem:b']);
    await until('link', () => connectedPeers(a).length === 1 && connectedPeers(b).length === 1);
    expect(connectedPeers(a)[0]).toMatchObject({
      id: b.manager.peerId,
      name: 'mem:b',
      direction: 'outbound',
    });
    expect(connectedPeers(b)[0]).toMatchObject({ id: a.manager.peerId, name: 'mem:a', direction: 'inbound' });

    await expect(a.manager.send('mem:b', Buffer.from('hi'))).resolves.toEqual({ peer: b.manager.peerId });
    expect(b.received).toHaveLength(1);
    expect(Buffer.from(b.received[0]!.payload).toString()).toBe('hi');
    expect(b.received[0]!.from).toBe(a.manager.peerId);
  });

  it('reports the frames of its links only while a tracer is attached', async () => {
    const network = new MemoryNetwork();
    const b = await startNode(network, 'mem:b', []);
    const a = await startNode(network, 'mem:a', ['mem:b']);
    await until('link', () => connectedPeers(a).length === 1);
    const frames: LinkFrame[] = [];
    a.manager.on('frame', (frame) => frames.push({ ...frame }));
    await a.manager.send('mem:b', Buffer.from('untraced'));
    expect(frames).toHaveLength(0);

    const detach = a.manager.traceFrames(() => {});
    await a.manager.send('mem:b', Buffer.from('traced'));
    expect(frames.map((frame) => [frame.direction, frame.message.type])).toEqual([
      ['out', 'data'],
      ['in', 'ack'],
    ]);
    expect(frames[0]).toMatchObject({ peer: b.manager.peerId, peerName: 'mem:b', medium: 'memory' });
    expect(frames[0]?.message).toMatchObject({ ackRequested: true, payload: Buffer.from('traced') });

    detach();
    detach(); // a second call changes nothing: the count must not go below zero
    const seen = frames.length;
    await a.manager.send('mem:b', Buffer.from('untraced again'));
    expect(frames).toHaveLength(seen);
    const again = a.manager.traceFrames(() => {});
    await a.manager.send('mem:b', Buffer.from('traced again'));
    expect(frames.length).toBe(seen + 2);
    again();
  });

  it('keeps exactly one connection, the same on both sides, when both dial at once', async () => {
    for (let round = 0; round < 10; round++) {
      const network = new MemoryNetwork();
      const a = await startNode(network, `mem:a${round}`, [`mem:b${round}`]);
      const b = await startNode(network, `mem:b${round}`, [`mem:a${round}`]);
      // Settled: one link each, seen from both ends (a duplicate may show for a moment before it is closed).
      await until(
        'one link, the same on both sides',
        () =>
          connectedPeers(a).length === 1 &&
          connectedPeers(b).length === 1 &&
          connectedPeers(a)[0]?.direction !== connectedPeers(b)[0]?.direction,
      );
      const [atA] = connectedPeers(a);
      const [atB] = connectedPeers(b);
      // The survivor is one link seen from both ends: outbound at one side, inbound at the other.
      expect(atA?.direction).not.toBe(atB?.direction);
      const dialler = atA?.direction === 'outbound' ? a.manager.peerId : b.manager.peerId;
      if (a.counters.get('links.duplicates_closed') > 0) {
        expect(dialler).toBe([a.manager.peerId, b.manager.peerId].sort()[0]);
      }
      await a.manager.send(b.manager.peerId, Buffer.from(`round ${round}`));
      expect(b.received.map((m) => Buffer.from(m.payload).toString())).toEqual([`round ${round}`]);
      await Promise.all(running.splice(0).map((manager) => manager.stop()));
    }
  });

  it('refuses a peer with another mesh key on both sides and counts it', async () => {
    const network = new MemoryNetwork();
    const b = await startNode(network, 'mem:b', []);
    const a = await startNode(network, 'mem:a', ['mem:b'], { meshKey: randomBytes(32) });
    await until(
      'refusals',
      () => b.counters.get('handshake.refused') >= 2 && a.counters.get('handshake.refused') >= 2,
    );
    expect(a.manager.peers()).toEqual([]);
    expect(b.manager.peers()).toEqual([]);
  });

  it('drops and counts malformed messages without losing the link', async () => {
    const network = new MemoryNetwork();
    const b = await startNode(network, 'mem:b', []);
    const a = await startNode(network, 'mem:a', ['mem:b']);
    await until('link', () => connectedPeers(a).length === 1);
    const link = a.manager.directory.get(b.manager.peerId)?.connection?.link;
    link?.send(Uint8Array.from([0xff, 0x00, 0x13]));
    link?.send(Uint8Array.from([0x84, 0x18, 0x34, 0x00, 0x01, 0xf6])); // hdr 52: version 2, type 20: unknown, ignored
    await a.manager.send(b.manager.peerId, Buffer.from('still here'));
    expect(b.counters.get('protocol.decode_errors')).toBe(1);
    expect(b.counters.get('protocol.unknown_types')).toBe(1);
    expect(b.received).toHaveLength(1);
    expect(connectedPeers(b)).toHaveLength(1);
  });

  it('holds a message for a disconnected peer and delivers it once when the peer is back', async () => {
    const network = new MemoryNetwork();
    const identityB = generateIdentity();
    let b = await startNode(network, 'mem:b', [], { identity: identityB });
    const a = await startNode(network, 'mem:a', ['mem:b']);
    await until('link', () => connectedPeers(a).length === 1);
    await b.manager.stop();
    await until('unlinked', () => connectedPeers(a).length === 0);
    const sending = a.manager.send(identityB.peerId, Buffer.from('held'), { timeoutMs: 3_000 });
    b = await startNode(network, 'mem:b', [], { identity: identityB });
    await expect(sending).resolves.toEqual({ peer: identityB.peerId });
    expect(b.received.map((m) => Buffer.from(m.payload).toString())).toEqual(['held']);
  });

  it('never hands a held message to another device that took the address', async () => {
    const network = new MemoryNetwork();
    let b = await startNode(network, 'mem:b', []);
    const a = await startNode(network, 'mem:a', ['mem:b']);
    await until('link', () => connectedPeers(a).length === 1);
    const peerB = b.manager.peerId;
    await b.manager.stop();
    await until('unlinked', () => connectedPeers(a).length === 0);
    const sending = a.manager.send(peerB, Buffer.from('later'), { timeoutMs: 1_000 });
    // A device with a new identity at the same address is another peer: the message must not go to it.
    b = await startNode(network, 'mem:b', []);
    await until('relink', () => connectedPeers(a).length === 1);
    await expect(sending).rejects.toBeInstanceOf(TimeoutError);
    expect(b.received).toEqual([]);
  });

  it('fails sends to unknown and ambiguous peers with PeerUnreachableError', async () => {
    const network = new MemoryNetwork();
    await startNode(network, 'mem:b', [], { name: 'twin' });
    await startNode(network, 'mem:c', [], { name: 'twin' });
    const a = await startNode(network, 'mem:a', ['mem:b', 'mem:c']);
    await until('links', () => connectedPeers(a).length === 2);
    await expect(a.manager.send('nobody', Buffer.from('x'))).rejects.toBeInstanceOf(PeerUnreachableError);
    await expect(a.manager.send('twin', Buffer.from('x'))).rejects.toThrow(/several peers/);
  });

  it('keeps a link whose one large message takes longer than the keep-alive limit to arrive', async () => {
    const network = new MemoryNetwork();
    // A silence limit a loaded CI machine cannot reach by a stalled event loop alone (150 ms did, once).
    const keepalive = { intervalMs: 50, deadAfterMs: 500 };
    // 300 kB/s: a 900 kB message is on the medium for 3 s, six times the silence limit, and the pings sent
    // meanwhile wait behind it. Its bytes arriving say the link is alive.
    const slow = { keepalive, bytesPerSecond: 300_000 };
    const b = await startNode(network, 'mem:b', [], slow);
    const a = await startNode(network, 'mem:a', ['mem:b'], slow);
    await until('link', () => connectedPeers(a).length === 1);
    const big = randomBytes(900_000);
    await a.manager.send(b.manager.peerId, big);
    await until('the message at b', () =>
      b.received.some((message) => Buffer.from(message.payload).equals(big)),
    );
    expect(a.counters.get('links.keepalive_timeouts')).toBe(0);
    expect(b.counters.get('links.keepalive_timeouts')).toBe(0);
    expect(connectedPeers(b)).toHaveLength(1);
  });

  it('notices a silent peer by keep-alive and re-dials it', async () => {
    const network = new MemoryNetwork();
    const keepalive = { intervalMs: 20, deadAfterMs: 120 };
    const b = await startNode(network, 'mem:b', [], { keepalive });
    const a = await startNode(network, 'mem:a', ['mem:b'], { keepalive });
    await until('link', () => connectedPeers(a).length === 1);
    const silencedAt = Date.now();
    network.silence('mem:b');
    await until('unlinked', () => connectedPeers(a).length === 0, { timeoutMs: 2_000 });
    expect(Date.now() - silencedAt).toBeLessThan(1_000);
    expect(a.counters.get('links.keepalive_timeouts')).toBe(1);
    // The cable is fine again for new links: a re-dials and both sides settle on one new connection.
    await until('relinked', () => connectedPeers(a).length === 1 && connectedPeers(b).length === 1);
    await a.manager.send(b.manager.peerId, Buffer.from('back'));
  });

  it('recognises its own address and stops dialling it', async () => {
    // Time is the subject (redials back off from 20 to 100 ms): it is faked; memory links stay immediate.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      const network = new MemoryNetwork();
      const a = await startNode(network, 'mem:a', ['mem:a']);
      await until('the dial to itself noticed', async () => {
        await vi.advanceTimersByTimeAsync(10);
        return a.counters.get('links.self_connections') >= 1;
      });
      await vi.advanceTimersByTimeAsync(10_000); // a hundred redial delays and more
      expect(a.manager.peers()).toEqual([]);
      expect(a.transport.dialCount).toBe(1);
      expect(a.counters.get('links.self_connections')).toBeGreaterThanOrEqual(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('LinkManager stopping', () => {
  it('stops accepting before it closes its links: a peer dialling it meanwhile is refused by TCP, its key never doubted', async () => {
    const counters = new Counters();
    const listening = new TcpTransport({ listen: { host: '127.0.0.1', port: 0 }, closeGraceMs: 200 });
    // A resolver slow to stop holds the stop up, as mDNS goodbyes or a peer slow to close do.
    let finishStop = (): void => undefined;
    const slowResolver = new ListResolver([], 'wifi');
    slowResolver.stop = () => new Promise<void>((resolve) => (finishStop = resolve));
    const stopping = new LinkManager({
      identity: generateIdentity(),
      name: 'stopping',
      meshKeys: () => [MESH_KEY],
      transports: [listening],
      resolvers: [slowResolver],
      log: silentLogger(),
      counters: new Counters(),
    });
    await stopping.start();
    const address = `127.0.0.1:${listening.address()?.port}`;
    const stopped = stopping.stop();
    try {
      const dialler = new LinkManager({
        identity: generateIdentity(),
        name: 'dialler',
        meshKeys: () => [MESH_KEY],
        transports: [new TcpTransport({ listen: false })],
        resolvers: [new ListResolver([address], 'wifi')],
        log: silentLogger(),
        counters,
        redial: { initialMs: 20, maxMs: 40 },
      });
      running.push(dialler);
      await dialler.start();
      await until('several dials while the other stops', () => counters.get('links.dial_failures') >= 3);
      expect(counters.get('handshake.refused')).toBe(0);
      expect(counters.get('handshake.failed')).toBe(0);
    } finally {
      finishStop();
      await stopped;
    }
  });
});
