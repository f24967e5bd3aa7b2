// Home Assistant's MQTT device-based discovery schema, as its own source states it (homeassistant/components/
// mqtt: schemas.py DEVICE_DISCOVERY_SCHEMA, MQTT_ENTITY_COMMON_SCHEMA, sensor.py, button.py, switch.py;
// sensor/const.py DEVICE_CLASS_UNITS): the keys each part may have, which it must have, and the units a
// device class takes. Unknown keys at the top, in `device` or in `origin` make Home Assistant refuse the whole
// payload; unknown component keys it drops silently, which would lose what we meant, so both are errors here.

const AVAILABILITY = [
  'availability',
  'availability_topic',
  'availability_mode',
  'availability_template',
  'payload_available',
  'payload_not_available',
];
const TOP_LEVEL = new Set([
  'device',
  'origin',
  'components',
  ...AVAILABILITY,
  'state_topic',
  'command_topic',
  'encoding',
  'qos',
]);
const DEVICE = new Set([
  'identifiers',
  'connections',
  'manufacturer',
  'model',
  'model_id',
  'name',
  'hw_version',
  'serial_number',
  'sw_version',
  'via_device',
  'suggested_area',
  'configuration_url',
]);
const ORIGIN = new Set(['name', 'sw_version', 'support_url']);
const ENTITY_COMMON = [
  'platform',
  ...AVAILABILITY,
  'device',
  'entity_picture',
  'origin',
  'enabled_by_default',
  'entity_category',
  'icon',
  'json_attributes_topic',
  'json_attributes_template',
  'default_entity_id',
  'unique_id',
  'visible_by_default',
  'qos',
  'encoding',
];
const PLATFORM_KEYS: Record<string, { keys: Set<string>; required: string[] }> = {
  sensor: {
    keys: new Set([
      ...ENTITY_COMMON,
      'state_topic',
      'value_template',
      'device_class',
      'expire_after',
      'force_update',
      'last_reset_value_template',
      'name',
      'options',
      'suggested_display_precision',
      'state_class',
      'unit_of_measurement',
    ]),
    required: ['state_topic'],
  },
  button: {
    keys: new Set([
      ...ENTITY_COMMON,
      'command_template',
      'command_topic',
      'device_class',
      'name',
      'payload_press',
      'retain',
    ]),
    required: ['command_topic'],
  },
  switch: {
    keys: new Set([
      ...ENTITY_COMMON,
      'command_topic',
      'optimistic',
      'retain',
      'state_topic',
      'value_template',
      'command_template',
      'name',
      'payload_off',
      'payload_on',
      'state_off',
      'state_on',
      'device_class',
    ]),
    required: ['command_topic'],
  },
};
const DEVICE_CLASS_UNITS: Record<string, string[]> = {
  temperature: ['°C', '°F', 'K'],
  humidity: ['%'],
  pressure: ['Pa', 'hPa', 'kPa', 'bar', 'cbar', 'mbar', 'mmHg', 'inHg', 'psi'],
  voltage: ['V', 'mV', 'kV', 'MV'],
  current: ['A', 'mA'],
  power: ['mW', 'W', 'kW', 'MW', 'GW', 'TW'],
  energy: ['J', 'kJ', 'MJ', 'GJ', 'mWh', 'Wh', 'kWh', 'MWh', 'GWh', 'TWh'],
  illuminance: ['lx'],
  data_size: ['bit', 'kbit', 'Mbit', 'Gbit', 'B', 'kB', 'MB', 'GB', 'TB', 'KiB', 'MiB', 'GiB', 'TiB'],
  duration: ['d', 'h', 'min', 's', 'ms'],
  frequency: ['Hz', 'kHz', 'MHz', 'GHz'],
  signal_strength: ['dB', 'dBm'],
};
const STATE_CLASSES = new Set(['measurement', 'measurement_angle', 'total', 'total_increasing']);
const KEY = /^[a-zA-Z0-9_-]+$/;

/** The problems Home Assistant would have with a device discovery payload; empty when it takes it all. */
export function deviceDiscoveryProblems(payload: unknown): string[] {
  const problems: string[] = [];
  if (!isObject(payload)) return ['the payload is not a JSON object'];
  unknownKeys(payload, TOP_LEVEL, 'top level', problems);
  const { device, origin, components } = payload;
  if (!isObject(device)) problems.push('device: required object');
  else {
    unknownKeys(device, DEVICE, 'device', problems);
    const ids = device.identifiers;
    if (!(typeof ids === 'string' || (Array.isArray(ids) && ids.length > 0)))
      problems.push('device: needs identifiers');
  }
  if (!isObject(origin) || typeof origin.name !== 'string') problems.push('origin: required, with a name');
  else unknownKeys(origin, ORIGIN, 'origin', problems);
  if (!isObject(components)) problems.push('components: required object');
  else
    for (const [key, component] of Object.entries(components)) {
      if (!KEY.test(key)) problems.push(`components.${key}: key outside [a-zA-Z0-9_-]`);
      if (!isObject(component)) {
        problems.push(`components.${key}: not an object`);
        continue;
      }
      problems.push(...componentProblems(key, component));
    }
  if (
    payload.availability_mode !== undefined &&
    !['all', 'any', 'latest'].includes(String(payload.availability_mode))
  )
    problems.push('availability_mode: not all/any/latest');
  return problems;
}

function componentProblems(key: string, component: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const platform = PLATFORM_KEYS[String(component.platform)];
  if (platform === undefined)
    return [`components.${key}: unsupported platform ${String(component.platform)}`];
  if (Object.keys(component).length === 1) return []; // platform only: removes the component
  unknownKeys(component, platform.keys, `components.${key}`, problems);
  for (const required of [...platform.required, 'unique_id'])
    if (typeof component[required] !== 'string') problems.push(`components.${key}: ${required} required`);
  const deviceClass = component.device_class;
  if (typeof deviceClass === 'string' && component.platform === 'sensor') {
    const units = DEVICE_CLASS_UNITS[deviceClass];
    if (units === undefined) problems.push(`components.${key}: device_class ${deviceClass} unknown here`);
    else if (!units.includes(String(component.unit_of_measurement)))
      problems.push(
        `components.${key}: unit ${String(component.unit_of_measurement)} not valid for ${deviceClass}`,
      );
  }
  if (component.state_class !== undefined && !STATE_CLASSES.has(String(component.state_class)))
    problems.push(`components.${key}: state_class ${String(component.state_class)}`);
  return problems;
}

function unknownKeys(
  object: Record<string, unknown>,
  allowed: Set<string>,
  where: string,
  problems: string[],
): void {
  for (const key of Object.keys(object)) if (!allowed.has(key)) problems.push(`${where}: unknown key ${key}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
