// Local MQTT clients try to make the agent hold memory or stall: unfinished PUBLISHes on many
// connections, persistent sessions queuing big messages while offline, a PUBLISH sent 10 bytes at a
// time, 40 000 subscriptions dropped at once, 9 000 retained messages asked for by 20 clients at once, 100
// subscribers that never read. One
// agent per attack: it answers `status` throughout, its RSS stays within idle + 64 MB (idle: after one
// client has warmed the MQTT code up), its event loop is never held over 100 ms, and each bound's counter
// moves.

import { once } from 'node:events';
import { type Socket, connect as tcpConnect } from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../../agent/api.js';
import { countersOf, startMqttAgent, withinBounds } from '../../support/abuse.js';
import { type AgentProcess, stopAllAgents } from '../../support/agent-process.js';
import { collect, MqttClients } from '../../support/mqtt-clients.js';
import { rssMb } from '../../support/proc-status.js';
import { until } from '../../support/until.js';

const clients = new MqttClients();
const sockets: Socket[] = [];

afterAll(async () => {
  clients.endAll();
  for (const socket of sockets) socket.destroy();
  await stopAllAgents();
});

/** A raw client past CONNECT (keep-alive 0: it may stay silent forever as far as keep-alive goes), or closed. */
async function rawConnected(port: number, clientId: string): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    mqttPacket.generate({ cmd: 'connect', clientId, protocolVersion: 4, clean: true, keepalive: 0 }),
  );
  // CONNACK, or closed (refused): once() rejects on the reset a refused socket may see instead.
  await Promise.race([once(socket, 'data'), once(socket, 'close')]).catch(() => undefined);
  return socket;
}

function publishPacket(topic: string, payload: Buffer): Buffer {
  return mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
}

/** An agent serving MQTT, after one client has connected, subscribed and published (lazy code loaded). */
async function startFlooded(
  name: string,
  mqttLines: string[] = [],
): Promise<{ agent: AgentProcess; pid: number; mqtt: number; idle: number }> {
  const { agent, mqtt, pid } = await startMqttAgent(name, mqttLines);
  const warm = await clients.connect(mqtt, 4, { clientId: `${name}-warm` });
  await warm.subscribeAsync('warm/#', { qos: 1 });
  await warm.publishAsync('warm/x', 'hello', { qos: 1 });
  await warm.endAsync();
  return { agent, pid, mqtt, idle: rssMb(pid) };
}

describe('abuse: MQTT flood', () => {
  it('300 connections holding 200 KB of a PUBLISH that never ends: refused, then timed out', async () => {
    const flooded = await startFlooded('unfinished', ['packet_timeout = "3s"']);
    const { agent, mqtt } = flooded;
    await withinBounds(flooded.agent, flooded.pid, flooded.idle, async () => {
      const unfinished = publishPacket('flood/x', Buffer.alloc(250_000, 1)).subarray(0, 200_000);
      const held = await Promise.all(Array.from({ length: 300 }, (_, i) => rawConnected(mqtt, `hold-${i}`)));
      for (const socket of held) socket.write(unfinished);
      let seen: Record<string, number> = {};
      await until(
        () => `connections and unfinished bytes refused, packets timed out: ${JSON.stringify(seen)}`,
        async () => {
          seen = await countersOf(agent);
          return (
            (seen['mqtt.connections_refused'] ?? 0) > 0 &&
            (seen['mqtt.unfinished_bytes_refused'] ?? 0) > 0 &&
            (seen['mqtt.packet_timeouts'] ?? 0) > 0
          );
        },
      );
    });
  });

  it('20 persistent sessions away while 120 messages of 250 KB are published for them', async () => {
    const flooded = await startFlooded('queues');
    const { agent, mqtt } = flooded;
    await withinBounds(flooded.agent, flooded.pid, flooded.idle, async () => {
      for (let i = 0; i < 20; i++) {
        const c = await clients.connect(mqtt, 4, { clientId: `away-${i}`, clean: false });
        await c.subscribeAsync('big/#', { qos: 1 });
        await c.endAsync();
      }
      const publisher = await clients.connect(mqtt, 4, { clientId: 'publisher' });
      for (let i = 0; i < 120; i++)
        await publisher.publishAsync('big/x', Buffer.alloc(250_000, i), { qos: 1 });
      const seen = await countersOf(agent);
      expect(seen['mqtt.queue_dropped']).toBeGreaterThan(0);
      expect(seen['mqtt.queue_total_dropped']).toBeGreaterThan(0);
    });
  });

  it('a 200 KB PUBLISH sent 10 bytes at a time arrives', async () => {
    const flooded = await startFlooded('trickle');
    await withinBounds(flooded.agent, flooded.pid, flooded.idle, async () => {
      const listener = await clients.connect(flooded.mqtt, 4, { clientId: 'listener' });
      await listener.subscribeAsync('slow/#');
      const received = collect(listener);
      const trickler = await rawConnected(flooded.mqtt, 'trickler');
      const slow = publishPacket('slow/x', Buffer.alloc(200_000, 3));
      for (let at = 0; at < slow.length; at += 10) {
        if (!trickler.write(slow.subarray(at, at + 10))) await once(trickler, 'drain');
      }
      await until('the trickled message', () => received.some((m) => m.payload.length === 200_000));
    });
  });

  // Filters of three levels, like `sensors/<room>/<id>`: each costs about 1.2 KB of RSS (50 000 come to
  // ~62 MB, too near the bound to test reliably), deeper unique ones more, which is why a client holds at
  // most max_subscriptions_per_client (1000) by default.
  it('a client with 40 000 subscriptions goes without stalling the agent', async () => {
    const flooded = await startFlooded('filters', ['max_subscriptions_per_client = 40000']);
    const { agent, mqtt } = flooded;
    await withinBounds(flooded.agent, flooded.pid, flooded.idle, async () => {
      const subscriber = await rawConnected(mqtt, 'many-filters');
      let subacks = 0;
      const parser = mqttPacket.parser();
      parser.on('packet', (packet) => {
        if (packet.cmd === 'suback') subacks++;
      });
      subscriber.on('data', (chunk: Buffer) => parser.parse(chunk));
      for (let packet = 0; packet < 10; packet++) {
        const subscriptions = Array.from({ length: 4000 }, (_, j) => ({
          topic: `many/${packet}/${j}`,
          qos: 1 as const,
        }));
        subscriber.write(mqttPacket.generate({ cmd: 'subscribe', messageId: packet + 1, subscriptions }));
      }
      await until('the 10 SUBACKs', () => subacks === 10);
      const refused = await countersOf(agent);
      // One more over the default quota would have been refused: the test raised it.
      expect(refused['mqtt.subscriptions_refused'] ?? 0).toBe(0);
      subscriber.destroy();
      await until('the client to be gone', async () => {
        const status = await agent.json<AgentStatus>(['status']);
        return status.mqtt.state === 'on' && status.mqtt.clients === 0;
      });
    });
  });

  it('9 000 retained messages, then 20 clients at once subscribing to filters that match them all', async () => {
    const flooded = await startFlooded('retained');
    const { agent, mqtt } = flooded;
    await withinBounds(flooded.agent, flooded.pid, flooded.idle, async () => {
      const publisher = await clients.connect(mqtt, 4, { clientId: 'retainer' });
      for (let i = 0; i < 9000; i++)
        publisher.publish(`ret/${i % 100}/${i}`, Buffer.alloc(50), { qos: 0, retain: true });
      await publisher.endAsync();
      await until('9 000 retained', async () => {
        const endpoint = (await agent.json<AgentStatus>(['status'])).mqtt;
        return endpoint.state === 'on' && endpoint.retained >= 9000;
      });
      const subscribers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => clients.connect(mqtt, 4, { clientId: `asker-${i}` })),
      );
      const counts = subscribers.map(() => 0);
      subscribers.forEach((subscriber, i) => {
        subscriber.on('message', () => {
          counts[i] = (counts[i] ?? 0) + 1;
        });
      });
      await Promise.all(
        subscribers.map((subscriber) => subscriber.subscribeAsync(['ret/#', 'ret/+/+', 'ret/+/#'])),
      );
      // Each filter brings every retained message (MQTT sends them per subscription).
      await until(
        () => `every retained message, three times, to each: ${counts.join(' ')}`,
        () => counts.every((n) => n === 27_000),
      );
    });
  });

  it('100 subscribers to # that never read while 3 000 messages of 10 KB are published', async () => {
    const flooded = await startFlooded('deaf');
    const { agent, mqtt } = flooded;
    await withinBounds(flooded.agent, flooded.pid, flooded.idle, async () => {
      for (let i = 0; i < 100; i++) {
        const deaf = await rawConnected(mqtt, `deaf-${i}`);
        deaf.write(
          mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 0 }] }),
        );
        deaf.pause();
      }
      await until('100 subscribers', async () => {
        const endpoint = (await agent.json<AgentStatus>(['status'])).mqtt;
        return endpoint.state === 'on' && endpoint.clients === 100;
      });
      const publisher = await clients.connect(mqtt, 4, { clientId: 'loud' });
      for (let i = 0; i < 3000; i++)
        await publisher.publishAsync('loud/x', Buffer.alloc(10_000, i), { qos: 1 });
      expect((await countersOf(agent))['mqtt.backpressure_dropped']).toBeGreaterThan(0);
    });
  });
});
