// Sensors every agent has without configuring a program: the device's own health, read through the
// same readers `status` and `doctor` use (agent/ops/telemetry.ts), so the numbers agree everywhere.
import { readCpuTemperature, readDisk, readLoad, readMemory } from '../ops/telemetry.js';
import { type SensorHandler, SensorReadError, type SensorReading } from './handler.js';

export const SYSTEM_SENSOR_NAMES = ['cpu.temp', 'cpu.load', 'mem.used', 'disk.used'] as const;
export type SystemSensorName = (typeof SYSTEM_SENSOR_NAMES)[number];

export function isSystemSensorName(name: string): name is SystemSensorName {
  return (SYSTEM_SENSOR_NAMES as readonly string[]).includes(name);
}

export interface SystemSensorOptions {
  /** File root for /proc and /sys: "/" by default, a fixture tree in tests. */
  readonly root?: string;
  /** The data directory whose file system `disk.used` measures. */
  readonly dataDir?: string;
}

/** A value and its unit, or null when this machine cannot tell. */
type Sample = { value: number; unit?: string } | null;

export class SystemSensor implements SensorHandler {
  readonly kind = 'system';
  readonly name: SystemSensorName;
  readonly #options: SystemSensorOptions;

  constructor(name: SystemSensorName, options: SystemSensorOptions = {}) {
    this.name = name;
    this.#options = options;
  }

  async read(signal: AbortSignal): Promise<SensorReading> {
    if (signal.aborted) throw new SensorReadError('aborted', `sensor '${this.name}': read cancelled`);
    let sample: Sample;
    try {
      sample = await this.#sample();
    } catch (error) {
      throw new SensorReadError('unavailable', `sensor '${this.name}': ${String(error)}`, { cause: error });
    }
    if (sample === null) {
      throw new SensorReadError('unavailable', `sensor '${this.name}' is not available on this machine`);
    }
    const reading: SensorReading = { value: sample.value, readAtMs: Date.now() };
    if (sample.unit !== undefined) reading.unit = sample.unit;
    return reading;
  }

  async #sample(): Promise<Sample> {
    const root = this.#options.root;
    switch (this.name) {
      case 'cpu.temp': {
        const temperature = await readCpuTemperature(root);
        return temperature === null ? null : { value: temperature.celsius, unit: 'Cel' };
      }
      case 'cpu.load': {
        const load = await readLoad(root);
        return load === null ? null : { value: load.avg_1m };
      }
      case 'mem.used': {
        const memory = await readMemory(root);
        // MemAvailable counts reclaimable cache as free, which is what "used" should leave out.
        const unused = memory?.available_bytes ?? memory?.free_bytes ?? null;
        const total = memory?.total_bytes ?? null;
        if (total === null || unused === null || total <= 0) return null;
        return { value: percent(total - unused, total), unit: '%' };
      }
      case 'disk.used': {
        if (this.#options.dataDir === undefined) return null;
        const disk = await readDisk(this.#options.dataDir);
        if (disk === null) return null;
        // As df computes Use%: root's reserved blocks count as neither used nor available.
        const used = disk.total_bytes - disk.free_bytes;
        const usable = used + disk.available_bytes;
        return usable <= 0 ? null : { value: percent(used, usable), unit: '%' };
      }
    }
  }
}

/** One decimal: enough for a dashboard, stable enough not to look like noise. */
function percent(part: number, whole: number): number {
  return Math.round((part / whole) * 1000) / 10;
}

/** All built-in sensors, by name. */
export function systemSensors(options: SystemSensorOptions = {}): Map<SystemSensorName, SystemSensor> {
  return new Map(SYSTEM_SENSOR_NAMES.map((name) => [name, new SystemSensor(name, options)]));
}
