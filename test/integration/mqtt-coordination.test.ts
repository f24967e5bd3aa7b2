// Coordination over the agent's MQTT endpoint, end to end: two real agents linked over TCP, apps on their
// endpoints calling actions (mosquitto_rr on MQTT 5, mqtt.js on 3.1.1 with the envelope, CBOR), sensor
// values an app provides read from the other agent's CLI and retained on nearmesh/sensor/..., and actions
// an app provides called from the other agent's CLI and answered by the app.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallResultRow } from '../../agent/api.js';
import type { PeerInfo } from '../../agent/links/peer-directory.js';
import { decodeJsonCbor, encodeJsonCbor } from '../../agent/protocol/json-cbor.js';
import {
  type AgentProcess,
  cliCall,
  freePorts,
  startAgent,
  stopAllAgents,
  temporaryDir,
} from '../support/agent-process.js';
import {
  ANONYMOUS_MAY_DO_ANYTHING,
  collect,
  MqttClients,
  mqttPort,
  type Received,
} from '../support/mqtt-clients.js';
import { describeWhenAvailable } from '../support/requirements.js';
import { until } from '../support/until.js';

const run = promisify(execFile);
const PAHO_HA = resolve(import.meta.dirname, 'children/paho-ha.py');

function pahoMissing(): string | undefined {
  return spawnSync('/usr/bin/python3', ['-c', 'import paho.mqtt.client']).status === 0
    ? undefined
    : 'python3-paho-mqtt is not installed (apt-get install python3-paho-mqtt)';
}
const MESH_KEY = Buffer.from('mqtt-coordination-test-mesh-key!').toString('base64url');

let a: AgentProcess;
let b: AgentProcess;
let aId: string;
let bId: string;
let aMqtt: number;
let bMqtt: number;
const clients = new MqttClients();

function json(message: Received | undefined): unknown {
  return JSON.parse(message?.payload.toString() ?? 'null');
}

beforeAll(async () => {
  const scripts = temporaryDir('nearmesh-mqtt-actions-');
  const echo = join(scripts, 'echo');
  writeFileSync(echo, '#!/bin/sh\nargs=$(cat); printf \'{"agent":"mc-b","args":%s}\' "$args"\n');
  chmodSync(echo, 0o755);
  // A sensor whose every reading is one more than the last: a new reading shows as a new value.
  const counter = join(scripts, 'counter');
  const count = join(scripts, 'count');
  writeFileSync(
    counter,
    `#!/bin/sh\nn=$(cat ${count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${count}; echo $n\n`,
  );
  chmodSync(counter, 0o755);
  const [portA, portB] = await freePorts(2);
  const mqtt = ['listen = "127.0.0.1:0"', ANONYMOUS_MAY_DO_ANYTHING];
  a = await startAgent({ name: 'mc-a', meshKey: MESH_KEY, port: portA as number, mqtt });
  b = await startAgent({
    name: 'mc-b',
    meshKey: MESH_KEY,
    port: portB as number,
    peers: [`127.0.0.1:${portA}`],
    mqtt,
    extraToml: [
      ...['[[actions]]', 'name = "echo"', `exec = [${JSON.stringify(echo)}]`],
      ...['[[sensors]]', 'name = "counter"', `exec = [${JSON.stringify(counter)}]`, 'unit = "1"'],
    ].join('\n'),
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

describe('calling actions over MQTT', () => {
  describeWhenAvailable('with mosquitto_rr', mosquittoRrMissing(), () => {
    it('mosquitto_rr -V mqttv5 calls an exec action on the other agent and prints the results', async () => {
      const { stdout } = await run('mosquitto_rr', [
        ...['-p', String(aMqtt), '-V', 'mqttv5', '-t', 'nearmesh/call/mc-b/echo', '-e', 'my/reply'],
        ...['-m', '{"on":true}', '-W', '15'],
      ]);
      const rows = JSON.parse(stdout) as CallResultRow[];
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        peer: bId,
        name: 'mc-b',
        status: 'ok',
        result: { agent: 'mc-b', args: { on: true } },
      });
      expect(typeof rows[0]?.fired_at).toBe('string');

      // Options as user properties, as docs/MQTT.md shows them.
      const withOptions = await run('mosquitto_rr', [
        ...['-p', String(aMqtt), '-V', 'mqttv5', '-t', `nearmesh/call/${bId}/echo`, '-e', 'my/reply'],
        ...['-D', 'publish', 'user-property', 'timeout', '5s'],
        ...['-D', 'publish', 'user-property', 'in', '200ms'],
        ...['-m', '{"n":1}', '-W', '15'],
      ]);
      expect(JSON.parse(withOptions.stdout)).toEqual([
        expect.objectContaining({ status: 'ok', result: { agent: 'mc-b', args: { n: 1 } } }),
      ]);
      const badDuration = await run('mosquitto_rr', [
        ...['-p', String(aMqtt), '-V', 'mqttv5', '-t', 'nearmesh/call/mc-b/echo', '-e', 'my/reply'],
        ...['-D', 'publish', 'user-property', 'timeout', '5 seconds', '-m', '{}', '-W', '15'],
      ]);
      expect(JSON.parse(badDuration.stdout)).toMatchObject({ error: { code: 'bad-request' } });
    });
  });

  it('mqtt.js 5: correlation data comes back; options in user properties; refusals are error replies', async () => {
    const app = await clients.connect(aMqtt, 5);
    const replies = collect(app);
    await app.subscribeAsync('app/replies', { qos: 1 });
    const request = (topic: string, payload: string, extra: Record<string, string> = {}, id = 'r') =>
      app.publishAsync(topic, payload, {
        qos: 1,
        properties: {
          responseTopic: 'app/replies',
          correlationData: Buffer.from(id),
          ...(Object.keys(extra).length > 0 && { userProperties: extra }),
        },
      });
    await request(`nearmesh/call/${bId}/echo`, '', { timeout: '5s', key: 'k-1' }, 'empty-args');
    await until('the reply', () => replies.length === 1);
    expect(replies[0]?.packet.properties?.correlationData?.toString()).toBe('empty-args');
    expect(replies[0]?.packet.properties?.contentType).toBe('application/json');
    expect(json(replies[0])).toEqual([
      expect.objectContaining({ peer: bId, status: 'ok', result: { agent: 'mc-b', args: {} } }),
    ]);

    await request('nearmesh/call/nobody-here/echo', '{}', {}, 'unknown');
    await request('nearmesh/call/mc-b/echo', '{not json', {}, 'malformed');
    await request('nearmesh/call/mc-b/echo', '[1,2]', {}, 'array');
    await request('nearmesh/call/mc-b/echo', '{}', { timeout: 'soon' }, 'bad-timeout');
    await request('nearmesh/call/mc-b/echo/extra', '{}', {}, 'bad-topic');
    await request('nearmesh/call/mc-b/nothing-here', '{}', {}, 'unknown-action');
    await until('six more replies', () => replies.length === 7);
    const byId = new Map(
      replies.map((reply) => [reply.packet.properties?.correlationData?.toString(), json(reply)]),
    );
    expect(byId.get('unknown')).toMatchObject({ error: { code: 'unknown-peer' } });
    expect(byId.get('malformed')).toMatchObject({ error: { code: 'bad-request' } });
    expect(byId.get('array')).toMatchObject({ error: { code: 'bad-request' } });
    expect(byId.get('bad-timeout')).toMatchObject({ error: { code: 'bad-request' } });
    expect(byId.get('bad-topic')).toMatchObject({ error: { code: 'invalid-topic' } });
    expect(byId.get('unknown-action')).toEqual([
      expect.objectContaining({
        peer: bId,
        status: 'error',
        error: expect.objectContaining({ code: 'unknown-action' }),
      }),
    ]);
  });

  it('mqtt.js 3.1.1: the request envelope, with reply_to and correlation or the default reply topic', async () => {
    const app = await clients.connect(aMqtt, 4, { clientId: 'old-app' });
    const replies = collect(app);
    await app.subscribeAsync('old-app/replies', { qos: 1 });
    await app.subscribeAsync('nearmesh/reply/old-app', { qos: 1 });
    await app.publishAsync(
      'nearmesh/call/mc-b/echo',
      JSON.stringify({ args: { on: true }, reply_to: 'old-app/replies', correlation: 7, timeout: '5s' }),
      { qos: 1 },
    );
    await until('the reply', () => replies.length === 1);
    expect(replies[0]?.topic).toBe('old-app/replies');
    expect(json(replies[0])).toEqual({
      correlation: 7,
      results: [
        expect.objectContaining({ peer: bId, status: 'ok', result: { agent: 'mc-b', args: { on: true } } }),
      ],
    });

    await app.publishAsync('nearmesh/call/group:nobody/echo', '', { qos: 1 });
    await app.publishAsync('nearmesh/call/mc-b/echo', '{"on":true}', { qos: 1 });
    await until('two replies on the default topic', () => replies.length === 3);
    expect(replies[1]?.topic).toBe('nearmesh/reply/old-app');
    expect(json(replies[1])).toEqual({ results: [] });
    expect(json(replies[2])).toMatchObject({ error: { code: 'bad-request', message: /unknown key "on"/ } });
  });

  it('a request with content type application/cbor gets a CBOR reply', async () => {
    const app = await clients.connect(aMqtt, 5);
    const replies = collect(app);
    await app.subscribeAsync('app/cbor', { qos: 1 });
    const cbor = { contentType: 'application/cbor', responseTopic: 'app/cbor' };
    await app.publishAsync('nearmesh/call/mc-b/echo', Buffer.from(encodeJsonCbor({ level: 2.5 })), {
      qos: 1,
      properties: { ...cbor, correlationData: Buffer.from('ok') },
    });
    await app.publishAsync('nearmesh/call/mc-b/echo', Buffer.from([0xff, 0x00]), {
      qos: 1,
      properties: { ...cbor, correlationData: Buffer.from('bad') },
    });
    await until('two replies', () => replies.length === 2);
    const byId = new Map(
      replies.map((reply) => [reply.packet.properties?.correlationData?.toString(), reply]),
    );
    expect(byId.get('ok')?.packet.properties?.contentType).toBe('application/cbor');
    expect(decodeJsonCbor(byId.get('ok')?.payload ?? Buffer.alloc(0))).toEqual([
      expect.objectContaining({ peer: bId, status: 'ok', result: { agent: 'mc-b', args: { level: 2.5 } } }),
    ]);
    expect(decodeJsonCbor(byId.get('bad')?.payload ?? Buffer.alloc(0))).toMatchObject({
      error: { code: 'bad-request' },
    });
  });
});

describe('sensors over MQTT', () => {
  it('a value an app publishes on B is a sensor of B, read from A with the CLI', async () => {
    const sensorApp = await clients.connect(bMqtt, 4);
    await sensorApp.publishAsync('nearmesh/provide/sensor/room.temp', '{"value":21.5,"unit":"Cel"}', {
      qos: 1,
    });
    // On B at once, in the agent's own format.
    const localWatcher = await clients.connect(bMqtt, 4);
    const local = collect(localWatcher);
    await localWatcher.subscribeAsync(`nearmesh/sensor/${bId}/room.temp`, { qos: 1 });
    await until('the retained value on B', () => local.length >= 1);
    expect(local[0]?.packet.retain).toBe(true);
    expect(json(local[0])).toMatchObject({ value: 21.5, unit: 'Cel', peer_name: 'mc-b' });

    expect(await a.json(['read', 'mc-b', 'room.temp'])).toMatchObject({
      peer: bId,
      value: 21.5,
      unit: 'Cel',
    });
    // A bare value keeps the unit.
    await sensorApp.publishAsync('nearmesh/provide/sensor/room.temp', '22', { qos: 1 });
    expect(await a.json(['read', bId, 'room.temp'])).toMatchObject({ value: 22, unit: 'Cel' });
    // Announced to the mesh with its unit.
    await until('the announcement on A', async () => {
      const rows = await a.json<{ peer: string; sensor: string; unit: string | null }[]>(['sensors']);
      return rows.some((row) => row.peer === bId && row.sensor === 'room.temp' && row.unit === 'Cel');
    });
  });

  it("a read of an agent's own sensor is retained on its nearmesh/sensor/<id>/<sensor>", async () => {
    expect(await b.json(['read', 'mc-b', 'mem.used'])).toMatchObject({ peer: bId, unit: '%' });
    const watcher = await clients.connect(bMqtt, 5);
    const received = collect(watcher);
    await watcher.subscribeAsync(`nearmesh/sensor/${bId}/mem.used`, { qos: 1 });
    // The subscription also watches the sensor: fresh readings may follow the retained one.
    await until('the retained value on B', () => received.length >= 1);
    expect(received[0]?.packet.retain).toBe(true);
    expect(json(received[0])).toMatchObject({ unit: '%', peer_name: 'mc-b', value: expect.any(Number) });
  });

  it("after a read from A, the value is retained on A's nearmesh/sensor/<B-id>/<sensor>", async () => {
    const sensorApp = await clients.connect(bMqtt, 5);
    await sensorApp.publishAsync('nearmesh/provide/sensor/room.humidity', '{"value":40,"unit":"%"}', {
      qos: 1,
    });
    expect(await a.json(['read', 'mc-b', 'room.humidity'])).toMatchObject({ value: 40 });
    const watcher = await clients.connect(aMqtt, 4);
    const received = collect(watcher);
    await watcher.subscribeAsync('nearmesh/sensor/#', { qos: 1 });
    const topic = `nearmesh/sensor/${bId}/room.humidity`;
    await until('the retained value on A', () => received.some((message) => message.topic === topic));
    const retained = received.find((message) => message.topic === topic);
    expect(retained?.packet.retain).toBe(true);
    const value = json(retained) as { read_at: string };
    expect(value).toMatchObject({ value: 40, unit: '%', peer_name: 'mc-b' });
    expect(Number.isNaN(Date.parse(value.read_at))).toBe(false);

    // A subscriber gets each new value as it is learned.
    await sensorApp.publishAsync('nearmesh/provide/sensor/room.humidity', '41', { qos: 1 });
    expect(await a.json(['read', 'mc-b', 'room.humidity'])).toMatchObject({ value: 41 });
    await until('the new value on A', () =>
      received.some(
        (message) => message.topic === topic && (json(message) as { value?: unknown }).value === 41,
      ),
    );
  });

  it('an app on A reads a sensor of B now on nearmesh/read/<peer>/<sensor> (MQTT 5 and 3.1.1)', async () => {
    const v5 = await clients.connect(aMqtt, 5);
    const replies = collect(v5);
    await v5.subscribeAsync('my/readings', { qos: 1 });
    await v5.publishAsync('nearmesh/read/mc-b/counter', '', {
      qos: 1,
      properties: { responseTopic: 'my/readings', correlationData: Buffer.from('r1') },
    });
    await until('the MQTT 5 reply', () => replies.length === 1);
    expect(json(replies[0])).toMatchObject({
      peer: bId,
      sensor: 'counter',
      value: expect.any(Number),
      unit: '1',
    });
    expect(replies[0]?.packet.properties?.correlationData?.toString()).toBe('r1');

    const v3 = await clients.connect(aMqtt, 4, { clientId: 'reader-311' });
    const envelopeReplies = collect(v3);
    await v3.subscribeAsync('nearmesh/reply/reader-311', { qos: 1 });
    await v3.publishAsync(`nearmesh/read/${bId}/counter`, '{"correlation":7}', { qos: 1 });
    await v3.publishAsync('nearmesh/read/mc-b/no.such.sensor', '{"correlation":8}', { qos: 1 });
    await until('both envelope replies', () => envelopeReplies.length === 2);
    const byCorrelation = new Map(
      envelopeReplies.map((reply) => [(json(reply) as { correlation: number }).correlation, json(reply)]),
    );
    expect(byCorrelation.get(7)).toMatchObject({ peer: bId, sensor: 'counter', value: expect.any(Number) });
    expect(byCorrelation.get(8)).toMatchObject({
      error: { code: expect.any(String), message: expect.any(String) },
    });
  });

  it("a subscription to one sensor's topic keeps it watched while held, and the watch stops after", async () => {
    const topic = `nearmesh/sensor/${bId}/counter`;
    const app = await clients.connect(aMqtt, 5);
    const received = collect(app);
    await app.subscribeAsync(topic, { qos: 1 });
    // Nothing else reads it: new readings come because the subscription watches it.
    const values = (): Set<unknown> =>
      new Set(received.filter((m) => m.topic === topic).map((m) => (json(m) as { value: unknown }).value));
    await until('two readings of the watched sensor', () => values().size >= 2, { timeoutMs: 30_000 });
    const status = async (): Promise<number> =>
      (await a.json<{ mqtt: { sensor_watches: number } }>(['status'])).mqtt.sensor_watches;
    expect(await status()).toBe(1);
    await app.unsubscribeAsync(topic);
    await until('the watch to stop', async () => (await status()) === 0, { timeoutMs: 15_000 });
  }, 60_000);

  it('an empty publish removes the sensor; a sensor the config owns cannot be taken', async () => {
    const app = await clients.connect(bMqtt, 5);
    const replies = collect(app);
    await app.subscribeAsync('app/provide', { qos: 1 });
    const provide = (name: string, payload: string) =>
      app.publishAsync(`nearmesh/provide/sensor/${name}`, payload, {
        qos: 1,
        properties: { responseTopic: 'app/provide', correlationData: Buffer.from(name) },
      });
    await provide('door', 'open');
    await provide('cpu.temp', '99');
    await provide('bad', '{"unit":"Cel"}');
    await until('three replies', () => replies.length === 3);
    const byId = new Map(
      replies.map((reply) => [reply.packet.properties?.correlationData?.toString(), json(reply)]),
    );
    expect(byId.get('door')).toEqual({ ok: true });
    expect(byId.get('cpu.temp')).toMatchObject({ ok: false, error: { code: 'conflict' } });
    expect(byId.get('bad')).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    expect(await a.json(['read', 'mc-b', 'door'])).toMatchObject({ value: 'open' });
    await provide('door', '');
    await until('the removal', () => replies.length === 4);
    const gone = await a.cli(['read', 'mc-b', 'door', '--json']);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/unknown-sensor|no sensor/);
  });
});

describeWhenAvailable('paho-mqtt as Home Assistant uses it', pahoMissing(), () => {
  it('subscribing to a remote sensor at QoS 2 with an identifier keeps it coming; its own QoS 2 publish comes back once', async () => {
    const { stdout } = await run(
      '/usr/bin/python3',
      [PAHO_HA, String(aMqtt), `nearmesh/sensor/${bId}/counter`, '2'],
      { timeout: 45_000 },
    );
    const lines = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { topic: string; value?: number; qos: number; ids?: number[] });
    const echoes = lines.filter((line) => line.topic === 'ha/echo');
    expect(echoes).toEqual([{ topic: 'ha/echo', payload: 'exactly once', qos: 2 }]);
    const readings = lines.filter((line) => line.topic !== 'ha/echo');
    expect(new Set(readings.map((line) => line.value)).size).toBeGreaterThanOrEqual(2);
    // Readings are published at QoS 1: a QoS 2 subscription gets them at 1, with its identifier.
    for (const reading of readings) expect(reading).toMatchObject({ qos: 1, ids: [9] });
  }, 60_000);
});

describe('actions an app provides', () => {
  it('an MQTT 5 app on B registers an action; A calls it from the CLI; it goes with the app', async () => {
    const app = await clients.connect(bMqtt, 5, { clientId: 'light-app' });
    const invocations: Received[] = [];
    app.on('message', (topic, payload, packet) => {
      if (topic !== 'nearmesh/invoke/light.set') return;
      invocations.push({ topic, payload, packet });
      const args = JSON.parse(payload.toString()) as { level?: number; fail?: boolean; ignore?: boolean };
      if (args.ignore === true) return;
      const responseTopic = packet.properties?.responseTopic as string;
      const correlationData = packet.properties?.correlationData;
      void app.publishAsync(
        responseTopic,
        args.fail === true ? 'too bright' : JSON.stringify({ level: args.level, ok: true }),
        {
          qos: 1,
          properties: {
            ...(correlationData !== undefined && { correlationData }),
            ...(args.fail === true && { userProperties: { error: 'too-bright' } }),
          },
        },
      );
    });
    await app.subscribeAsync('nearmesh/invoke/light.set', { qos: 1 });
    await app.publishAsync('nearmesh/provide/action/light.set', '{"timeout":"1s"}', { qos: 1, retain: true });

    const [ok] = await cliCall(a, ['mc-b', 'light.set', '{"level":3}']);
    expect(ok).toMatchObject({ peer: bId, status: 'ok', result: { level: 3, ok: true } });
    expect(invocations[0]?.packet.properties?.userProperties).toMatchObject({
      caller: aId,
      caller_name: 'mc-a',
    });
    const [failed] = await cliCall(a, ['mc-b', 'light.set', '{"fail":true}']);
    expect(failed).toMatchObject({ status: 'error', error: { code: 'too-bright', message: 'too bright' } });
    const [silent] = await cliCall(a, ['mc-b', 'light.set', '{"ignore":true}']);
    expect(silent).toMatchObject({ status: 'error', error: { code: 'timeout' } });

    // Announced to the mesh.
    await until('the announcement on A', async () => {
      const rows = await a.json<{ peer: string; action: string }[]>(['actions']);
      return rows.some((row) => row.peer === bId && row.action === 'light.set');
    });

    await app.endAsync();
    await until('the action to go', async () => {
      const [row] = await cliCall(a, ['mc-b', 'light.set', '{}']);
      return row?.error?.code === 'unknown-action' ? row : undefined;
    });
    // The retained registration went with it.
    const watcher = await clients.connect(bMqtt, 4);
    const seen = collect(watcher);
    await watcher.subscribeAsync(['nearmesh/provide/action/#', 'test/after'], { qos: 1 });
    // A live publish after the subscription arrives after any retained message it would have brought.
    await watcher.publishAsync('test/after', 'after', { qos: 1 });
    await until('the live publish', () => seen.some((message) => message.topic === 'test/after'));
    expect(seen.map((message) => message.topic)).toEqual(['test/after']);
  });

  it('an MQTT 3.1.1 app gets the invocation envelope and answers on reply_to or error_to', async () => {
    const app = await clients.connect(bMqtt, 4, { clientId: 'old-light-app' });
    app.on('message', (topic, payload) => {
      if (topic !== 'nearmesh/invoke/old.light') return;
      const call = JSON.parse(payload.toString()) as {
        call_id: string;
        args: { level?: number };
        caller: string;
        reply_to: string;
        error_to: string;
      };
      if (call.args.level === undefined) {
        void app.publishAsync(call.error_to, JSON.stringify({ code: 'no-level', message: 'say a level' }), {
          qos: 1,
        });
      } else {
        void app.publishAsync(
          call.reply_to,
          JSON.stringify({ level: call.args.level, caller: call.caller }),
          {
            qos: 1,
          },
        );
      }
    });
    await app.subscribeAsync('nearmesh/invoke/old.light', { qos: 1 });
    await app.publishAsync('nearmesh/provide/action/old.light', '{}', { qos: 1, retain: true });
    const [ok] = await cliCall(a, ['mc-b', 'old.light', '{"level":7}']);
    expect(ok).toMatchObject({ status: 'ok', result: { level: 7, caller: aId } });
    const [failed] = await cliCall(a, ['mc-b', 'old.light']);
    expect(failed).toMatchObject({ status: 'error', error: { code: 'no-level', message: 'say a level' } });
    // An empty retained publish removes it while the app stays connected.
    await app.publishAsync('nearmesh/provide/action/old.light', '', { qos: 1, retain: true });
    const [gone] = await cliCall(a, ['mc-b', 'old.light', '{"level":1}']);
    expect(gone).toMatchObject({ status: 'error', error: { code: 'unknown-action' } });
  });
});

function mosquittoRrMissing(): string | undefined {
  try {
    execFileSync('sh', ['-c', 'command -v mosquitto_rr']);
    return undefined;
  } catch {
    return 'mosquitto_rr (mosquitto-clients) not installed';
  }
}
