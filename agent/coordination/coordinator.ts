// Coordination, wired: decodes the system messages that reach this agent (over a direct link or the
// mesh) and hands them to the executor, the caller, time sync and sensor reads; offers calls, reads and
// the mesh-wide list of actions and sensors to the control socket and the console.
import { randomInt } from 'node:crypto';
import { NearmeshError } from '../errors.js';
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
import type { CapabilityRegistry } from './registry.js';
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
  counters: Counters;
  log: Logger;
}

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

export class Coordinator {
  readonly #options: CoordinatorOptions;
  readonly timeSync: TimeSync;
  readonly #executor: Executor;
  readonly #caller: Caller;
  readonly #reads = new Map<number, (message: SensorValueMessage) => void>();

  constructor(options: CoordinatorOptions) {
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
      return {
        peer: peer.id,
        sensor,
        value: reading.value,
        unit: reading.unit ?? local.unit,
        read_at: iso(reading.readAtMs),
      };
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
    return { peer: peer.id, sensor, value: reading.value, unit: reading.unit, read_at: iso(reading.readAt) };
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
