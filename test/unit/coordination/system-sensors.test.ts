// Built-in device sensors on fixture /proc and /sys trees (the same readers `status` uses): values and
// units, and SensorReadError('unavailable') where this machine cannot tell.
import { describe, expect, it } from 'vitest';
import { SensorReadError } from '../../../agent/coordination/handler.js';
import {
  isSystemSensorName,
  SYSTEM_SENSOR_NAMES,
  SystemSensor,
  systemSensors,
} from '../../../agent/coordination/system-sensors.js';
import { fixtureRoots } from '../../support/fixture-root.js';

const fixtureRoot = fixtureRoots('nearmesh-system-sensors-');

const signal = new AbortController().signal;

describe('system sensors', () => {
  const root = fixtureRoot({
    'sys/class/thermal/thermal_zone0/temp': '61000\n',
    'sys/class/thermal/thermal_zone0/type': 'gpu-thermal\n',
    'sys/class/thermal/thermal_zone1/temp': '48312\n',
    'sys/class/thermal/thermal_zone1/type': 'cpu-thermal\n',
    'proc/loadavg': '0.42 0.30 0.10 1/123 4567\n',
    'proc/meminfo': 'MemTotal:        4000000 kB\nMemFree:          100000 kB\nMemAvailable:    3000000 kB\n',
  });

  it('reads temperature, load, memory and disk with units', async () => {
    const sensors = systemSensors({ root, dataDir: root });
    expect([...sensors.keys()]).toEqual([...SYSTEM_SENSOR_NAMES]);
    expect(await sensors.get('cpu.temp')?.read(signal)).toEqual({
      value: 48.3,
      unit: 'Cel',
      readAtMs: expect.any(Number),
    });
    expect(await sensors.get('cpu.load')?.read(signal)).toEqual({
      value: 0.42,
      readAtMs: expect.any(Number),
    });
    expect(await sensors.get('mem.used')?.read(signal)).toEqual({
      value: 25,
      unit: '%',
      readAtMs: expect.any(Number),
    });
    const disk = await sensors.get('disk.used')?.read(signal);
    expect(disk?.unit).toBe('%');
    expect(disk?.value).toBeGreaterThanOrEqual(0);
    expect(disk?.value).toBeLessThanOrEqual(100);
    expect(sensors.get('cpu.temp')?.kind).toBe('system');
  });

  it('reports what this machine cannot tell as unavailable', async () => {
    const empty = fixtureRoot({ 'etc/hostname': 'pi\n' });
    for (const name of ['cpu.temp', 'cpu.load', 'mem.used'] as const) {
      await expect(new SystemSensor(name, { root: empty }).read(signal)).rejects.toSatisfy(
        (error) => error instanceof SensorReadError && error.code === 'unavailable',
      );
    }
    // disk.used needs to know which data directory to measure.
    await expect(new SystemSensor('disk.used', { root }).read(signal)).rejects.toMatchObject({
      code: 'unavailable',
    });
  });

  it('refuses an aborted read and knows its names', async () => {
    await expect(new SystemSensor('cpu.load', { root }).read(AbortSignal.abort())).rejects.toMatchObject({
      code: 'aborted',
    });
    expect(isSystemSensorName('mem.used')).toBe(true);
    expect(isSystemSensorName('mem.free')).toBe(false);
  });
});
