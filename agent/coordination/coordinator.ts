// Coordination, wired: decodes the system messages that reach this agent (over a direct link or the
// mesh) and hands them to the executor, the caller, time sync and sensor reads; offers calls, reads and
// the mesh-wide list of actions and sensors to the control socket and the console.
import { randomInt } from 'node:crypto';
import { NearmeshError } from '../errors.js';
import { TypedEmitter } from '../events.js';
import type { Identity } from '../identity/identity.js';
import type { KnownAgent } from '../mesh/topology.js';
import type { Counters } from '../ops/counters.js';
import type { Logger } from '../ops/logger.js';
import {
  type CoordinationMessage,
  decodeCoordination,
  encodeCoordination,
  type SensorValueMessage,
} from '../protocol/coordination.js';
import { DecodeError } from '../protocol/errors.js';
import { Caller, type CallOutcome, type CallRequest, type CallTarget } from './caller.js';
import { Executor } from './executor.js';
import { SensorReadError } from './handler.js';
import type { CapabilityRegistry, LocalAction, LocalSensor } from './registry.js';
import { type Clock, TimeSync } from './time-sync.js';

/** How long a remote sensor read may take. */
const READ_TIMEOUT_MS = 10_000;

export interface CoordinatorOptions {
  identity: Identity;
  name: string;
  groups: readonly string[];
  registry: CapabilityRegistry;
  clock: Clock;
  /** Sends a system message to a peer (reliable; resolves when acknowledged). */
  send(peer: string, payload: Uint8Array): Promise<unknown>;
  /** Every other agent the mesh has heard announcing itself. */
  knownAgents(): KnownAgent[];
  /** A peer id for an id or name the mesh knows (direct links and announcements). */
  resolvePeer(reference: string): { id: string; name: string } | undefined;
  /** The registry changed (an app registered or removed an action or sensor): announce it. */
  onCapabilitiesChanged(): void;
  counters: Counters;
  log: Logger;
}

/** A sensor value this agent learned: read here, pushed by a watched peer, or answered to a read. */
export interface SensorReadingEvent {
  peer: string;
  name: string;
  sensor: string;
  value: number | string | boolean;
  unit: string | null;
  readAtMs: number;
}

export interface CoordinatorEvents {
  reading: (reading: SensorReadingEvent) => void;
}

/** Latest values kept, across every peer and sensor. */
const MAX_CACHED_READINGS = 4096;

export interface ActionInfo {
  peer: string;
  name: string;
  action: string;
}

export interface SensorInfo {
  peer: string;
  name: string;
  sensor: string;
  unit: string | null;
}

export interface SensorReadResult {
  peer: string;
  sensor: string;
  value: number | string | boolean;
  unit: string | null;
  read_at: string;
}

export class Coordinator extends TypedEmitter<CoordinatorEvents> {
  readonly #options: CoordinatorOptions;
  readonly #latest = new Map<string, SensorReadingEvent>();
  readonly timeSync: TimeSync;
  readonly #executor: Executor;
  readonly #caller: Caller;
  readonly #reads = new Map<number, (message: SensorValueMessage) => void>();

  constructor(options: CoordinatorOptions) {
    super();
    this.#options = options;
    const selfId = options.identity.peerId;
    this.timeSync = new TimeSync({
      clock: options.clock,
      send: (peer, message) => this.#send(peer, message),
    });
    this.#executor = new Executor({
      selfId,
      registry: options.registry,
      timeSync: this.timeSync,
      describe: (peerId) => this.#describe(peerId),
      counters: options.counters,
    });
    this.#caller = new Caller({
      identity: options.identity,
      resolve: (target) => this.#resolveTargets(target),
      deliver: async (target, call) => {
        if (target.id === selfId) {
          const result = await this.#executor.handle(selfId, call);
          this.#caller.onResult(selfId, result);
          return;
        }
        await this.#send(target.id, call);
      },
    });
  }

  /** An action provided from outside the config (a local app over MQTT); announced to the mesh. */
  registerAction(action: LocalAction): void {
    this.#options.registry.addAction(action);
    this.#options.onCapabilitiesChanged();
  }

  unregisterAction(name: string): void {
    if (this.#options.registry.removeAction(name)) this.#options.onCapabilitiesChanged();
  }

  registerSensor(sensor: LocalSensor): void {
    this.#options.registry.addSensor(sensor);
    this.#options.onCapabilitiesChanged();
  }

  unregisterSensor(name: string): void {
    if (this.#options.registry.removeSensor(name)) this.#options.onCapabilitiesChanged();
  }

  /** The latest value of every sensor this agent has heard of, newest last. */
  latest(): SensorReadingEvent[] {
    return [...this.#latest.values()];
  }

  /** Records a reading in the cache and tells listeners (MQTT, rules). */
  #learned(reading: SensorReadingEvent): void {
    const key = `${reading.peer}/${reading.sensor}`;
    this.#latest.delete(key);
    if (this.#latest.size >= MAX_CACHED_READINGS) {
      const oldest = this.#latest.keys().next().value;
      if (oldest !== undefined) this.#latest.delete(oldest);
    }
    this.#latest.set(key, reading);
    this.emit('reading', reading);
  }

  call(request: CallRequest): Promise<CallOutcome[]> {
    return this.#caller.call(request);
  }

  /** Reads a sensor of this agent or of another one. */
  async read(peerReference: string, sensor: string): Promise<SensorReadResult> {
    const peer = this.#resolvePeer(peerReference);
    if (peer.id === this.#options.identity.peerId) {
      const local = this.#options.registry.sensors.get(sensor);
      if (local === undefined) throw new CoordinationError('unknown-sensor', `no sensor "${sensor}" here`);
      const reading = await local.handler.read(AbortSignal.timeout(READ_TIMEOUT_MS));
      const unit = reading.unit ?? local.unit;
      return this.#answered({ ...peer, sensor, value: reading.value, unit, readAtMs: reading.readAtMs });
    }
    const requestId = randomInt(0, 0xffff_ffff);
    const answer = new Promise<SensorValueMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#reads.delete(requestId);
        reject(new CoordinationError('timeout', `no reading from ${peer.name} within ${READ_TIMEOUT_MS} ms`));
      }, READ_TIMEOUT_MS);
      this.#reads.set(requestId, (message) => {
        clearTimeout(timer);
        this.#reads.delete(requestId);
        resolve(message);
      });
    });
    await this.#send(peer.id, { kind: 'sensor-read', requestId, sensor });
    const { reading } = await answer;
    if (!reading.ok) throw new CoordinationError(reading.error.code, reading.error.message);
    return this.#answered({
      ...peer,
      sensor,
      value: reading.value,
      unit: reading.unit,
      readAtMs: reading.readAt,
    });
  }

  #answered(
    reading: { id: string; name: string } & Omit<SensorReadingEvent, 'peer' | 'name'>,
  ): SensorReadResult {
    const { id, name, ...rest } = reading;
    this.#learned({ peer: id, name, ...rest });
    return { peer: id, sensor: rest.sensor, value: rest.value, unit: rest.unit, read_at: iso(rest.readAtMs) };
  }

  /** Actions across the mesh: this agent's and every announced one. */
  actions(): ActionInfo[] {
    const self = { peer: this.#options.identity.peerId, name: this.#options.name };
    const rows = [...this.#options.registry.actions.keys()].map((action) => ({ ...self, action }));
    for (const agent of this.#options.knownAgents()) {
      for (const action of agent.capabilities?.actions ?? [])
        rows.push({ peer: agent.id, name: agent.name, action });
    }
    return rows;
  }

  sensors(): SensorInfo[] {
    const self = { peer: this.#options.identity.peerId, name: this.#options.name };
    const rows: SensorInfo[] = [...this.#options.registry.sensors.values()].map((sensor) => ({
      ...self,
      sensor: sensor.name,
      unit: sensor.unit,
    }));
    for (const agent of this.#options.knownAgents()) {
      for (const sensor of agent.capabilities?.sensors ?? [])
        rows.push({ peer: agent.id, name: agent.name, sensor: sensor.name, unit: sensor.unit });
    }
    return rows;
  }

  /** A system message from a peer: decoded once, here, and handed to its part. */
  receive(from: string, payload: Uint8Array): void {
    const message = decodeCoordination(payload);
    if (message instanceof DecodeError) {
      this.#options.counters.increment('coordination.dropped_malformed');
      this.#options.log.debug({ peer: from, err: message }, 'coordination: malformed message dropped');
      return;
    }
    switch (message.kind) {
      case 'call':
        void this.#executor.handle(from, message).then((result) => this.#send(from, result).catch(() => {}));
        return;
      case 'result':
        this.#caller.onResult(from, message);
        return;
      case 'time-request':
        this.timeSync.onRequest(from, message);
        return;
      case 'time-reply':
        this.timeSync.onReply(from, message);
        return;
      case 'sensor-read':
        void this.#answerRead(from, message.requestId, message.sensor);
        return;
      case 'sensor-value':
        this.#reads.get(message.requestId)?.(message);
        return;
    }
  }

  async #answerRead(from: string, requestId: number, sensorName: string): Promise<void> {
    const sensor = this.#options.registry.sensors.get(sensorName);
    let reading: SensorValueMessage['reading'];
    if (sensor === undefined) {
      reading = { ok: false, error: { code: 'unknown-sensor', message: `no sensor "${sensorName}" here` } };
    } else {
      try {
        const value = await sensor.handler.read(AbortSignal.timeout(READ_TIMEOUT_MS));
        reading = { ok: true, value: value.value, unit: value.unit ?? sensor.unit, readAt: value.readAtMs };
      } catch (error) {
        const code = error instanceof SensorReadError ? error.code : 'internal';
        reading = {
          ok: false,
          error: { code, message: error instanceof Error ? error.message : String(error) },
        };
      }
    }
    await this.#send(from, { kind: 'sensor-value', requestId, sensor: sensorName, reading }).catch(() => {});
  }

  async #send(peer: string, message: CoordinationMessage): Promise<void> {
    await this.#options.send(peer, encodeCoordination(message));
  }

  #resolveTargets(target: string): CallTarget[] {
    const selfId = this.#options.identity.peerId;
    const self = { id: selfId, name: this.#options.name };
    if (target === 'all') {
      return [self, ...this.#options.knownAgents().map((agent) => ({ id: agent.id, name: agent.name }))];
    }
    if (target.startsWith('group:')) {
      const group = target.slice('group:'.length);
      const members = this.#options
        .knownAgents()
        .filter((agent) => agent.groups.includes(group))
        .map((agent) => ({ id: agent.id, name: agent.name }));
      return this.#options.groups.includes(group) ? [self, ...members] : members;
    }
    return [this.#resolvePeer(target)];
  }

  #resolvePeer(reference: string): { id: string; name: string } {
    if (reference === this.#options.identity.peerId || reference === this.#options.name) {
      return { id: this.#options.identity.peerId, name: this.#options.name };
    }
    const peer = this.#options.resolvePeer(reference);
    if (peer === undefined) throw new CoordinationError('unknown-peer', `no peer "${reference}" is known`);
    return peer;
  }

  #describe(peerId: string): { name?: string; groups: readonly string[] } {
    const agent = this.#options.knownAgents().find((known) => known.id === peerId);
    return agent === undefined ? { groups: [] } : { name: agent.name, groups: agent.groups };
  }
}

export class CoordinationError extends NearmeshError {}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
