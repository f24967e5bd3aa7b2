// Two agents that share no link talk through an upstream mosquitto their bridges both use: real agent
// processes, a real broker (restarted mid-test), real MQTT apps on each agent's endpoint.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AgentStatus } from '../../agent/api.js';
import { type AgentProcess, freePorts, startAgent, stopAllAgents } from '../support/agent-process.js';
import { Mosquitto, missingMosquittoTools } from '../support/mosquitto.js';
import { ANONYMOUS_MAY_DO_ANYTHING } from '../support/mqtt-clients.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const MESH_KEY = Buffer.from('bridge-agents-test-mesh-key-32b!').toString('base64url');

describeWhenAvailable('agents bridged through an upstream mosquitto', missingMosquittoTools(), () => {
  let broker: Mosquitto;
  let brokerDir: string;
  let x: AgentProcess;
  let y: AgentProcess;
  let xId: string;
  const clients: MqttClient[] = [];

  async function endpoint(agent: AgentProcess): Promise<MqttClient> {
    const status = await agent.json<AgentStatus>(['status']);
    if (status.mqtt.state !== 'on') throw new Error('no MQTT endpoint');
    const port = Number(status.mqtt.listen.split(':').at(-1));
    const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0 });
    clients.push(client);
    return client;
  }

  async function upstreamConnected(agent: AgentProcess, connected: boolean): Promise<void> {
    await until(`upstream ${connected ? 'up' : 'down'} on ${agent.spec.name}`, async () => {
      const status = await agent.json<AgentStatus>(['status']);
      return status.mqtt.state === 'on' && status.mqtt.upstream?.connected === connected;
    });
  }

  beforeAll(async () => {
    brokerDir = await mkdtemp(join(tmpdir(), 'nearmesh-broker-'));
    const [brokerPort, portX, portY] = (await freePorts(3)) as [number, number, number];
    broker = new Mosquitto(brokerDir, brokerPort);
    await broker.start();
    const bridged = (name: string) => [
      'listen = "127.0.0.1:0"',
      ANONYMOUS_MAY_DO_ANYTHING,
      '[mqtt.upstream]',
      `url = "mqtt://127.0.0.1:${brokerPort}"`,
      `client_id = "test-${name}"`,
      'prefix = "sites/"',
    ];
    // No static peers, no discovery: the two never link.
    x = await startAgent({ name: 'br-x', meshKey: MESH_KEY, port: portX, mqtt: bridged('x') });
    y = await startAgent({
      name: 'br-y',
      meshKey: MESH_KEY,
      port: portY,
      groups: ['far'],
      mqtt: bridged('y'),
    });
    xId = (await x.json<{ id: string }>(['id'])).id;
    await Promise.all([upstreamConnected(x, true), upstreamConnected(y, true)]);
  }, 40_000);

  afterAll(async () => {
    for (const client of clients.splice(0)) client.end(true);
    await stopAllAgents();
    await broker?.stop();
    await rm(brokerDir, { recursive: true, force: true });
  });

  it('a send to an agent the mesh does not reach goes through the broker to its inbox', async () => {
    const inbox = await endpoint(y);
    const received: { topic: string; payload: string; via: unknown }[] = [];
    inbox.on('message', (topic, payload, packet) =>
      received.push({ topic, payload: payload.toString(), via: packet.properties?.userProperties?.via }),
    );
    await inbox.subscribeAsync('nearmesh/inbox/#', { qos: 1 });
    const app = await endpoint(x);
    await app.publishAsync('nearmesh/send/br-y', 'across sites', { qos: 1 });
    await app.publishAsync('nearmesh/send/group:far', 'to the far group', { qos: 1 });
    await until('both messages', () => received.length >= 2);
    expect(received).toEqual([
      { topic: `nearmesh/inbox/${xId}`, payload: 'across sites', via: 'upstream' },
      { topic: `nearmesh/inbox/${xId}`, payload: 'to the far group', via: 'upstream' },
    ]);
  });

  it('QoS 1 messages sent while the broker restarts all arrive, once and in order', async () => {
    const inbox = await endpoint(y);
    const received: string[] = [];
    inbox.on('message', (_topic, payload) => received.push(payload.toString()));
    await inbox.subscribeAsync(`nearmesh/inbox/${xId}`, { qos: 1 });
    const app = await endpoint(x);
    await broker.stop();
    await upstreamConnected(x, false);
    for (let i = 0; i < 20; i++) await app.publishAsync('nearmesh/send/br-y', `m${i}`, { qos: 1 });
    await broker.start();
    await until('20 messages', () => received.length >= 20, { timeoutMs: 30_000 });
    // Nothing extra trickles in: a message sent now arrives after any copy of the 20.
    await app.publishAsync('nearmesh/send/br-y', 'after', { qos: 1 });
    await until('the message after them', () => received.includes('after'));
    expect(received).toEqual([...Array.from({ length: 20 }, (_, i) => `m${i}`), 'after']);
  }, 45_000);
});
