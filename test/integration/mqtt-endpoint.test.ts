// The agent's MQTT endpoint, end to end: real agent processes linked over TCP, and real MQTT clients
// (mosquitto_pub / mosquitto_sub and mqtt.js on 3.1.1 and 5.0) on each agent's endpoint.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, connect as tcpConnect } from 'node:net';
import { promisify } from 'node:util';
import type { MqttClient, Packet } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../agent/api.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import {
  type AgentProcess,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import { ANONYMOUS_MAY_DO_ANYTHING, collectAs, MqttClients, mqttPort } from '../support/mqtt-clients.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const run = promisify(execFile);
const MESH_KEY = 'bXF0dC1lbmRwb2ludC10ZXN0LW1lc2gta2V5LTMyYiE';

let a: AgentProcess;
let b: AgentProcess;
let aId: string;
let bId: string;
let aMqtt: number;
let bMqtt: number;
const clients = new MqttClients();

interface Received {
  topic: string;
  payload: Buffer;
  userProperties: Record<string, string | string[]> | undefined;
  retain: boolean;
}

function collect(c: MqttClient): Received[] {
  return collectAs(c, (topic, payload, packet) => ({
    topic,
    payload,
    userProperties: packet.properties?.userProperties,
    retain: packet.retain,
  }));
}

beforeAll(async () => {
  const [portA, portB] = await freePorts(2);
  const mqtt = ['listen = "127.0.0.1:0"', ANONYMOUS_MAY_DO_ANYTHING];
  a = await startAgent({ name: 'mq-a', meshKey: MESH_KEY, port: portA as number, mqtt });
  b = await startAgent({
    name: 'mq-b',
    meshKey: MESH_KEY,
    port: portB as number,
    peers: [`127.0.0.1:${portA}`],
    groups: ['hall'],
    mqtt,
  });
  aId = (await a.json<{ id: string }>(['id'])).id;
  bId = (await b.json<{ id: string }>(['id'])).id;
  await until('the agents to link', async () => {
    const peers = await a.json<PeerInfo[]>(['peers']);
    return peers.some((peer) => peer.id === bId && peer.state === 'connected');
  });
  [aMqtt, bMqtt] = [await mqttPort(a), await mqttPort(b)];
}, 40_000);

afterAll(async () => {
  clients.endAll();
  await stopAllAgents();
});

describe('MQTT endpoint of a running agent', () => {
  it('an app publishes to nearmesh/send/<name>; the peer app gets it on nearmesh/inbox/<from> (mqtt.js 3.1.1)', async () => {
    const inbox = await clients.connect(bMqtt, 4);
    const received = collect(inbox);
    await inbox.subscribeAsync('nearmesh/inbox/#', { qos: 1 });
    const sender = await clients.connect(aMqtt, 4);
    await sender.publishAsync('nearmesh/send/mq-b', 'hello from an app', { qos: 1 });
    await until('the inbox message', () => received.length === 1);
    expect(received[0]?.topic).toBe(`nearmesh/inbox/${aId}`);
    expect(received[0]?.payload.toString()).toBe('hello from an app');
  });

  it('MQTT 5 subscribers see who sent it; a request with a response topic learns it is queued', async () => {
    const inbox = await clients.connect(bMqtt, 5);
    const received = collect(inbox);
    await inbox.subscribeAsync(`nearmesh/inbox/${aId}`, { qos: 1 });
    const requester = await clients.connect(aMqtt, 5);
    const replies = collect(requester);
    await requester.subscribeAsync('app/replies', { qos: 1 });
    const binary = Buffer.from([0, 1, 2, 255, 254]);
    await requester.publishAsync(`nearmesh/send/${bId}`, binary, {
      qos: 1,
      properties: { responseTopic: 'app/replies', correlationData: Buffer.from('req-1') },
    });
    await until('the message and the reply', () => received.length === 1 && replies.length === 1);
    expect(received[0]?.payload.equals(binary)).toBe(true);
    expect(received[0]?.userProperties).toMatchObject({ from_name: 'mq-a', hops: '1' });
    expect(JSON.parse(replies[0]?.payload.toString() ?? '')).toEqual({
      ok: true,
      peer: bId,
      seq: expect.any(Number),
      queued: true,
    });

    // Not queued: the PUBACK says so ("topic name invalid": no such peer), and the reply why.
    await expect(
      requester.publishAsync('nearmesh/send/nobody-here', 'x', {
        qos: 1,
        properties: { responseTopic: 'app/replies' },
      }),
    ).rejects.toMatchObject({ code: 0x90 });
    await until('the failure reply', () => replies.length === 2);
    expect(JSON.parse(replies[1]?.payload.toString() ?? '')).toMatchObject({
      ok: false,
      error: { code: 'peer-unreachable' },
    });

    // Larger than the mesh carries, within the packet size: refused in the PUBACK with the reason, and
    // the client stays connected.
    const pubacks: Packet[] = [];
    requester.on('packetreceive', (packet) => packet.cmd === 'puback' && pubacks.push(packet));
    await expect(
      requester.publishAsync(`nearmesh/send/${bId}`, Buffer.alloc(200_000), { qos: 1 }),
    ).rejects.toMatchObject({ code: 0x83 });
    expect(pubacks[0]).toMatchObject({
      reasonCode: 0x83,
      properties: { reasonString: expect.stringMatching(/exceeds the limit/) },
    });
    expect(requester.connected).toBe(true);
    await requester.publishAsync(`nearmesh/send/${bId}`, 'small again', { qos: 1 });
  });

  it('group and broadcast sends reach the members through the mesh', async () => {
    const inbox = await clients.connect(bMqtt, 5);
    const received = collect(inbox);
    await inbox.subscribeAsync('nearmesh/inbox/+', { qos: 1 });
    const sender = await clients.connect(aMqtt, 5);
    await sender.publishAsync('nearmesh/send/group:hall', 'to the hall', { qos: 1 });
    await sender.publishAsync('nearmesh/send/group:kitchen', 'to nobody', { qos: 1 });
    await sender.publishAsync('nearmesh/send/all', 'to everyone', { qos: 1 });
    await until('two messages', () => received.length === 2);
    const byPayload = new Map(received.map((message) => [message.payload.toString(), message]));
    expect(byPayload.get('to the hall')?.userProperties).toMatchObject({ to: 'hall' });
    expect(byPayload.get('to everyone')?.userProperties).toMatchObject({ to: '*' });
    expect(byPayload.has('to nobody')).toBe(false);
  });

  it('nearmesh/peers is retained JSON of the peer table', async () => {
    const watcher = await clients.connect(aMqtt, 4);
    const received = collect(watcher);
    await watcher.subscribeAsync('nearmesh/peers', { qos: 1 });
    await until('the retained peer table', () => received.length >= 1);
    expect(received[0]?.retain).toBe(true);
    const peers = JSON.parse(received[0]?.payload.toString() ?? '') as { id: string; state: string }[];
    expect(peers).toContainEqual(expect.objectContaining({ id: bId, name: 'mq-b', state: 'connected' }));
  });

  describeWhenAvailable('with the mosquitto command-line clients', mosquittoClientsMissing(), () => {
    it('mosquitto_pub on one agent, mosquitto_sub on the other', async () => {
      // -d prints the client's protocol steps: the publish waits for its SUBACK instead of guessing a delay.
      // stdbuf: its stdout is a pipe here, which stdio would otherwise flush only at exit.
      const sub = spawn('stdbuf', [
        ...['-oL', 'mosquitto_sub', '-d', '-p', String(bMqtt), '-t', 'nearmesh/inbox/#', '-v'],
        ...['-C', '1', '-W', '10'],
      ]);
      const exited = once(sub, 'exit');
      let output = '';
      let errors = '';
      sub.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      sub.stderr.on('data', (chunk: Buffer) => {
        errors += chunk.toString();
      });
      await until(
        'mosquitto_sub subscribed',
        () => output.includes('received SUBACK') || sub.exitCode !== null,
      );
      expect(errors).toBe('');
      await run('mosquitto_pub', [
        ...['-p', String(aMqtt), '-t', 'nearmesh/send/mq-b', '-q', '1'],
        ...['-m', 'from mosquitto_pub'],
      ]);
      await exited;
      const messages = output
        .split('\n')
        .filter((line) => line !== '' && !line.startsWith('Client ') && !line.startsWith('Subscribed'));
      expect(messages.join('\n'), errors).toBe(`nearmesh/inbox/${aId} from mosquitto_pub`);
    });

    it('mosquitto_rr learns a send is queued durably (MQTT 5 request/response)', async () => {
      const { stdout } = await run('mosquitto_rr', [
        ...['-p', String(aMqtt), '-V', 'mqttv5', '-t', 'nearmesh/send/mq-b', '-e', 'app/rr'],
        ...['-m', 'ping', '-W', '10'],
      ]);
      expect(JSON.parse(stdout)).toEqual({ ok: true, peer: bId, seq: expect.any(Number), queued: true });
    });
  });

  it('garbage bytes on the MQTT port close that client only', async () => {
    const inbox = await clients.connect(bMqtt, 4);
    const received = collect(inbox);
    await inbox.subscribeAsync('nearmesh/inbox/#', { qos: 1 });
    const sender = await clients.connect(aMqtt, 4);
    const socket = tcpConnect(aMqtt, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await once(socket, 'close');
    await sender.publishAsync('nearmesh/send/mq-b', 'still here', { qos: 1 });
    await until('the message after the garbage', () => received.length === 1);
    expect((await a.cli(['status'])).code).toBe(0);
  });
});

describe('MQTT port policy', () => {
  let holder: Server | undefined;
  let heldPort = 1883;

  beforeAll(async () => {
    // The default port taken (as by a local mosquitto): held by this test if it is free.
    holder = createServer();
    await new Promise<void>((resolve) => {
      holder?.once('error', () => {
        holder = undefined; // already taken by something else: just as good
        resolve();
      });
      holder?.listen(1883, '127.0.0.1', () => resolve());
    });
    const blocker = createServer();
    heldPort = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => {
        const address = blocker.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      }),
    );
    blockers.push(blocker);
  });

  const blockers: Server[] = [];
  afterAll(() => {
    holder?.close();
    for (const blocker of blockers) blocker.close();
  });

  it('the default endpoint on a taken port costs a warning and the agent runs on', async () => {
    const [port] = await freePorts(1);
    const agent = await startAgent({ name: 'mq-default', meshKey: MESH_KEY, port: port as number, mqtt: [] });
    const status = await agent.json<AgentStatus>(['status']);
    expect(status.mqtt).toMatchObject({ state: 'unavailable' });
    expect(agent.output).toContain('MQTT: not serving');
    await agent.stop();
  });

  it('a configured endpoint on a taken port stops the agent with the reason', async () => {
    const [port] = await freePorts(1);
    const dir = temporaryDir();
    const failing = startAgent({
      name: 'mq-taken',
      meshKey: MESH_KEY,
      port: port as number,
      dir,
      mqtt: [`listen = "127.0.0.1:${heldPort}"`],
    });
    // The key to change, and who holds the port (this test process).
    await expect(failing).rejects.toThrow(
      new RegExp(
        `exited early[\\s\\S]*\\[mqtt\\] listen = "127\\.0\\.0\\.1:${heldPort}": the port is already in use by node \\(PID ${process.pid}\\)`,
      ),
    );
  });
});

function mosquittoClientsMissing(): string | undefined {
  try {
    for (const tool of ['mosquitto_pub', 'mosquitto_sub', 'mosquitto_rr']) {
      execFileSync('sh', ['-c', `command -v ${tool}`]);
    }
    return undefined;
  } catch {
    return 'mosquitto-clients (mosquitto_pub, mosquitto_sub, mosquitto_rr) not installed';
  }
}
