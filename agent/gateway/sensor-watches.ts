// Sensor watches for MQTT apps: a client that subscribes to one sensor's topic exactly
// (`nearmesh/sensor/<peer>/<sensor>`, no wildcards) keeps that sensor watched, so its readings keep coming
// to the retained topic though nothing else on the agent reads it (Home Assistant subscribes this way). A
// watch stops once no connected client holds such a subscription: checked every few seconds, which
// covers unsubscribes, disconnects, takeovers and expired sessions alike. Watches are bounded in number.
import type { Counters } from '../core/counters.js';
import type { Logger } from '../core/logger.js';
import type { CoordinationPort } from './coordination-port.js';
import { parseSensorFilter, sensorTopic } from './topic-map.js';

/** How often a watched sensor is read (a local one polled, a remote one pushed by its agent). */
const SENSOR_WATCH_INTERVAL_MS = 10_000;
/** How often watches nobody subscribes to any more are stopped. */
const SWEEP_MS = 5_000;

export interface SensorWatchesOptions {
  coordination: Pick<CoordinationPort, 'watch'>;
  /** True while a connected client holds a subscription to exactly `topic`. */
  subscribed(topic: string): boolean;
  /** Sensors watched at once for MQTT clients; more subscriptions start no watch (counted). */
  maxWatches: number;
  counters: Counters;
  log: Logger;
}

export class SensorWatches {
  readonly #options: SensorWatchesOptions;
  /** The stop function of each watch, by the sensor's topic. */
  readonly #watches = new Map<string, () => void>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: SensorWatchesOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#watches.size;
  }

  /** A client holds these subscription filters: those naming one sensor start its watch. */
  held(filters: Iterable<string>): void {
    for (const filter of filters) {
      const sensor = parseSensorFilter(filter);
      if (sensor === undefined) continue;
      const topic = sensorTopic(sensor.peer, sensor.sensor);
      if (this.#watches.has(topic)) continue;
      const { counters, coordination } = this.#options;
      if (this.#watches.size >= this.#options.maxWatches) {
        counters.increment('mqtt.sensor_watches_refused');
        continue;
      }
      try {
        this.#watches.set(topic, coordination.watch(sensor.peer, sensor.sensor, SENSOR_WATCH_INTERVAL_MS));
        counters.increment('mqtt.sensor_watches');
      } catch (error) {
        // An unknown peer or sensor: the subscription stays, and gets what a later reading brings.
        counters.increment('mqtt.sensor_watches_failed');
        this.#options.log.debug(
          { err: error, topic },
          'mqtt: cannot watch the sensor a client subscribed to',
        );
      }
      this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_MS).unref();
    }
  }

  /** Stops every watch. */
  stop(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const stopWatch of this.#watches.values()) stopWatch();
    this.#watches.clear();
  }

  /** Stops the watches no connected client subscribes to any more. */
  #sweep(): void {
    for (const [topic, stopWatch] of this.#watches) {
      if (this.#options.subscribed(topic)) continue;
      stopWatch();
      this.#watches.delete(topic);
    }
    if (this.#watches.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
