// This agent's own actions and sensors: from the config, plus the built-in device sensors. Handlers are
// an open interface (handler.ts): local apps will register theirs here too (over MQTT).
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import { MAX_ANNOUNCED_CAPABILITIES } from '../protocol/announcement.js';
import type { Capabilities } from '../protocol/index.js';
import type { ActionConfig, CallerFilter, SensorConfig } from './config.js';
import { ExecAction } from './exec-action.js';
import { ExecSensor } from './exec-sensor.js';
import { GpioAction, GpioSensor, GpioTools } from './gpio.js';
import type { ActionHandler, SensorHandler } from './handler.js';
import { systemSensors } from './system-sensors.js';

export interface LocalAction {
  readonly name: string;
  readonly handler: ActionHandler;
  readonly timeoutMs: number;
  readonly allow: CallerFilter | undefined;
  /** Runs at once; default DEFAULT_ACTION_CONCURRENCY (config.ts). */
  readonly concurrency?: number;
  /** Calls waiting for a run; default DEFAULT_ACTION_QUEUE (config.ts). */
  readonly queue?: number;
}

export interface LocalSensor {
  readonly name: string;
  readonly handler: SensorHandler;
  readonly unit: string | null;
  readonly everyMs: number | undefined;
}

export class CapabilityRegistry {
  readonly actions = new Map<string, LocalAction>();
  readonly sensors = new Map<string, LocalSensor>();

  addAction(action: LocalAction): void {
    this.actions.set(action.name, action);
  }

  addSensor(sensor: LocalSensor): void {
    this.sensors.set(sensor.name, sensor);
  }

  removeAction(name: string): boolean {
    return this.actions.delete(name);
  }

  removeSensor(name: string): boolean {
    return this.sensors.delete(name);
  }

  /** What the announcement tells the mesh: at most MAX_ANNOUNCED_CAPABILITIES of each, in registration order. */
  capabilities(): Capabilities {
    return {
      actions: [...this.actions.keys()].slice(0, MAX_ANNOUNCED_CAPABILITIES),
      sensors: [...this.sensors.values()]
        .slice(0, MAX_ANNOUNCED_CAPABILITIES)
        .map((sensor) => ({ name: sensor.name, unit: sensor.unit })),
    };
  }
}

/** The registry the config describes; device sensors first, so a configured sensor of the same name wins. */
export function registryFromConfig(
  config: { actions: readonly ActionConfig[]; sensors: readonly SensorConfig[]; dataDir: string },
  log: Logger,
  counters: Counters,
): CapabilityRegistry {
  const registry = new CapabilityRegistry();
  let gpio: GpioTools | undefined;
  const tools = (): GpioTools => {
    gpio ??= new GpioTools();
    return gpio;
  };
  for (const [name, handler] of systemSensors({ dataDir: config.dataDir })) {
    registry.addSensor({
      name,
      handler,
      unit: name === 'cpu.temp' ? 'Cel' : name === 'cpu.load' ? null : '%',
      everyMs: undefined,
    });
  }
  for (const action of config.actions) {
    const handler: ActionHandler =
      action.kind === 'exec'
        ? new ExecAction({
            name: action.name,
            exec: action.exec,
            timeoutMs: action.timeoutMs,
            logger: log,
            counters,
          })
        : new GpioAction({
            tools: tools(),
            chip: action.chip,
            line: action.line,
            activeLow: action.activeLow,
          });
    registry.addAction({
      name: action.name,
      handler,
      timeoutMs: action.timeoutMs,
      allow: action.allow,
      concurrency: action.concurrency,
      queue: action.queue,
    });
  }
  for (const sensor of config.sensors) {
    const handler: SensorHandler =
      sensor.kind === 'exec'
        ? new ExecSensor({
            name: sensor.name,
            exec: sensor.exec,
            ...(sensor.unit !== undefined && { unit: sensor.unit }),
          })
        : new GpioSensor({
            tools: tools(),
            chip: sensor.chip,
            line: sensor.line,
            activeLow: sensor.activeLow,
          });
    registry.addSensor({ name: sensor.name, handler, unit: sensor.unit ?? null, everyMs: sensor.everyMs });
  }
  return registry;
}
