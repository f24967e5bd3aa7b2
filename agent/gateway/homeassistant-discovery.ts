// Home Assistant MQTT discovery payloads (pure): one device-based discovery config per agent (Home Assistant
// 2024.11 and later: `<prefix>/device/<object id>/config` with its entities under `components`), so a whole
// agent appears, changes and goes with one retained message. Sensors become `sensor` entities, actions
// `button`s, and an action with a sensor of the same name whose value is 0/1 (a GPIO output and its line) a
// `switch` with a readable state. Every entity is available only while the gateway is online and reaches
// the agent (availability_mode "all").
import { createHash } from 'node:crypto';
import { haAvailabilityTopic, haCommandTopic, haGatewayStatusTopic, sensorTopic } from './topic-map.js';

/** One agent as the gateway knows it: what it is and what it offers. */
export interface HaAgent {
  readonly id: string;
  readonly name: string;
  /** Its board profile's name (e.g. "Raspberry Pi 4 Model B"); null when it did not say. */
  readonly model: string | null;
  /** Its nearmesh version; null when it did not say. */
  readonly softwareVersion: string | null;
  readonly sensors: readonly { readonly name: string; readonly unit: string | null }[];
  readonly actions: readonly string[];
}

/** The gateway publishing the discovery: its peer id and version (Home Assistant's "origin"). */
export interface HaGateway {
  readonly id: string;
  readonly softwareVersion: string;
}

export const HA_ONLINE = 'online';
export const HA_OFFLINE = 'offline';
/** What a button press publishes: the action's arguments. */
const PRESS_PAYLOAD = '{}';

type Component = Record<string, unknown> & { platform: 'sensor' | 'button' | 'switch' };

/**
 * The discovery config of one agent, and the keys of its components. `removed` are component keys published
 * before and gone now: Home Assistant removes each when it is sent once with only its platform.
 */
export function haDeviceConfig(
  agent: HaAgent,
  gateway: HaGateway,
  removed: ReadonlyMap<string, Component['platform']> = new Map(),
): { config: Record<string, unknown>; components: Map<string, Component['platform']> } {
  const components: Record<string, Component | { platform: Component['platform'] }> = {};
  const kept = new Map<string, Component['platform']>();
  const actions = new Set(agent.actions);
  for (const sensor of agent.sensors) {
    if (actions.has(sensor.name)) continue; // the state of a switch, below
    const key = componentKey('sensor', sensor.name);
    components[key] = sensorComponent(agent, sensor.name, sensor.unit, key);
    kept.set(key, 'sensor');
  }
  const switchStates = new Set(
    agent.sensors.map((sensor) => sensor.name).filter((name) => actions.has(name)),
  );
  for (const action of agent.actions) {
    const platform = switchStates.has(action) ? 'switch' : 'button';
    const key = componentKey(platform, action);
    components[key] =
      platform === 'switch'
        ? switchComponent(agent, gateway, action, key)
        : buttonComponent(agent, gateway, action, key);
    kept.set(key, platform);
  }
  for (const [key, platform] of removed) if (!kept.has(key)) components[key] = { platform };
  return {
    config: {
      device: {
        identifiers: [`nearmesh_${agent.id}`],
        name: agent.name,
        manufacturer: 'nearmesh',
        ...(agent.model !== null && { model: agent.model }),
        ...(agent.softwareVersion !== null && { sw_version: agent.softwareVersion }),
        serial_number: agent.id,
      },
      origin: { name: 'nearmesh', sw_version: gateway.softwareVersion },
      components,
      availability: [
        { topic: haGatewayStatusTopic(gateway.id) },
        { topic: haAvailabilityTopic(gateway.id, agent.id) },
      ],
      availability_mode: 'all',
      qos: 1,
    },
    components: kept,
  };
}

/**
 * A component's key (and object id): `[a-zA-Z0-9_-]` only, as discovery topics and keys require. Capability
 * names may hold dots; those become "_" and a short hash of the name keeps "a.b" and "a_b" apart.
 */
function componentKey(platform: Component['platform'], name: string): string {
  if (!name.includes('.')) return `${platform}_${name}`;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 6);
  return `${platform}_${name.replaceAll('.', '_')}_${hash}`;
}

function sensorComponent(agent: HaAgent, sensor: string, unit: string | null, key: string): Component {
  const measured = haMeasurement(sensor, unit);
  return {
    platform: 'sensor',
    unique_id: `nearmesh_${agent.id}_${key}`,
    name: sensor,
    state_topic: sensorTopic(agent.id, sensor),
    value_template: '{{ value_json.value }}',
    json_attributes_topic: sensorTopic(agent.id, sensor),
    json_attributes_template: '{{ {"read_at": value_json.read_at} | tojson }}',
    ...measured,
  };
}

function buttonComponent(agent: HaAgent, gateway: HaGateway, action: string, key: string): Component {
  return {
    platform: 'button',
    unique_id: `nearmesh_${agent.id}_${key}`,
    name: action,
    command_topic: haCommandTopic(gateway.id, agent.id, action),
    payload_press: PRESS_PAYLOAD,
  };
}

/** An output whose state is read back: on/off sets `{"value": 1|0}`, the state is the sensor's 0/1 (or true/false). */
function switchComponent(agent: HaAgent, gateway: HaGateway, action: string, key: string): Component {
  return {
    platform: 'switch',
    unique_id: `nearmesh_${agent.id}_${key}`,
    name: action,
    command_topic: haCommandTopic(gateway.id, agent.id, action),
    payload_on: '{"value": 1}',
    payload_off: '{"value": 0}',
    state_topic: sensorTopic(agent.id, action),
    value_template: "{{ 'ON' if value_json.value in (1, true, '1', 'on') else 'OFF' }}",
    state_on: 'ON',
    state_off: 'OFF',
  };
}

/** A sensor's unit (UCUM, as nearmesh spells them, or plain) in Home Assistant's words, with a device class where it says one. */
export function haMeasurement(
  sensor: string,
  unit: string | null,
): { unit_of_measurement?: string; device_class?: string; state_class?: string } {
  if (unit === null) return {};
  const known = UNITS.get(unit);
  if (known === undefined) return { unit_of_measurement: unit, state_class: 'measurement' };
  const [haUnit, deviceClass] = known;
  const cls = haUnit === '%' && /humid/i.test(sensor) ? 'humidity' : deviceClass;
  return {
    unit_of_measurement: haUnit,
    ...(cls !== undefined && { device_class: cls }),
    state_class: cls === 'energy' ? 'total_increasing' : 'measurement',
  };
}

/** Unit as written in a sensor's config → [Home Assistant's unit, device class]. */
const UNITS = new Map<string, readonly [string, string | undefined]>([
  ['Cel', ['°C', 'temperature']],
  ['°C', ['°C', 'temperature']],
  ['[degF]', ['°F', 'temperature']],
  ['°F', ['°F', 'temperature']],
  ['K', ['K', 'temperature']],
  ['%', ['%', undefined]],
  ['V', ['V', 'voltage']],
  ['mV', ['mV', 'voltage']],
  ['A', ['A', 'current']],
  ['mA', ['mA', 'current']],
  ['W', ['W', 'power']],
  ['kW', ['kW', 'power']],
  ['Wh', ['Wh', 'energy']],
  ['kWh', ['kWh', 'energy']],
  ['Pa', ['Pa', 'pressure']],
  ['hPa', ['hPa', 'pressure']],
  ['kPa', ['kPa', 'pressure']],
  ['bar', ['bar', 'pressure']],
  ['mbar', ['mbar', 'pressure']],
  ['lx', ['lx', 'illuminance']],
  ['Hz', ['Hz', 'frequency']],
  ['kHz', ['kHz', 'frequency']],
  ['MHz', ['MHz', 'frequency']],
  ['dB[mW]', ['dBm', 'signal_strength']],
  ['dBm', ['dBm', 'signal_strength']],
  ['s', ['s', 'duration']],
  ['ms', ['ms', 'duration']],
  ['min', ['min', 'duration']],
  ['h', ['h', 'duration']],
  ['d', ['d', 'duration']],
  ['By', ['B', 'data_size']],
  ['kBy', ['kB', 'data_size']],
  ['MBy', ['MB', 'data_size']],
  ['KiBy', ['KiB', 'data_size']],
  ['MiBy', ['MiB', 'data_size']],
  ['GiBy', ['GiB', 'data_size']],
]);
