// The broker's side of the app inbox's MQTT consumers: a copy handed to one client, its PUBACK reported,
// copies dropped when the client goes, live copies that skip a client, and the subscriptions it holds.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttBroker } from '../../../agent/gateway/broker.js';
import type { Subscription } from '../../../agent/gateway/session-store.js';
import { collect, MqttClients } from '../../support/mqtt-clients.js';
import { until } from '../../support/until.js';

let broker: MqttBroker;
const clients = new MqttClients();

afterEach(async () => {
  clients.endAll();
  await broker.close();
});

async function started(): Promise<number> {
  broker = new MqttBroker({});
  return (await broker.listen('127.0.0.1', 0)).port;
}

describe('inbox copies in the broker', () => {
  it('hands a copy to one client and reports its PUBACK; live copies skip the client named', async () => {
    const port = await started();
    const held: Array<{ clientId: string; persistent: boolean; filters: string[] }> = [];
    broker.onHolds((clientId, session, subscriptions: readonly Subscription[]) =>
      held.push({ clientId, persistent: session.persistent, filters: subscriptions.map((s) => s.filter) }),
    );
    const consumer = await clients.connect(port, 4, { clientId: 'consumer', clean: false });
    const other = await clients.connect(port, 4, { clientId: 'other' });
    await consumer.subscribeAsync('nearmesh/inbox/#', { qos: 1 });
    await other.subscribeAsync('nearmesh/inbox/#', { qos: 1 });
    expect(held).toContainEqual({ clientId: 'consumer', persistent: true, filters: ['nearmesh/inbox/#'] });
    const toConsumer = collect(consumer);
    const toOther = collect(other);
    let acked = 0;
    expect(
      broker.deliverTo('consumer', {
        topic: 'nearmesh/inbox/0123456789abcdef',
        payload: Buffer.from('own copy'),
        qos: 1,
        retain: false,
        onAcked: () => acked++,
      }),
    ).toBe(true);
    expect(broker.deliverTo('nobody', { topic: 't', payload: Buffer.from('x'), qos: 1, retain: false })).toBe(
      false,
    );
    broker.publish('nearmesh/inbox/0123456789abcdef', 'live', { qos: 1, skip: (id) => id === 'consumer' });
    await until('the copies', () => toConsumer.length === 1 && toOther.length === 1 && acked === 1);
    expect(toConsumer[0]?.payload.toString()).toBe('own copy');
    expect(toOther[0]?.payload.toString()).toBe('live');
  });

  it('drops the inbox copies a session holds when told, and resends its other unacknowledged ones', async () => {
    const port = await started();
    // A client that never acknowledges: what it was sent stays in flight in its session.
    const raw = async (): Promise<{ socket: Socket; publishes: IPublishPacket[] }> => {
      const socket = connect(port, '127.0.0.1');
      const publishes: IPublishPacket[] = [];
      const parser = mqttPacket.parser();
      parser.on('packet', (packet: Packet) => {
        if (packet.cmd === 'publish') publishes.push(packet);
      });
      socket.on('data', (chunk: Buffer) => parser.parse(chunk));
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          clientId: 'slow',
          clean: false,
          keepalive: 0,
          protocolVersion: 4,
        }),
      );
      socket.write(
        mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 1 }] }),
      );
      await until('subscribed', () => broker.stats().clients === 1);
      return { socket, publishes };
    };
    const first = await raw();
    broker.publish('kept/x', 'kept', { qos: 1 });
    await until('connected', () =>
      broker.deliverTo('slow', {
        topic: 'nearmesh/inbox/x',
        payload: Buffer.from('copy'),
        qos: 1,
        retain: false,
        onAcked: () => {},
      }),
    );
    await until('both sent', () => first.publishes.length === 2);
    first.socket.destroy();
    await until('the client gone', () => broker.stats().clients === 0);
    broker.dropInboxCopies('slow');
    const again = await raw();
    await until('the unacknowledged message again', () => again.publishes.length >= 1);
    expect(again.publishes.map((packet) => packet.payload.toString())).toEqual(['kept']);
    expect(again.publishes[0]?.dup).toBe(true);
    again.socket.destroy();
  });
});
