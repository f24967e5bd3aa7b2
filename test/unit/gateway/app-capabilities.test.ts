// The gateway's side of app-provided actions and sensors, against a stand-in coordinator: what a handler
// returns when the app answers, says nothing, or disconnects mid-call, and that bad payloads are refused
// without reaching the registry.
import { connectAsync, type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CallContext, CallResult } from '../../../agent/coordination/handler.js';
import type { LocalAction, LocalSensor } from '../../../agent/coordination/registry.js';
import { Counters } from '../../../agent/core/counters.js';
import { silentLogger } from '../../../agent/core/logger.js';
import type { CoordinationPort } from '../../../agent/gateway/coordination-port.js';
import { MqttGateway } from '../../../agent/gateway/mqtt-gateway.js';
import { until } from '../../support/until.js';

const SELF = 'self-peer-id';

class FakeCoordination {
  readonly actions = new Map<string, LocalAction>();
  readonly sensors = new Map<string, LocalSensor>();
  readonly port = {
    call: async () => [],
    actions: () => [...this.actions.keys()].map((action) => ({ peer: SELF, name: 'me', action })),
    sensors: () =>
      [{ name: 'cpu.temp', unit: 'Cel' }, ...this.sensors.values()].map((sensor) => ({
        peer: SELF,
        name: 'me',
        sensor: sensor.name,
        unit: sensor.unit,
      })),
    latest: () => [],
    registerAction: (action: LocalAction) => this.actions.set(action.name, action),
    unregisterAction: (name: string) => this.actions.delete(name),
    registerSensor: (sensor: LocalSensor) => this.sensors.set(sensor.name, sensor),
    unregisterSensor: (name: string) => this.sensors.delete(name),
    on: () => this.port,
    off: () => this.port,
    timeSync: { now: () => Date.now() },
  };
}

let coordination: FakeCoordination;
let gateway: MqttGateway;
let port: number;
const clients: MqttClient[] = [];

beforeEach(async () => {
  coordination = new FakeCoordination();
  gateway = new MqttGateway({
    listen: { host: '127.0.0.1', port: 0 },
    maxPacketSize: 256 * 1024,
    mesh: {
      id: () => ({ id: SELF, name: 'me' }),
      groups: [],
      enqueue: (peer) => ({ peer, seq: 1, last_seq: 1, count: 1, acknowledged: false }),
      multicast: () => ({ links: 0 }),
      peers: () => [],
      subscribe: () => () => {},
      listen: () => ({ result: { consumer: null }, take: () => {}, stop: () => {} }),
      inbox: () => ({
        messages: 0,
        bytes: 0,
        oldest_at: null,
        consumers: 0,
        max_messages: 1,
        max_bytes: 1,
        when_full: 'refuse',
        consumer_list: [],
      }),
      inboxForget: () => ({ forgotten: false }),
      coordination: coordination.port as unknown as CoordinationPort,
    },
    counters: new Counters(),
    log: silentLogger(),
  });
  port = (await gateway.start()).port;
});

afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) c.end(true);
  await gateway.stop();
});

async function client(version: 4 | 5, clientId: string): Promise<MqttClient> {
  const c = await connectAsync(`mqtt://127.0.0.1:${port}`, {
    protocolVersion: version,
    clientId,
    reconnectPeriod: 0,
  });
  clients.push(c);
  return c;
}

function context(timeoutMs: number, signal = new AbortController().signal): CallContext {
  return { callId: 'c', caller: 'caller-id', deadlineMs: Date.now() + timeoutMs, signal };
}

describe('actions apps provide', () => {
  it('times out when the app says nothing, and ends with unavailable when the app goes mid-call', async () => {
    const app = await client(5, 'app-1');
    await app.publishAsync('nearmesh/provide/action/light.set', '{"timeout":"5s"}', { qos: 1 });
    await until("the app's light.set registered", () => coordination.actions.has('light.set'));
    const action = coordination.actions.get('light.set') as LocalAction;
    expect(action.timeoutMs).toBe(5000);
    expect(await action.handler.invoke({}, context(100))).toMatchObject({
      ok: false,
      error: { code: 'timeout' },
    });
    const pending: Promise<CallResult> = action.handler.invoke({ on: true }, context(5000));
    app.end(true);
    expect(await pending).toMatchObject({ ok: false, error: { code: 'unavailable' } });
    expect(coordination.actions.has('light.set')).toBe(false);
  });

  it('an aborted call ends at once; the app answering later changes nothing', async () => {
    const app = await client(4, 'app-2');
    const calls: { reply_to: string }[] = [];
    app.on('message', (_topic, payload) =>
      calls.push(JSON.parse(payload.toString()) as { reply_to: string }),
    );
    await app.subscribeAsync('nearmesh/invoke/door.open', { qos: 1 });
    await app.publishAsync('nearmesh/provide/action/door.open', '{}', { qos: 1 });
    await until("the app's door.open registered", () => coordination.actions.has('door.open'));
    const action = coordination.actions.get('door.open') as LocalAction;
    const abort = new AbortController();
    const pending = action.handler.invoke({}, context(5000, abort.signal));
    await until('the call at the app', () => calls.length === 1);
    abort.abort();
    expect(await pending).toMatchObject({ ok: false, error: { code: 'aborted' } });
    await app.publishAsync(calls[0]?.reply_to as string, '"late"', { qos: 1 });
  });

  it('refuses bad registrations and names the config owns', async () => {
    const app = await client(5, 'app-3');
    const replies: unknown[] = [];
    app.on('message', (_topic, payload) => replies.push(JSON.parse(payload.toString())));
    await app.subscribeAsync('r', { qos: 1 });
    const register = (name: string, payload: string) =>
      app.publishAsync(`nearmesh/provide/action/${name}`, payload, {
        qos: 1,
        properties: { responseTopic: 'r' },
      });
    coordination.actions.set('configured', {} as LocalAction);
    await register('configured', '{}');
    await register('a', '{"timeout":5}');
    await register('b', '{"timout":"5s"}');
    await register('c', 'not json');
    await register('d', '{"allow":"everyone"}');
    await until(
      () => `5 replies (got ${replies.length})`,
      () => replies.length === 5,
    );
    expect(replies[0]).toMatchObject({ ok: false, error: { code: 'conflict' } });
    for (const reply of replies.slice(1))
      expect(reply).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    expect([...coordination.actions.keys()]).toEqual(['configured']);
  });
});

describe('sensors apps provide', () => {
  it('reads the latest value, goes stale after max_age, and keeps its unit for bare values', async () => {
    const app = await client(4, 'sensor-app');
    // The clock is the subject: a value's age is told by Date, which the test moves (timers stay real).
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    await app.publishAsync(
      'nearmesh/provide/sensor/room.temp',
      '{"value":20,"unit":"Cel","max_age":"50ms"}',
      {
        qos: 1,
      },
    );
    await until("the app's room.temp registered", () => coordination.sensors.has('room.temp'));
    const sensor = coordination.sensors.get('room.temp') as LocalSensor;
    expect(sensor.unit).toBe('Cel');
    expect(await sensor.handler.read(new AbortController().signal)).toMatchObject({ value: 20, unit: 'Cel' });
    vi.advanceTimersByTime(45);
    expect(await sensor.handler.read(new AbortController().signal)).toMatchObject({ value: 20, unit: 'Cel' });
    vi.advanceTimersByTime(10);
    await expect(sensor.handler.read(new AbortController().signal)).rejects.toMatchObject({
      code: 'unavailable',
    });
    await app.publishAsync('nearmesh/provide/sensor/room.temp', '21', { qos: 1 });
    // A QoS 1 publish is acknowledged after the gateway took it.
    expect(await sensor.handler.read(new AbortController().signal)).toMatchObject({ value: 21, unit: 'Cel' });
    await app.publishAsync('nearmesh/provide/sensor/cpu.temp', '99', { qos: 1 });
    await app.publishAsync('nearmesh/provide/sensor/room.temp', '', { qos: 1 });
    await until('room.temp withdrawn', () => !coordination.sensors.has('room.temp'));
    expect(coordination.sensors.has('cpu.temp')).toBe(false);
  });
});
