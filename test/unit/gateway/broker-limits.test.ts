// The local broker's bounds, each against loopback clients: what happens at the bound and its counter.
import { once } from 'node:events';
import { type Socket, connect as tcpConnect } from 'node:net';
import mqttPacket, { type ISubackPacket, type Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MqttBroker, type MqttBrokerOptions } from '../../../agent/gateway/broker.js';
import { collect, MqttClients } from '../../support/mqtt-clients.js';
import { countTurns } from '../../support/turns.js';
import { until } from '../../support/until.js';

let broker: MqttBroker;
let port: number;
const clients = new MqttClients();
const sockets: Socket[] = [];

async function startBroker(options: MqttBrokerOptions): Promise<void> {
  broker = new MqttBroker(options);
  port = (await broker.listen('127.0.0.1', 0)).port;
}

afterEach(async () => {
  clients.endAll();
  for (const socket of sockets.splice(0)) socket.destroy();
  await broker.close();
});

interface RawClient {
  socket: Socket;
  closed: () => boolean;
  packets: Packet[];
}

/** A raw TCP client that has completed CONNECT, collecting what it receives. */
async function connected(clientId: string, version: 4 | 5 = 4): Promise<RawClient> {
  const socket = tcpConnect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  let closed = false;
  socket.on('close', () => {
    closed = true;
  });
  const packets: Packet[] = [];
  const parser = mqttPacket.parser({ protocolVersion: version });
  parser.on('packet', (packet: Packet) => packets.push(packet));
  socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  await once(socket, 'connect');
  socket.write(
    mqttPacket.generate(
      { cmd: 'connect', clientId, protocolVersion: version, clean: true, keepalive: 0 },
      { protocolVersion: version },
    ),
  );
  await until('CONNACK', () => packets.some((packet) => packet.cmd === 'connack'));
  return { socket, closed: () => closed, packets };
}

async function subscribeRaw(client: RawClient, version: 4 | 5, filters: string[]): Promise<number[]> {
  const messageId = client.packets.length + 1;
  client.socket.write(
    mqttPacket.generate(
      { cmd: 'subscribe', messageId, subscriptions: filters.map((topic) => ({ topic, qos: 0 as const })) },
      { protocolVersion: version },
    ),
  );
  const suback = await until('SUBACK', () =>
    client.packets.find((packet) => packet.cmd === 'suback' && packet.messageId === messageId),
  );
  return (suback as ISubackPacket).granted as number[];
}

function publishPacket(payloadBytes: number): Buffer {
  return mqttPacket.generate({
    cmd: 'publish',
    topic: 't',
    payload: Buffer.alloc(payloadBytes),
    qos: 0,
    retain: false,
    dup: false,
  });
}

describe('MQTT broker bounds', () => {
  it('closes connections beyond max_connections, counted', async () => {
    await startBroker({ maxConnections: 2 });
    await connected('one');
    await connected('two');
    const third = tcpConnect(port, '127.0.0.1');
    sockets.push(third);
    third.on('error', () => {});
    await once(third, 'close');
    expect(broker.counters.get('mqtt.connections_refused')).toBe(1);
    expect(broker.stats().clients).toBe(2);
  });

  it('disconnects a client whose packet is not finished within packet_timeout, counted', async () => {
    await startBroker({ packetTimeoutMs: 300 });
    const client = await connected('slow');
    client.socket.write(publishPacket(1000).subarray(0, 500));
    await until('the unfinished client to be closed', client.closed);
    expect(broker.counters.get('mqtt.packet_timeouts')).toBe(1);
  });

  it('times each packet on its own: a client slower in total than packet_timeout stays', async () => {
    await startBroker({ packetTimeoutMs: 1000 });
    const client = await connected('steady');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const packet = publishPacket(100);
      for (let round = 1; round <= 4; round++) {
        // Each half arrives 600 ms after the one before: 4.2 s in all, no packet over 1 s.
        client.socket.write(packet.subarray(0, 50));
        await vi.advanceTimersByTimeAsync(600);
        client.socket.write(packet.subarray(50));
        await until('the packet to arrive', () => broker.counters.get('mqtt.messages_in') === round);
        await vi.advanceTimersByTimeAsync(600);
      }
      expect(client.closed()).toBe(false);
      expect(broker.counters.get('mqtt.packet_timeouts')).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('bounds bytes of unfinished packets over all connections, and gives them back', async () => {
    await startBroker({ maxUnfinishedBytesTotal: 150_000 });
    const pair = [await connected('first'), await connected('second')];
    // Beyond each connection's free 64 KiB, 150 000 bytes of a packet count 84 464: one fits, two do not
    // (and a whole 200 KB packet, at most 134 469 counted however it arrives, fits alone).
    const big = publishPacket(200_000);
    for (const client of pair) client.socket.write(big.subarray(0, 150_000));
    await until('one of the two to be closed', () => pair.some((client) => client.closed()));
    expect(broker.counters.get('mqtt.unfinished_bytes_refused')).toBe(1);
    // While the budget is spent, an app whose ordinary packet comes in two reads is not cut off.
    const app = await connected('app');
    const ordinary = publishPacket(30_000);
    app.socket.write(ordinary.subarray(0, 10_000));
    app.socket.write(ordinary.subarray(10_000));
    await until('the ordinary packet to arrive', () => broker.counters.get('mqtt.messages_in') === 1);
    const survivor = pair.find((client) => !client.closed()) as RawClient;
    survivor.socket.write(big.subarray(150_000));
    await until('the survivor packet to arrive', () => broker.counters.get('mqtt.messages_in') === 2);
    // Both let go of what they held: a whole big packet fits again.
    const third = await connected('third');
    third.socket.write(big.subarray(0, 150_000));
    third.socket.write(big.subarray(150_000));
    await until('the third packet to arrive', () => broker.counters.get('mqtt.messages_in') === 3);
    expect(survivor.closed()).toBe(false);
    expect(app.closed()).toBe(false);
  });

  it("refuses subscriptions beyond max_subscriptions_total, and counts a gone session's until they left", async () => {
    await startBroker({ maxSubscriptionsTotal: 3 });
    const first = await connected('first', 5);
    expect(await subscribeRaw(first, 5, ['a', 'b'])).toEqual([0, 0]);
    const second = await connected('second', 5);
    expect(await subscribeRaw(second, 5, ['c', 'd'])).toEqual([0, 0x97]);
    expect(broker.counters.get('mqtt.subscriptions_total_refused')).toBe(1);
    first.socket.destroy();
    await until(
      'the first session to be gone',
      () => broker.stats().clients === 1 && broker.stats().sessions === 1,
    );
    await until('its filters to leave the trie', async () => (await subscribeRaw(second, 5, ['d']))[0] === 0);
  });

  it('refuses subscriptions beyond max_subscriptions_per_client: 0x97 for MQTT 5, 0x80 for 3.1.1', async () => {
    await startBroker({ maxSubscriptionsPerClient: 2 });
    const v5 = await connected('v5', 5);
    expect(await subscribeRaw(v5, 5, ['a', 'b', 'c'])).toEqual([0, 0, 0x97]);
    // Subscribing again to a filter held is a replacement, not a new one.
    expect(await subscribeRaw(v5, 5, ['a'])).toEqual([0]);
    const v4 = await connected('v4', 4);
    expect(await subscribeRaw(v4, 4, ['a', 'b', 'c'])).toEqual([0, 0, 0x80]);
    expect(broker.counters.get('mqtt.subscriptions_refused')).toBe(2);
  });

  it('counts a filter once per 4 levels begun against the quotas', async () => {
    await startBroker({ maxSubscriptionsPerClient: 3 });
    const client = await connected('deep', 5);
    // 4 levels count 1, 5 count 2: the third is one unit too many.
    expect(await subscribeRaw(client, 5, ['a/b/c/d', 'a/b/c/d/e', 'x'])).toEqual([0, 0, 0x97]);
    expect(await subscribeRaw(client, 5, ['a/b/c/d/e'])).toEqual([0]); // a replacement takes nothing more
  });

  it('refuses topics deeper than max_topic_levels: a filter in SUBACK, a PUBLISH with a disconnect', async () => {
    await startBroker({ maxTopicLevels: 3 });
    const client = await connected('levels', 5);
    expect(await subscribeRaw(client, 5, ['a/b/c', 'a/b/c/d', '+/+/+/#'])).toEqual([0, 0x8f, 0x8f]);
    client.socket.write(
      mqttPacket.generate(
        { cmd: 'publish', topic: 'a/b/c/d', payload: Buffer.from('x'), qos: 0, retain: false, dup: false },
        { protocolVersion: 5 },
      ),
    );
    await until('the disconnect', () => client.closed());
    const disconnect = client.packets.find((packet) => packet.cmd === 'disconnect');
    expect(disconnect).toMatchObject({ reasonCode: 0x90 });
    expect(broker.counters.get('mqtt.topics_too_deep')).toBe(3);
  });

  it('with one step per turn, still handles every packet and retained message, in order, turn by turn', async () => {
    await startBroker({ turnBudgetMs: 0 });
    for (let i = 0; i < 50; i++) broker.publish(`r/${i}`, `retained ${i}`, { retain: true });
    const client = await clients.connect(port, 5, { clientId: 'patient' });
    const received = collect(client);
    const turns = countTurns();
    // Sent at once: the SUBSCRIBE's 50 retained messages go out before the PUBLISH after it is read.
    client.subscribe('r/#');
    client.publish('r/live', 'live');
    await until('all 51 messages', () => received.length === 51);
    expect(turns.stop()).toBeGreaterThanOrEqual(50);
    expect(received.slice(0, 50).every((m) => m.packet.retain)).toBe(true);
    expect(received[50]?.topic).toBe('r/live');
  });

  it('bounds an offline session queue in bytes: the oldest go, the newest are delivered', async () => {
    await startBroker({ maxQueuedBytes: 1024 * 1024, maxQueuedBytesTotal: 16 * 1024 * 1024 });
    const first = await clients.connect(port, 4, { clientId: 'persist', clean: false });
    await first.subscribeAsync('q/#', { qos: 1 });
    await first.endAsync();
    await until('the client to be gone', () => broker.stats().clients === 0);
    for (let i = 0; i < 10; i++) broker.publish('q/x', Buffer.alloc(300_000, i), { qos: 1 });
    expect(broker.counters.get('mqtt.queue_dropped')).toBe(7);
    const again = await clients.connect(port, 4, { clientId: 'persist', clean: false });
    const received = collect(again);
    await until('the queued messages', () => received.length === 3);
    expect(received.map((m) => m.payload[0])).toEqual([7, 8, 9]);
  });

  it('bounds queued bytes over all sessions, counted apart', async () => {
    await startBroker({ maxQueuedBytes: 1024 * 1024, maxQueuedBytesTotal: 2 * 1024 * 1024 });
    for (const clientId of ['s1', 's2', 's3']) {
      const c = await clients.connect(port, 4, { clientId, clean: false });
      await c.subscribeAsync('q/#', { qos: 1 });
      await c.endAsync();
    }
    await until('the clients to be gone', () => broker.stats().clients === 0);
    for (let i = 0; i < 10; i++) broker.publish('q/x', Buffer.alloc(300_000, i), { qos: 1 });
    expect(broker.counters.get('mqtt.queue_total_dropped')).toBeGreaterThan(0);
    let receivedBytes = 0;
    for (const clientId of ['s1', 's2', 's3']) {
      const c = await clients.connect(port, 4, { clientId, clean: false });
      c.on('message', (_topic, payload) => {
        receivedBytes += payload.length;
      });
    }
    await until('queued messages to arrive', () => receivedBytes > 0);
    expect(receivedBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  it('bounds retained bytes, counted', async () => {
    await startBroker({ maxRetainedBytes: 10_000 });
    for (let i = 0; i < 5; i++) broker.publish(`r/${i}`, Buffer.alloc(2800), { retain: true }); // + topic + 2 levels × 200
    expect(broker.stats().retained).toBe(3);
    expect(broker.counters.get('mqtt.retained_dropped')).toBe(2);
  });
});
