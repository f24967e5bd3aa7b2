// Sensors across the mesh: this agent's own sensors read on demand, on their `every` schedule and for
// watchers; remote sensors read once or watched at a rate (the watcher renews, so a watcher that goes
// away stops costing the sensor's agent anything within one watch time). A pushed reading counts only
// while this agent watches that sensor at that peer: nobody else can feed it readings.
import type { CoordinationMessage, SensorValueMessage } from '../protocol/coordination.js';
import { SensorReadError, type SensorReading } from './handler.js';
import type { CapabilityRegistry } from './registry.js';

/** How long a local read may take. */
export const READ_TIMEOUT_MS = 10_000;
/** A watch lasts this long unless renewed; the watcher renews at a third of it. */
const WATCH_TTL_MS = 60_000;
/** Watches this agent serves at once (every peer and sensor together). */
const MAX_SERVED_WATCHES = 256;

export interface Reading {
  sensor: string;
  value: number | string | boolean;
  unit: string | null;
  readAtMs: number;
}

export interface SensorServiceOptions {
  selfId: string;
  registry: CapabilityRegistry;
  send(peer: string, message: CoordinationMessage): Promise<void>;
  /** A reading this agent learned, its own or a peer's. */
  learned(peer: string, reading: Reading): void;
  /** Reads that failed, counted by code. */
  count(name: string): void;
}

interface ServedWatch {
  timer: NodeJS.Timeout;
  expiry: NodeJS.Timeout;
  intervalMs: number;
}

export class SensorService {
  readonly #options: SensorServiceOptions;
  readonly #polls = new Map<string, { timer: NodeJS.Timeout; intervalMs: number; users: number }>();
  readonly #served = new Map<string, ServedWatch>();
  /** Remote sensors this agent watches, by "<peer id>/<sensor>": how many watchers ask for each. */
  readonly #watching = new Map<string, number>();
  readonly #reading = new Map<string, Promise<Reading>>();

  constructor(options: SensorServiceOptions) {
    this.#options = options;
  }

  /** Starts the `every` schedules of the configured sensors. */
  start(): void {
    for (const sensor of this.#options.registry.sensors.values()) {
      if (sensor.everyMs !== undefined) this.poll(sensor.name, sensor.everyMs);
    }
  }

  stop(): void {
    for (const poll of this.#polls.values()) clearInterval(poll.timer);
    this.#polls.clear();
    for (const watch of this.#served.values()) {
      clearInterval(watch.timer);
      clearTimeout(watch.expiry);
    }
    this.#served.clear();
  }

  /**
   * Reads one of this agent's sensors now; rejects with SensorReadError. Asked again while a read runs
   * (a schedule, watchers, a peer's read), the running read answers all: one process per sensor at a time.
   */
  readLocal(name: string): Promise<Reading> {
    let running = this.#reading.get(name);
    if (running === undefined) {
      running = this.#readOnce(name).finally(() => this.#reading.delete(name));
      this.#reading.set(name, running);
    }
    return running;
  }

  async #readOnce(name: string): Promise<Reading> {
    const sensor = this.#options.registry.sensors.get(name);
    if (sensor === undefined) throw new SensorReadError('unknown-sensor', `no sensor "${name}" here`);
    // Not AbortSignal.timeout: its timer outlives the read and builds a DOMException (a stack) when it fires,
    // ten seconds later, for every read; on a hub that peers read many times a second that adds up.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), READ_TIMEOUT_MS);
    let reading: SensorReading;
    try {
      reading = await sensor.handler.read(controller.signal);
    } finally {
      clearTimeout(timer);
    }
    const result = {
      sensor: name,
      value: reading.value,
      unit: reading.unit ?? sensor.unit,
      readAtMs: reading.readAtMs,
    };
    this.#options.learned(this.#options.selfId, result);
    return result;
  }

  /**
   * Reads a local sensor every `intervalMs` (the fastest asked for wins) until every user stopped; each
   * reading is learned. Returns the stop function.
   */
  poll(name: string, intervalMs: number): () => void {
    const existing = this.#polls.get(name);
    if (existing !== undefined && existing.intervalMs <= intervalMs) {
      existing.users++;
    } else {
      if (existing !== undefined) clearInterval(existing.timer);
      const timer = setInterval(() => void this.#readQuietly(name), intervalMs);
      timer.unref();
      this.#polls.set(name, { timer, intervalMs, users: (existing?.users ?? 0) + 1 });
      void this.#readQuietly(name);
    }
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      const poll = this.#polls.get(name);
      if (poll === undefined || --poll.users > 0) return;
      clearInterval(poll.timer);
      this.#polls.delete(name);
    };
  }

  /** Answers a peer's SENSOR-READ. */
  async answerRead(from: string, requestId: number, name: string): Promise<void> {
    await this.#options.send(from, {
      kind: 'sensor-value',
      requestId,
      sensor: name,
      reading: await this.#readingFor(name),
    });
  }

  /** A peer's SENSOR-WATCH: starts, renews or (ttl 0) cancels pushing this sensor's readings to it. */
  serveWatch(from: string, name: string, intervalMs: number, ttlMs: number): void {
    const key = `${from}/${name}`;
    const current = this.#served.get(key);
    if (ttlMs === 0) {
      if (current !== undefined) this.#cancelServed(key, current);
      return;
    }
    if (current === undefined && this.#served.size >= MAX_SERVED_WATCHES) {
      this.#options.count('coordination.watches_refused');
      return;
    }
    if (current !== undefined && current.intervalMs !== intervalMs) this.#cancelServed(key, current);
    const kept = this.#served.get(key);
    const push = async (): Promise<void> => {
      await this.#options
        .send(from, {
          kind: 'sensor-value',
          requestId: 0,
          sensor: name,
          reading: await this.#readingFor(name),
        })
        .catch(() => this.#options.count('coordination.watch_pushes_failed'));
    };
    const timer = kept?.timer ?? setInterval(() => void push(), intervalMs);
    timer.unref();
    if (kept === undefined) void push();
    if (kept !== undefined) clearTimeout(kept.expiry);
    const expiry = setTimeout(() => {
      const watch = this.#served.get(key);
      if (watch !== undefined) this.#cancelServed(key, watch);
    }, ttlMs);
    expiry.unref();
    this.#served.set(key, { timer, expiry, intervalMs });
  }

  /**
   * Asks `peer` to push `sensor` every `intervalMs`, renewing until the returned function is called; the
   * watch is cancelled at the peer when its last watcher here stops.
   */
  watchRemote(peer: string, name: string, intervalMs: number): () => void {
    const key = `${peer}/${name}`;
    this.#watching.set(key, (this.#watching.get(key) ?? 0) + 1);
    const ask = (ttlMs: number): void => {
      void this.#options
        .send(peer, { kind: 'sensor-watch', sensor: name, intervalMs, ttlMs })
        .catch(() => this.#options.count('coordination.watch_requests_failed'));
    };
    ask(WATCH_TTL_MS);
    const renew = setInterval(() => ask(WATCH_TTL_MS), WATCH_TTL_MS / 3);
    renew.unref();
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      clearInterval(renew);
      const watchers = (this.#watching.get(key) ?? 1) - 1;
      if (watchers > 0) {
        this.#watching.set(key, watchers);
        return;
      }
      this.#watching.delete(key);
      ask(0);
    };
  }

  /** A SENSOR-VALUE pushed (request id 0); false, and nothing learned, unless this agent watches it there. */
  pushed(from: string, message: SensorValueMessage): boolean {
    if (!this.#watching.has(`${from}/${message.sensor}`)) return false;
    const { reading } = message;
    if (!reading.ok) {
      this.#options.count('coordination.watched_read_errors');
      return true;
    }
    this.#options.learned(from, {
      sensor: message.sensor,
      value: reading.value,
      unit: reading.unit,
      readAtMs: reading.readAt,
    });
    return true;
  }

  /** Currently served watches, for status. */
  get servedWatches(): number {
    return this.#served.size;
  }

  async #readingFor(name: string): Promise<SensorValueMessage['reading']> {
    try {
      const reading = await this.readLocal(name);
      return { ok: true, value: reading.value, unit: reading.unit, readAt: reading.readAtMs };
    } catch (error) {
      const code = error instanceof SensorReadError ? error.code : 'internal';
      return { ok: false, error: { code, message: error instanceof Error ? error.message : String(error) } };
    }
  }

  async #readQuietly(name: string): Promise<void> {
    try {
      await this.readLocal(name);
    } catch (error) {
      this.#options.count(
        `coordination.sensor_read_${error instanceof SensorReadError ? error.code.replaceAll('-', '_') : 'internal'}`,
      );
    }
  }

  #cancelServed(key: string, watch: ServedWatch): void {
    clearInterval(watch.timer);
    clearTimeout(watch.expiry);
    this.#served.delete(key);
  }
}
