// Home Assistant discovery payloads against Home Assistant's own schema (test/support/homeassistant-schema.ts),
// and the gateway that keeps them current: what it publishes, when, and what it removes.
import { describe, expect, it } from 'vitest';
import { Counters } from '../../../agent/core/counters.js';
import { createLogger } from '../../../agent/core/logger.js';
import {
  type HaAgent,
  haDeviceConfig,
  haMeasurement,
} from '../../../agent/gateway/homeassistant-discovery.js';
import { HomeAssistantGateway } from '../../../agent/gateway/homeassistant-gateway.js';
import { deviceDiscoveryProblems } from '../../support/homeassistant-schema.js';

const GATEWAY = { id: '00112233445566ff', softwareVersion: '1.2.3' };
const DEVICE: HaAgent = {
  id: '0123456789abcdef',
  name: 'greenhouse-pi',
  model: 'Raspberry Pi 4 Model B Rev 1.4',
  softwareVersion: '1.2.3',
  sensors: [
    { name: 'air.temp', unit: 'Cel' },
    { name: 'air_humidity', unit: '%' },
    { name: 'cpu.load', unit: '%' },
    { name: 'meter', unit: 'kWh' },
    { name: 'door', unit: null },
    { name: 'soil', unit: 'furlongs' },
    { name: 'relay', unit: null },
  ],
  actions: ['relay', 'chime'],
};

type Component = Record<string, string>;

function components(agent: HaAgent): Record<string, Component> {
  return haDeviceConfig(agent, GATEWAY).config.components as Record<string, Component>;
}

describe('Home Assistant device discovery payload', () => {
  it('is one that Home Assistant takes whole: known keys only, ids and units it accepts', () => {
    const { config } = haDeviceConfig(DEVICE, GATEWAY);
    expect(deviceDiscoveryProblems(config)).toEqual([]);
    expect(config).toMatchObject({
      device: {
        identifiers: ['nearmesh_0123456789abcdef'],
        name: 'greenhouse-pi',
        model: 'Raspberry Pi 4 Model B Rev 1.4',
        sw_version: '1.2.3',
      },
      origin: { name: 'nearmesh', sw_version: '1.2.3' },
      availability: [
        { topic: 'nearmesh/ha/00112233445566ff/status' },
        { topic: 'nearmesh/ha/00112233445566ff/availability/0123456789abcdef' },
      ],
      availability_mode: 'all',
    });
  });

  it('the schema check refuses what Home Assistant refuses', () => {
    const { config } = haDeviceConfig(DEVICE, GATEWAY);
    expect(deviceDiscoveryProblems({ ...config, colour: 'red' })).toEqual(['top level: unknown key colour']);
    const broken = structuredClone(config) as { components: Record<string, Record<string, unknown>> };
    delete broken.components.button_chime?.command_topic;
    expect(deviceDiscoveryProblems(broken)).toEqual(['components.button_chime: command_topic required']);
  });

  it('makes sensors of sensors, with the device class their unit says', () => {
    const all = components(DEVICE);
    const temp = Object.values(all).find((c) => c.name === 'air.temp');
    expect(temp).toMatchObject({
      platform: 'sensor',
      state_topic: 'nearmesh/sensor/0123456789abcdef/air.temp',
      value_template: '{{ value_json.value }}',
      unit_of_measurement: '°C',
      device_class: 'temperature',
      state_class: 'measurement',
    });
    expect(all.sensor_air_humidity).toMatchObject({ unit_of_measurement: '%', device_class: 'humidity' });
    const load = Object.values(all).find((c) => c.name === 'cpu.load');
    expect(load).toMatchObject({ unit_of_measurement: '%' });
    expect(load?.device_class).toBeUndefined();
    expect(all.sensor_meter).toMatchObject({ device_class: 'energy', state_class: 'total_increasing' });
    // Text (no unit): neither a unit nor a state class, or Home Assistant would refuse a non-numeric state.
    expect(all.sensor_door?.unit_of_measurement).toBeUndefined();
    expect(all.sensor_door?.state_class).toBeUndefined();
    expect(all.sensor_soil).toMatchObject({ unit_of_measurement: 'furlongs', state_class: 'measurement' });
  });

  it('makes a button of an action, and a switch of an action with a sensor of its name', () => {
    const all = components(DEVICE);
    expect(all.button_chime).toMatchObject({
      platform: 'button',
      command_topic: 'nearmesh/ha/00112233445566ff/call/0123456789abcdef/chime',
      payload_press: '{}',
    });
    expect(all.switch_relay).toMatchObject({
      platform: 'switch',
      command_topic: 'nearmesh/ha/00112233445566ff/call/0123456789abcdef/relay',
      payload_on: '{"value": 1}',
      payload_off: '{"value": 0}',
      state_topic: 'nearmesh/sensor/0123456789abcdef/relay',
      state_on: 'ON',
      state_off: 'OFF',
    });
    expect(all.sensor_relay).toBeUndefined();
  });

  it('keeps dotted names apart in keys limited to [a-zA-Z0-9_-]', () => {
    const keys = Object.keys(
      components({
        ...DEVICE,
        sensors: [
          { name: 'a.b', unit: null },
          { name: 'a_b', unit: null },
        ],
        actions: [],
      }),
    );
    expect(keys).toHaveLength(2);
    expect(new Set(keys).size).toBe(2);
    for (const key of keys) expect(key).toMatch(/^[a-zA-Z0-9_-]+$/);
  });

  it('sends a component that went away once with only its platform, which removes it in Home Assistant', () => {
    const before = haDeviceConfig(DEVICE, GATEWAY);
    const after = haDeviceConfig({ ...DEVICE, actions: ['relay'] }, GATEWAY, before.components);
    expect((after.config.components as Record<string, unknown>).button_chime).toEqual({ platform: 'button' });
    expect(deviceDiscoveryProblems(after.config)).toEqual([]);
    expect(after.components.has('button_chime')).toBe(false);
  });

  it('gives units Home Assistant spells differently its spelling', () => {
    expect(haMeasurement('x', 'dB[mW]')).toEqual({
      unit_of_measurement: 'dBm',
      device_class: 'signal_strength',
      state_class: 'measurement',
    });
    expect(haMeasurement('x', 'MiBy')).toMatchObject({
      unit_of_measurement: 'MiB',
      device_class: 'data_size',
    });
    expect(haMeasurement('x', null)).toEqual({});
  });
});

describe('HomeAssistantGateway', () => {
  function gateway(agents: HaAgent[], reachable: Set<string>, revoked: string[] = []) {
    const published: { topic: string; payload: string }[] = [];
    const calls: unknown[] = [];
    const ha = new HomeAssistantGateway({
      discoveryPrefix: 'homeassistant',
      gateway: GATEWAY,
      agents: () => agents,
      reaches: (peer) => reachable.has(peer),
      revoked: () => revoked,
      call: async (request) => {
        calls.push(request);
        return [{ peer: request.target, name: 'x', status: 'ok', firedAtMs: 0 }];
      },
      read: async () => ({ peer: '', sensor: '', value: 1, unit: null, read_at: '' }),
      publish: (topic, payload) => published.push({ topic, payload }),
      counters: new Counters(),
      log: createLogger({ level: 'silent' }),
    });
    return { ha, published, calls };
  }

  it('publishes each config once, and again only when it changes or Home Assistant asks', () => {
    const agents = [DEVICE];
    const { ha, published } = gateway(agents, new Set([DEVICE.id]));
    ha.start();
    const configs = () => published.filter((p) => p.topic.endsWith('/config'));
    expect(published.map((p) => p.topic)).toEqual([
      'nearmesh/ha/00112233445566ff/status',
      'homeassistant/device/nearmesh_0123456789abcdef/config',
      'nearmesh/ha/00112233445566ff/availability/0123456789abcdef',
    ]);
    ha.refresh();
    expect(configs()).toHaveLength(1);
    agents[0] = { ...DEVICE, actions: ['relay'] };
    ha.refresh();
    expect(configs()).toHaveLength(2);
    ha.birth(Buffer.from('offline'));
    expect(configs()).toHaveLength(2);
    ha.birth(Buffer.from('online'));
    expect(configs()).toHaveLength(3);
  });

  it('says an agent is offline when the gateway stops reaching it, and keeps its device', () => {
    const reachable = new Set([DEVICE.id]);
    const agents = [DEVICE];
    const { ha, published } = gateway(agents, reachable);
    ha.start();
    reachable.clear();
    agents.length = 0; // forgotten after it went quiet
    ha.refresh();
    expect(published.at(-1)).toEqual({
      topic: 'nearmesh/ha/00112233445566ff/availability/0123456789abcdef',
      payload: 'offline',
    });
    expect(published.filter((p) => p.payload === '')).toEqual([]);
  });

  it('removes the device of a revoked agent, once', () => {
    const revoked: string[] = [];
    const { ha, published } = gateway([DEVICE], new Set(), revoked);
    ha.start();
    revoked.push(DEVICE.id);
    ha.refresh();
    ha.refresh();
    expect(published.filter((p) => p.payload === '').map((p) => p.topic)).toEqual([
      'homeassistant/device/nearmesh_0123456789abcdef/config',
      'nearmesh/ha/00112233445566ff/availability/0123456789abcdef',
    ]);
  });

  it('runs a button press as a call with the payload as arguments; ignores other topics and bad payloads', () => {
    const { ha, calls } = gateway([DEVICE], new Set([DEVICE.id]));
    expect(ha.command('nearmesh/ha/00112233445566ff/call/0123456789abcdef/chime', Buffer.from('{}'))).toBe(
      true,
    );
    expect(ha.command('nearmesh/ha/00112233445566ff/call/0123456789abcdef/relay', Buffer.from('[1]'))).toBe(
      true,
    );
    expect(ha.command('nearmesh/ha/ffffffffffffffff/call/0123456789abcdef/chime', Buffer.from('{}'))).toBe(
      false,
    );
    expect(calls).toEqual([{ target: DEVICE.id, action: 'chime', args: {}, timeoutMs: 10_000 }]);
  });
});
