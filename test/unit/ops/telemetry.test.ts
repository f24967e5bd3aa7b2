// Telemetry readers against fixture /proc and /sys trees: thermal zones, meminfo, load, uptime, a fake
// vcgencmd, free disk; get_throttled decoding as a pure function; and nulls (never throws) when nothing
// can be read.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  decodeThrottled,
  findVcgencmd,
  parseMeminfo,
  parseMillidegrees,
  parseThrottled,
  readCpuTemperature,
  readDisk,
  readMemory,
  readTelemetry,
  readThrottling,
} from '../../../agent/ops/telemetry.js';
import { fixtureRoots } from '../../support/fixture-root.js';
import { writeShScript } from '../../support/sh-script.js';

const fixtureRoot = fixtureRoots('nearmesh-telemetry-');

function fakeVcgencmd(root: string, script: string): string {
  const path = join(root, 'usr/bin/vcgencmd');
  mkdirSync(dirname(path), { recursive: true });
  return writeShScript(path, script);
}

const MEMINFO = `MemTotal:        3884096 kB
MemFree:          123456 kB
MemAvailable:    2949120 kB
Buffers:           84000 kB
HugePages_Total:       0
`;

describe('get_throttled', () => {
  it('decodes the bits', () => {
    expect(decodeThrottled(0)).toEqual({
      raw: '0x0',
      under_voltage: false,
      frequency_capped: false,
      throttled: false,
      soft_temp_limit: false,
      under_voltage_occurred: false,
      frequency_capped_occurred: false,
      throttled_occurred: false,
      soft_temp_limit_occurred: false,
    });
    // Under-voltage and throttled now, both also since boot.
    expect(decodeThrottled(0x50005)).toMatchObject({
      raw: '0x50005',
      under_voltage: true,
      frequency_capped: false,
      throttled: true,
      soft_temp_limit: false,
      under_voltage_occurred: true,
      frequency_capped_occurred: false,
      throttled_occurred: true,
      soft_temp_limit_occurred: false,
    });
    // Soft temperature limit now and since boot; frequency capped.
    expect(decodeThrottled(0x80008)).toMatchObject({ soft_temp_limit: true, soft_temp_limit_occurred: true });
    expect(decodeThrottled(0x20002)).toMatchObject({
      frequency_capped: true,
      frequency_capped_occurred: true,
    });
    // Only the sticky bits: it happened, it is over.
    expect(decodeThrottled(0xf0000)).toMatchObject({
      raw: '0xf0000',
      under_voltage: false,
      throttled: false,
      under_voltage_occurred: true,
      frequency_capped_occurred: true,
      throttled_occurred: true,
      soft_temp_limit_occurred: true,
    });
  });

  it('parses vcgencmd output and nothing else', () => {
    expect(parseThrottled('throttled=0x50005\n')).toBe(0x50005);
    expect(parseThrottled('throttled=0x0')).toBe(0);
    expect(parseThrottled('VCHI initialization failed')).toBeNull();
    expect(parseThrottled('')).toBeNull();
  });

  it('runs vcgencmd when present, and gives null when it fails, hangs or is absent', async () => {
    const root = fixtureRoot({});
    expect(await findVcgencmd(root, '')).toBeNull();
    expect(await readThrottling({ root, path: '' })).toBeNull();
    const binary = fakeVcgencmd(root, 'echo throttled=0x50000');
    expect(await findVcgencmd(root, '')).toBe(binary);
    expect(await readThrottling({ root, path: '' })).toMatchObject({
      raw: '0x50000',
      under_voltage: false,
      under_voltage_occurred: true,
      throttled_occurred: true,
    });
    expect(await readThrottling({ root, vcgencmd: false })).toBeNull();
    fakeVcgencmd(root, 'echo "VCHI initialization failed" >&2; exit 1');
    expect(await readThrottling({ root, path: '' })).toBeNull();
    fakeVcgencmd(root, 'exec sleep 5');
    expect(await readThrottling({ root, path: '', timeoutMs: 200 })).toBeNull();
    expect(await readThrottling({ vcgencmd: join(root, 'missing/vcgencmd') })).toBeNull();
  });
});

describe('telemetry readers', () => {
  it('prefers the cpu-thermal zone, else the first zone that reads', async () => {
    const root = fixtureRoot({
      'sys/class/thermal/thermal_zone0/type': 'gpu-thermal\n',
      'sys/class/thermal/thermal_zone0/temp': '51234\n',
      'sys/class/thermal/thermal_zone1/type': 'cpu-thermal\n',
      'sys/class/thermal/thermal_zone1/temp': '48312\n',
      'sys/class/thermal/cooling_device0/type': 'gpio-fan\n',
    });
    expect(await readCpuTemperature(root)).toEqual({
      celsius: 48.3,
      zone: 'thermal_zone1',
      type: 'cpu-thermal',
    });
    const noCpu = fixtureRoot({
      'sys/class/thermal/thermal_zone10/temp': '40000\n',
      'sys/class/thermal/thermal_zone2/temp': 'garbage\n',
      'sys/class/thermal/thermal_zone3/temp': '45500\n',
    });
    expect(await readCpuTemperature(noCpu)).toEqual({ celsius: 45.5, zone: 'thermal_zone3', type: null });
    expect(await readCpuTemperature(fixtureRoot({}))).toBeNull();
    expect(parseMillidegrees('-5000')).toBe(-5);
    expect(parseMillidegrees('')).toBeNull();
  });

  it('reads meminfo in bytes', async () => {
    const fields = parseMeminfo(MEMINFO);
    expect(fields.get('MemAvailable')).toBe(2949120 * 1024);
    expect(fields.get('HugePages_Total')).toBe(0);
    expect(await readMemory(fixtureRoot({ 'proc/meminfo': MEMINFO }))).toEqual({
      total_bytes: 3884096 * 1024,
      free_bytes: 123456 * 1024,
      available_bytes: 2949120 * 1024,
    });
    // Only the real root falls back to the os module; a fixture without meminfo reads nothing.
    expect(await readMemory(fixtureRoot({}))).toBeNull();
    const real = await readMemory();
    expect(real?.total_bytes).toBeGreaterThan(0);
  });

  it('reads a whole fixture tree into plain JSON', async () => {
    const root = fixtureRoot({
      'proc/meminfo': MEMINFO,
      'proc/loadavg': '0.42 0.31 0.20 2/187 1234\n',
      'proc/uptime': '86461.73 300000.10\n',
      'sys/class/thermal/thermal_zone0/type': 'cpu-thermal\n',
      'sys/class/thermal/thermal_zone0/temp': '62050\n',
    });
    fakeVcgencmd(root, 'echo throttled=0x0');
    const telemetry = await readTelemetry({ root, diskPath: root, path: '' });
    expect(telemetry).toMatchObject({
      cpu_temp: { celsius: 62.1, zone: 'thermal_zone0', type: 'cpu-thermal' },
      throttling: { raw: '0x0', under_voltage: false },
      load: { avg_1m: 0.42, avg_5m: 0.31, avg_15m: 0.2 },
      memory: { available_bytes: 2949120 * 1024 },
      disk: { path: root },
      uptime_s: 86461,
    });
    expect(telemetry.disk?.available_bytes).toBeGreaterThan(0);
    expect(telemetry.disk?.total_bytes).toBeGreaterThanOrEqual(telemetry.disk?.free_bytes ?? Infinity);
    expect(JSON.parse(JSON.stringify(telemetry))).toEqual(telemetry);
  });

  it('gives nulls, not errors, on an empty root', async () => {
    const root = fixtureRoot({});
    expect(await readTelemetry({ root, path: '' })).toEqual({
      cpu_temp: null,
      throttling: null,
      load: null,
      memory: null,
      disk: null,
      uptime_s: null,
    });
    // Garbage in every file is the same as no file.
    const garbage = fixtureRoot({
      'proc/meminfo': 'nonsense',
      'proc/loadavg': 'a b c',
      'proc/uptime': 'x',
      'sys/class/thermal/thermal_zone0/temp': 'hot',
    });
    expect(await readTelemetry({ root: garbage, path: '' })).toMatchObject({
      cpu_temp: null,
      load: null,
      memory: null,
      uptime_s: null,
    });
  });

  it('measures a data_dir not made yet on its nearest existing parent', async () => {
    const root = fixtureRoot({});
    const disk = await readDisk(join(root, 'not/made/yet'));
    expect(disk?.path).toBe(root);
    expect(disk?.total_bytes).toBeGreaterThan(0);
  });
});
