// Tests of the MQTT broker on its own: a broker per test, and a TCP socket that speaks MQTT by hand
// (mqtt-packet), for what the broker answers to exactly the packets a test writes, malformed or out of
// order ones included.
import { once } from 'node:events';
import { type Socket, connect as tcpConnect } from 'node:net';
import type { IClientOptions, MqttClient } from 'mqtt';
import mqttPacket, { type IPublishPacket, type Packet } from 'mqtt-packet';
import { afterEach, beforeEach } from 'vitest';
import { MqttBroker, type MqttBrokerOptions } from '../../agent/gateway/broker.js';
import { MqttClients } from './mqtt-clients.js';
import { until } from './until.js';

export interface RawClient {
  socket: Socket;
  /** Every packet the broker sent, in order. */
  packets: Packet[];
  /** The bytes the broker sent, as they came. */
  bytes: Buffer[];
  closed: Promise<undefined>;
  send(packet: Packet): boolean;
  /** The first packet of this kind the broker sent (waiting for it). */
  next(cmd: string): Promise<Packet>;
}

/** A raw client of 127.0.0.1:`port`; its socket goes into `sockets`, for the test to destroy. */
export async function rawClient(port: number, version: 4 | 5, sockets: Socket[]): Promise<RawClient> {
  const socket = tcpConnect(port, '127.0.0.1');
  sockets.push(socket);
  await once(socket, 'connect');
  const parser = mqttPacket.parser({ protocolVersion: version });
  const packets: Packet[] = [];
  const bytes: Buffer[] = [];
  parser.on('packet', (packet: Packet) => packets.push(packet));
  parser.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    bytes.push(chunk);
    parser.parse(chunk);
  });
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => undefined);
  return {
    socket,
    packets,
    bytes,
    closed,
    send: (packet: Packet) => socket.write(mqttPacket.generate(packet, { protocolVersion: version })),
    next: async (cmd: string): Promise<Packet> => {
      await until(`a ${cmd} packet`, () => packets.some((p) => p.cmd === cmd));
      return packets.find((p) => p.cmd === cmd) as Packet;
    },
  };
}

/** A CONNECT with a fresh client id, clean start and no keep alive, `fields` over those. */
export function connectPacket(version: 4 | 5, fields: Partial<mqttPacket.IConnectPacket> = {}): Packet {
  return {
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: version,
    clean: true,
    keepalive: 0,
    clientId: `raw-${Math.random().toString(16).slice(2)}`,
    ...fields,
  } as Packet;
}

/** A PUBLISH from a client: payload "x", no DUP, not retained, unless `fields` say otherwise. */
export function rawPublish(fields: Pick<IPublishPacket, 'topic' | 'qos'> & Partial<IPublishPacket>): Packet {
  return { cmd: 'publish', payload: 'x', dup: false, retain: false, ...fields };
}

/**
 * A broker of its own for each test of the calling file (started in beforeEach with `defaults`, closed
 * with its clients and raw sockets in afterEach); `restart` gives the test one with other options.
 */
export function brokerPerTest(defaults: MqttBrokerOptions = {}) {
  let broker: MqttBroker | undefined;
  let port = 0;
  const clients = new MqttClients();
  const sockets: Socket[] = [];
  const start = async (options: MqttBrokerOptions): Promise<void> => {
    broker = new MqttBroker(options);
    port = (await broker.listen('127.0.0.1', 0)).port;
  };
  beforeEach(() => start(defaults));
  afterEach(async () => {
    clients.endAll();
    for (const socket of sockets.splice(0)) socket.destroy();
    await broker?.close();
  });
  return {
    get broker(): MqttBroker {
      if (broker === undefined) throw new Error('the broker starts in beforeEach');
      return broker;
    },
    get port(): number {
      return port;
    },
    clients,
    async restart(options: MqttBrokerOptions): Promise<void> {
      await broker?.close();
      await start(options);
    },
    client: (version: 4 | 5, options: IClientOptions = {}): Promise<MqttClient> =>
      clients.connect(port, version, options),
    raw: (version: 4 | 5): Promise<RawClient> => rawClient(port, version, sockets),
  };
}
