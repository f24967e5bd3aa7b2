// The broker's MQTT 5 features that apps (Home Assistant among them) rely on, each against mqtt.js or a
// raw socket: QoS 2 end to end, message expiry, subscription identifiers, shared subscriptions, will
// delay, server keep alive and topic aliases, and the protocol errors with their reason strings.

import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { IConnackPacket, IDisconnectPacket, IPubrelPacket, ISubackPacket, Packet } from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { collectAs, type MqttClients } from '../support/mqtt-clients.js';
import { brokerPerTest, connectPacket, rawPublish } from '../support/mqtt-raw.js';
import { until } from '../support/until.js';

const under = brokerPerTest();

function client(options: Parameters<MqttClients['connect']>[2] = {}): Promise<MqttClient> {
  return under.clients.connect(under.port, 5, options);
}

/** What `c` receives, each packet with the topic its client resolved (a topic alias's). */
function collect(c: MqttClient): IPublishPacket[] {
  return collectAs(c, (topic, _payload, packet) => ({ ...packet, topic }));
}

/**
 * A client collecting from before its CONNACK: a resumed session's queued messages may come in the same
 * read as the CONNACK, before a collector attached after connecting would see them.
 */
async function resumed(options: IClientOptions): Promise<IPublishPacket[]> {
  const c = connect(`mqtt://127.0.0.1:${under.port}`, { protocolVersion: 5, reconnectPeriod: 0, ...options });
  under.clients.add(c);
  const received = collect(c);
  await new Promise((resolve) => c.once('connect', resolve));
  return received;
}

function raw() {
  return under.raw(5);
}

describe('QoS 2 to subscribers', () => {
  it('sends PUBREL, not the message again, to a subscriber that had received it before it went', async () => {
    const sub = await raw();
    sub.send(
      connectPacket(5, { clientId: 'q2-sub', clean: false, properties: { sessionExpiryInterval: 60 } }),
    );
    await sub.next('connack');
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q2/#', qos: 2 }] });
    expect(((await sub.next('suback')) as ISubackPacket).granted).toEqual([2]);
    const pub = await client();
    await pub.publishAsync('q2/a', 'once', { qos: 2 });
    const publish = (await sub.next('publish')) as IPublishPacket;
    expect(publish.qos).toBe(2);
    sub.send({ cmd: 'pubrec', messageId: publish.messageId as number });
    const pubrel = (await sub.next('pubrel')) as IPubrelPacket;
    expect(pubrel.messageId).toBe(publish.messageId);
    // The short form (paho-mqtt 1.6, Home Assistant's client for years, reads no other PUBREL).
    expect(pubrel.length).toBe(2);
    sub.socket.destroy(); // gone before its PUBCOMP

    const again = await raw();
    again.send(
      connectPacket(5, { clientId: 'q2-sub', clean: false, properties: { sessionExpiryInterval: 60 } }),
    );
    expect(((await again.next('connack')) as IConnackPacket).sessionPresent).toBe(true);
    expect(((await again.next('pubrel')) as IPubrelPacket).messageId).toBe(publish.messageId);
    expect(again.packets.some((p) => p.cmd === 'publish')).toBe(false);
    again.send({ cmd: 'pubcomp', messageId: publish.messageId as number });
    // Completed: the next message takes the window, and nothing of the first is sent again.
    await pub.publishAsync('q2/b', 'next', { qos: 2 });
    expect(((await again.next('publish')) as IPublishPacket).topic).toBe('q2/b');
  });

  it('disconnects a client with more QoS 2 messages unreleased than the Receive Maximum (0x93)', async () => {
    await under.restart({ maxInflight: 3 });
    const c = await raw();
    c.send(connectPacket(5));
    expect(((await c.next('connack')) as IConnackPacket).properties?.receiveMaximum).toBe(3);
    for (let id = 1; id <= 4; id++) c.send(rawPublish({ topic: 't', qos: 2, messageId: id }));
    const disconnect = (await c.next('disconnect')) as IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x93);
    expect(disconnect.properties?.reasonString).toMatch(/Receive Maximum/);
    expect(under.broker.counters.get('mqtt.receive_maximum_exceeded')).toBe(1);
  });
});

describe('message expiry', () => {
  it('drops a queued message whose expiry ran out and counts the interval down on the rest', async () => {
    const options = { clientId: 'exp-sub', clean: false, properties: { sessionExpiryInterval: 600 } };
    const sub = await client(options);
    await sub.subscribeAsync('exp/#', { qos: 1 });
    sub.end(true);
    const pub = await client();
    await pub.publishAsync('exp/short', 'gone', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync('exp/long', 'kept', { qos: 1, properties: { messageExpiryInterval: 30 } });
    await new Promise((resolve) => setTimeout(resolve, 2100));

    const received = await resumed(options);
    await until('the kept message', () => received.length >= 1);
    await pub.publishAsync('exp/marker', 'after', { qos: 1 });
    await until('the marker', () => received.some((p) => p.topic === 'exp/marker'));
    expect(received.map((p) => p.topic)).toEqual(['exp/long', 'exp/marker']);
    const interval = received[0]?.properties?.messageExpiryInterval as number;
    expect(interval).toBeGreaterThanOrEqual(27);
    expect(interval).toBeLessThan(30);
    expect(under.broker.counters.get('mqtt.expired_dropped')).toBe(1);
  });

  it('removes a retained message whose expiry ran out', async () => {
    const pub = await client();
    await pub.publishAsync('ret/short', 'gone', {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 1 },
    });
    await pub.publishAsync('ret/long', 'kept', {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 60 },
    });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const sub = await client();
    const received = collect(sub);
    await sub.subscribeAsync('ret/#', { qos: 1 });
    await until('the kept retained message', () => received.length >= 1);
    await pub.publishAsync('ret/marker', 'after', { qos: 1 });
    await until('the marker', () => received.some((p) => p.topic === 'ret/marker'));
    expect(received.map((p) => p.topic)).toEqual(['ret/long', 'ret/marker']);
    expect(under.broker.stats().retained).toBe(1);
  });
});

describe('subscription identifiers', () => {
  it('are advertised and echoed, all of a session’s matching subscriptions in one PUBLISH', async () => {
    const sub = await client();
    const received = collect(sub);
    await sub.subscribeAsync('ids/+', { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await sub.subscribeAsync('ids/#', { qos: 0, properties: { subscriptionIdentifier: 300_000 } });
    await sub.subscribeAsync('#', { qos: 0 }); // no identifier: adds none
    const pub = await client();
    await pub.publishAsync('ids/x', 'one copy', { qos: 1 });
    await until('the message', () => received.length >= 1);
    await pub.publishAsync('ids/marker', 'after', { qos: 1 });
    await until('the marker', () => received.length >= 2);
    expect(received[0]?.qos).toBe(1);
    expect(new Set([received[0]?.properties?.subscriptionIdentifier].flat())).toEqual(new Set([7, 300_000]));
  });

  it('come with retained messages sent for a new subscription', async () => {
    const pub = await client();
    await pub.publishAsync('ids/retained', 'r', { qos: 1, retain: true });
    const sub = await client();
    const received = collect(sub);
    await sub.subscribeAsync('ids/#', { qos: 1, properties: { subscriptionIdentifier: 42 } });
    await until('the retained message', () => received.length >= 1);
    expect(received[0]?.properties?.subscriptionIdentifier).toBe(42);
  });
});

describe('shared subscriptions', () => {
  it('hand each message to one member of the group, in turn, and all of them to a plain subscriber', async () => {
    const [a, b, plain] = [await client(), await client(), await client()];
    const [toA, toB, toPlain] = [collect(a), collect(b), collect(plain)];
    await a.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
    await b.subscribeAsync('$share/workers/jobs/#', { qos: 1 });
    await plain.subscribeAsync('jobs/#', { qos: 1 });
    const pub = await client();
    for (let i = 0; i < 10; i++) await pub.publishAsync(`jobs/${i}`, `${i}`, { qos: 1 });
    await until(
      'all ten at the plain subscriber and shared among the members',
      () => toPlain.length === 10 && toA.length + toB.length === 10,
    );
    expect([toA.length, toB.length]).toEqual([5, 5]);
    expect(new Set([...toA, ...toB].map((p) => p.topic)).size).toBe(10);
  });

  it('prefer a connected member over one whose session waits offline', async () => {
    const offline = await client({
      clientId: 'sh-off',
      clean: false,
      properties: { sessionExpiryInterval: 600 },
    });
    await offline.subscribeAsync('$share/g/s/#', { qos: 1 });
    offline.end(true);
    const online = await client();
    const received = collect(online);
    await online.subscribeAsync('$share/g/s/#', { qos: 1 });
    const pub = await client();
    for (let i = 0; i < 4; i++) await pub.publishAsync(`s/${i}`, 'x', { qos: 1 });
    await until('all four at the connected member', () => received.length === 4);
  });

  it('send no retained messages when made, and refuse No Local (a protocol error)', async () => {
    const pub = await client();
    await pub.publishAsync('sr/x', 'retained', { qos: 1, retain: true });
    const c = await raw();
    c.send(connectPacket(5));
    await c.next('connack');
    c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/sr/#', qos: 1 }] });
    expect(((await c.next('suback')) as ISubackPacket).granted).toEqual([1]);
    c.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'sr/#', qos: 1 }] });
    await until('the retained message for the plain subscription', () =>
      c.packets.some((p) => p.cmd === 'publish'),
    );
    expect(c.packets.filter((p) => p.cmd === 'publish')).toHaveLength(1);
    c.send({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: '$share/g/x', qos: 1, nl: true }] });
    expect(((await c.next('disconnect')) as IDisconnectPacket).reasonCode).toBe(0x82);
  });

  it('refuse a malformed share name as an invalid filter', async () => {
    const c = await raw();
    c.send(connectPacket(5));
    await c.next('connack');
    c.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: ['$share/g', '$share//t', '$share/g+/t'].map((topic) => ({ topic, qos: 0 as const })),
    });
    expect(((await c.next('suback')) as ISubackPacket).granted).toEqual([0x8f, 0x8f, 0x8f]);
  });
});

describe('will delay', () => {
  async function willClient(delay: number, expiry: number) {
    const c = await raw();
    c.send(
      connectPacket(5, {
        clientId: 'will-delay',
        clean: false,
        properties: { sessionExpiryInterval: expiry },
        will: {
          topic: 'wd/will',
          payload: Buffer.from('gone'),
          qos: 1,
          retain: false,
          properties: { willDelayInterval: delay },
        },
      }),
    );
    await c.next('connack');
    return c;
  }

  /** What a subscriber to the will topics receives. */
  async function watchWills(): Promise<IPublishPacket[]> {
    const watcher = await client();
    const wills = collect(watcher);
    await watcher.subscribeAsync('wd/#', { qos: 1 });
    return wills;
  }

  /** A will client that goes without a DISCONNECT: the milliseconds until its will reaches `wills`. */
  async function msUntilWill(wills: IPublishPacket[], delay: number, expiry: number): Promise<number> {
    const before = wills.length;
    (await willClient(delay, expiry)).socket.destroy();
    const lost = Date.now();
    await until('the will', () => wills.length > before);
    return Date.now() - lost;
  }

  it('publishes the will after its delay, and not at all when the client is back in time', async () => {
    const wills = await watchWills();
    expect(await msUntilWill(wills, 1, 60)).toBeGreaterThanOrEqual(900);
    expect(wills[0]?.properties ?? {}).not.toHaveProperty('willDelayInterval');

    (await willClient(2, 60)).socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const back = await raw();
    back.send(
      connectPacket(5, { clientId: 'will-delay', clean: false, properties: { sessionExpiryInterval: 60 } }),
    );
    await back.next('connack');
    // Past the moment the will would have gone (2 s after its client did), a marker comes, and no will before it.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const pub = await client();
    await pub.publishAsync('wd/marker', 'after', { qos: 1 });
    await until('the marker', () => wills.some((p) => p.topic === 'wd/marker'));
    expect(wills.map((p) => p.topic)).toEqual(['wd/will', 'wd/marker']);
    expect(under.broker.counters.get('mqtt.wills_published')).toBe(1);
  });

  it('publishes the will when the session ends before the delay', async () => {
    expect(await msUntilWill(await watchWills(), 60, 1)).toBeLessThan(5000);
  });
});

describe('CONNECT and CONNACK', () => {
  it('advertises subscription identifiers, shared subscriptions and its Receive Maximum', async () => {
    const c = await raw();
    c.send(connectPacket(5));
    expect(((await c.next('connack')) as IConnackPacket).properties).toMatchObject({
      subscriptionIdentifiersAvailable: true,
      sharedSubscriptionAvailable: true,
      receiveMaximum: 100,
    });
  });

  it('cuts a keep alive longer than max_keepalive with a Server Keep Alive, and leaves none (0) alone', async () => {
    await under.restart({ maxKeepAliveMs: 30_000 });
    for (const [asked, told] of [
      [120, 30],
      [0, undefined],
      [20, undefined],
    ] as const) {
      const c = await raw();
      c.send(connectPacket(5, { keepalive: asked }));
      expect(((await c.next('connack')) as IConnackPacket).properties?.serverKeepAlive).toBe(told);
    }
  });

  it('refuses Receive Maximum 0 and Maximum Packet Size 0 as protocol errors, with a reason string', async () => {
    for (const properties of [{ receiveMaximum: 0 }, { maximumPacketSize: 0 }]) {
      const c = await raw();
      c.send(connectPacket(5, { properties }));
      const connack = (await c.next('connack')) as IConnackPacket;
      expect(connack.reasonCode).toBe(0x82);
      expect(connack.properties?.reasonString).toBe('protocol error');
      await c.closed;
    }
  });

  it('gives topic aliases up to the client’s Topic Alias Maximum', async () => {
    const sub = await client({ properties: { topicAliasMaximum: 1 } });
    const packets: IPublishPacket[] = [];
    sub.on('packetreceive', (packet) => {
      if (packet.cmd === 'publish') packets.push({ ...packet });
    });
    const received = collect(sub);
    await sub.subscribeAsync('alias/#', { qos: 0 });
    const pub = await client();
    for (const topic of ['alias/a', 'alias/a', 'alias/b']) await pub.publishAsync(topic, 'x', { qos: 1 });
    await until('three messages', () => received.length === 3);
    expect(packets.map((p) => [p.topic, p.properties?.topicAlias])).toEqual([
      ['alias/a', 1],
      ['', 1],
      ['alias/b', undefined],
    ]);
    expect(received.map((p) => p.topic)).toEqual(['alias/a', 'alias/a', 'alias/b']);
  });

  it('gives no alias with a message too large for the client, which never sees it', async () => {
    const sub = await client({ properties: { topicAliasMaximum: 1, maximumPacketSize: 200 } });
    const packets: IPublishPacket[] = [];
    sub.on('packetreceive', (packet) => {
      if (packet.cmd === 'publish') packets.push({ ...packet });
    });
    await sub.subscribeAsync('big/#', { qos: 0 });
    const pub = await client();
    await pub.publishAsync('big/x', Buffer.alloc(500), { qos: 1 });
    await pub.publishAsync('big/y', 'small', { qos: 1 });
    await until('the small one', () => packets.length === 1);
    expect([packets[0]?.topic, packets[0]?.properties?.topicAlias]).toEqual(['big/y', 1]);
    expect(under.broker.counters.get('mqtt.outbound_too_large')).toBe(1);
  });
});

describe('reason strings', () => {
  it('come with an error DISCONNECT and a refused PUBACK, and not on a PUBACK when problem information is off', async () => {
    await under.restart({
      access: { mayPublish: () => false, maySubscribe: () => true, mayRead: () => true },
    });
    const c = await raw();
    c.send(connectPacket(5));
    await c.next('connack');
    c.send(rawPublish({ topic: 't', qos: 1, messageId: 1 }));
    const puback = await c.next('puback');
    expect(puback).toMatchObject({
      reasonCode: 0x87,
      properties: { reasonString: 'not authorized by the access control list' },
    });

    const quiet = await raw();
    quiet.send(connectPacket(5, { properties: { requestProblemInformation: false } }));
    await quiet.next('connack');
    quiet.send(rawPublish({ topic: 't', qos: 1, messageId: 1 }));
    const bare = await quiet.next('puback');
    expect(bare).toMatchObject({ reasonCode: 0x87 });
    expect((bare as { properties?: unknown }).properties).toBeUndefined();

    c.send(rawPublish({ topic: 't', qos: 0, properties: { topicAlias: 1 } }));
    const disconnect = (await c.next('disconnect')) as IDisconnectPacket;
    expect(disconnect.reasonCode).toBe(0x94);
    expect(disconnect.properties?.reasonString).toMatch(/topic aliases/);
  });
});

describe('protocol errors', () => {
  it('a client PUBLISH with a Subscription Identifier, and a SUBSCRIBE with identifier 0, disconnect with 0x82', async () => {
    for (const packet of [
      rawPublish({ topic: 't', qos: 0, properties: { subscriptionIdentifier: 3 } }),
      {
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: 't', qos: 0 }],
        properties: { subscriptionIdentifier: 0 },
      },
    ] as const) {
      const c = await raw();
      c.send(connectPacket(5));
      await c.next('connack');
      c.send(packet as Packet);
      expect(((await c.next('disconnect')) as IDisconnectPacket).reasonCode).toBe(0x82);
    }
  });

  it('a payload marked UTF-8 that is not is refused with 0x99 and not passed on', async () => {
    const sub = await client();
    const received = collect(sub);
    await sub.subscribeAsync('pf/#', { qos: 1 });
    const c = await raw();
    c.send(connectPacket(5));
    await c.next('connack');
    const notUtf8 = Buffer.from([0xc3, 0x28]);
    c.send(
      rawPublish({
        topic: 'pf/bad',
        payload: notUtf8,
        qos: 1,
        messageId: 1,
        properties: { payloadFormatIndicator: true },
      }),
    );
    expect(await c.next('puback')).toMatchObject({ reasonCode: 0x99 });
    c.send(
      rawPublish({
        topic: 'pf/good',
        payload: 'ok',
        qos: 1,
        messageId: 2,
        properties: { payloadFormatIndicator: true },
      }),
    );
    await until('the good one', () => received.length === 1);
    expect(received.map((p) => p.topic)).toEqual(['pf/good']);
  });
});

describe('session expiry', () => {
  it('keeps a session whose expiry is longer than a timer can wait', async () => {
    const options = {
      clientId: 'long-lived',
      clean: false,
      properties: { sessionExpiryInterval: 3_000_000 },
    };
    const sub = await client(options);
    await sub.subscribeAsync('long/#', { qos: 1 });
    sub.end(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const pub = await client();
    await pub.publishAsync('long/x', 'queued', { qos: 1 });
    const received = await resumed(options);
    await until('the queued message', () => received.length === 1);
  });
});
