// One peer over two media (in-memory links posing as Wi-Fi and BLE, real handshakes and protocol): both
// links stay up, traffic takes Wi-Fi, falls back to BLE when Wi-Fi goes and returns when it is back,
// and reliable messages sent meanwhile arrive exactly once.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { silentLogger } from '../../../agent/core/logger.js';
import { generateIdentity } from '../../../agent/identity/identity.js';
import { LinkManager, type ReceivedMessage } from '../../../agent/links/link-manager.js';
import { ListResolver, MemoryNetwork, MemoryTransport } from '../../support/memory-transport.js';
import { until } from '../../support/until.js';

const MESH_KEY = randomBytes(32);
const running: LinkManager[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((manager) => manager.stop()));
});

async function node(
  network: MemoryNetwork,
  name: string,
  dial: { wifi?: string; ble?: string } = {},
  options: { offerEndpoints?: boolean } = {},
) {
  const wifi = new MemoryTransport(network, `wifi-${name}:7450`, 'wifi');
  // BLE is the slow medium: what is in flight there arrives after what the Wi-Fi link carries next.
  const ble = new MemoryTransport(network, `ble:${name}`, 'ble', 30);
  const counters = new Counters();
  const manager = new LinkManager({
    identity: generateIdentity(),
    name,
    meshKeys: () => [MESH_KEY],
    transports: [wifi, ble],
    resolvers: [
      new ListResolver(dial.wifi === undefined ? [] : [dial.wifi], 'wifi'),
      new ListResolver(dial.ble === undefined ? [] : [dial.ble], 'ble'),
    ],
    log: silentLogger(),
    counters,
    redial: { initialMs: 20, maxMs: 100 },
    ...(options.offerEndpoints === true && { localEndpoints: () => [wifi.address] }),
  });
  const received: ReceivedMessage[] = [];
  manager.on('message', (message) => received.push(message));
  running.push(manager);
  await manager.start();
  return { manager, wifi, ble, counters, received };
}

/** Closes every Wi-Fi link of the network and stops the listener, as a Wi-Fi outage would. */
async function cutWifi(network: MemoryNetwork, listener: MemoryTransport): Promise<void> {
  await listener.stop();
  for (const [initiator] of network.pairs) if (initiator.medium === 'wifi') initiator.close();
}

describe('a peer linked over two media', () => {
  it('keeps both links, carries traffic on Wi-Fi and lists both media', async () => {
    const network = new MemoryNetwork();
    const b = await node(network, 'b');
    const a = await node(network, 'a', { wifi: 'wifi-b:7450', ble: 'ble:b' });
    await until('both media on both sides', () =>
      [a, b].every((side) => side.manager.peers()[0]?.media.join(',') === 'wifi,ble'),
    );
    expect(a.manager.peers()[0]).toMatchObject({
      state: 'connected',
      medium: 'wifi',
      media: ['wifi', 'ble'],
    });
    await a.manager.send('b', Buffer.from('over wifi'));
    expect(b.received.map((message) => Buffer.from(message.payload).toString())).toEqual(['over wifi']);
    expect(a.counters.snapshot()['links.duplicates_closed'] ?? 0).toBe(0);
  });

  it('falls back to BLE when Wi-Fi goes and returns when it is back, losing and repeating nothing', async () => {
    const network = new MemoryNetwork();
    const b = await node(network, 'b');
    const a = await node(network, 'a', { wifi: 'wifi-b:7450', ble: 'ble:b' });
    await until('both media', () => a.manager.peers()[0]?.media.length === 2);

    const sends: Promise<unknown>[] = [];
    const send = (i: number) => sends.push(a.manager.send('b', Buffer.from(`m${i}`), { timeoutMs: 5_000 }));
    for (let i = 0; i < 50; i++) send(i);
    await cutWifi(network, b.wifi);
    for (let i = 50; i < 100; i++) send(i);
    await until('traffic on BLE', () => a.manager.peers()[0]?.medium === 'ble');
    expect(a.manager.peers()[0]?.state).toBe('connected');
    for (let i = 100; i < 150; i++) send(i);
    await b.wifi.start();
    // A steady stream across the return of Wi-Fi: what is still in flight on the slow BLE link when
    // traffic moves must not be overtaken by what the Wi-Fi link carries next.
    for (let i = 150; i < 250; i++) {
      send(i);
      await new Promise((resolve) => setTimeout(resolve, 2)); // Kept: pacing, a stream spread over time
    }
    await until('Wi-Fi back', () => a.manager.peers()[0]?.medium === 'wifi', { timeoutMs: 5_000 });
    for (let i = 250; i < 300; i++) send(i);
    await Promise.all(sends);
    // Acknowledged on arrival; a message that came on the new link may still wait for the old link's CUTOVER.
    await until('all 300 delivered', () => b.received.length >= 300);

    const payloads = b.received.map((message) => Buffer.from(message.payload).toString());
    expect(payloads).toEqual(Array.from({ length: 300 }, (_, i) => `m${i}`));
    expect(a.counters.snapshot()['links.media_switched']).toBeGreaterThanOrEqual(2);
  });

  it('the peer is down only when its last medium goes', async () => {
    const network = new MemoryNetwork();
    const b = await node(network, 'b');
    const a = await node(network, 'a', { wifi: 'wifi-b:7450', ble: 'ble:b' });
    const downs: string[] = [];
    a.manager.on('peer-down', (peer) => downs.push(peer.name));
    await until('both media', () => a.manager.peers()[0]?.media.length === 2);
    await cutWifi(network, b.wifi);
    await until('BLE only', () => a.manager.peers()[0]?.media.join(',') === 'ble');
    expect(downs).toEqual([]);
    await b.ble.stop();
    for (const [initiator] of network.pairs) if (initiator.medium === 'ble') initiator.close();
    await until('peer down', () => downs.length === 1);
    expect(a.manager.peers()[0]).toMatchObject({ state: 'disconnected', medium: null, media: [] });
  });

  it('a pair that met over BLE learns the Wi-Fi endpoints over it and adds the Wi-Fi link', async () => {
    const network = new MemoryNetwork();
    const b = await node(network, 'b', {}, { offerEndpoints: true });
    const a = await node(network, 'a', { ble: 'ble:b' }, { offerEndpoints: true });
    await until('Wi-Fi added on both sides', () =>
      [a, b].every((side) => side.manager.peers()[0]?.media.join(',') === 'wifi,ble'),
    );
    expect(a.manager.peers()[0]?.medium).toBe('wifi');
    // Whichever side heard the other's endpoints first dialled the Wi-Fi link; the other's may still be in flight.
    const heard = (side: typeof a): number => side.counters.snapshot()['links.endpoints_heard'] ?? 0;
    expect(heard(a) + heard(b)).toBeGreaterThanOrEqual(1);
    await a.manager.send('b', Buffer.from('upgraded'));
    expect(b.received.map((message) => Buffer.from(message.payload).toString())).toEqual(['upgraded']);
  });

  it('unreliable mode: one attempt on the link in use, no acknowledgement, dropped and counted when no link can take it', async () => {
    const network = new MemoryNetwork();
    const b = await node(network, 'b');
    const a = await node(network, 'a', { wifi: 'wifi-b:7450' });
    await until('linked', () => a.manager.peers()[0]?.state === 'connected');
    const bId = a.manager.peers()[0]?.id as string;
    expect(a.manager.sendUnreliable(bId, Buffer.from('fire and forget'))).toBe(true);
    await until('delivered', () => b.received.length === 1);
    expect(Buffer.from(b.received[0]?.payload ?? []).toString()).toBe('fire and forget');
    await cutWifi(network, b.wifi);
    await until('down', () => a.manager.peers()[0]?.state === 'disconnected');
    expect(a.manager.sendUnreliable(bId, Buffer.from('nowhere to go'))).toBe(false);
    expect(a.counters.snapshot()).toMatchObject({
      'messages.unreliable_sent': 1,
      'messages.unreliable_dropped': 1,
    });
  });
});
