// Coordination, wired: decodes the system messages that reach this agent (over a direct link or the
// mesh) and hands them to the executor, the caller, time sync, leases and sensors; offers calls, reads,
// watches, leases and the mesh-wide list of actions and sensors to the control socket and the console.

import { setBounded } from '../core/bounded-map.js';
import type { Counters } from '../core/counters.js';
import { NearmeshError, UnknownPeerError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { KnownAgent } from '../mesh/topology.js';
import {
  type CoordinationMessage,
  decodeCoordination,
  encodeCoordination,
  type LeaseReplyMessage,
  type SensorValueMessage,
} from '../protocol/coordination.js';
import { DecodeError } from '../protocol/errors.js';
import type { SystemHandlers } from '../protocol/system-kind.js';
import { Caller, type CallOutcome, type CallRequest, type CallTarget } from './caller.js';
import type { CoordinationLimits } from './config.js';
import { Executor } from './executor.js';
import { SensorReadError } from './handler.js';
import { LeaseTable } from './leases.js';
import { PendingRequests } from './pending-requests.js';
import type { CapabilityRegistry, LocalAction, LocalSensor } from './registry.js';
import { READ_TIMEOUT_MS, type Reading, SensorService } from './sensor-service.js';
import { type Clock, TimeSync } from './time-sync.js';

export interface CoordinatorOptions {
  /** This agent's peer id. */
  selfId: string;
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
  /**
   * Whether the name `peerId` announces is its own (no other identity claimed it first): an `allow` list
   * naming "hall-pi" must not let in another device that calls itself hall-pi. Default: every name is.
   */
  ownsName?(peerId: string, name: string): boolean;
  /** The registry changed (an app registered or removed an action or sensor): announce it. */
  onCapabilitiesChanged(): void;
  /** What calls may cost this agent (the `[coordination]` table); default DEFAULT_COORDINATION_LIMITS. */
  limits?: CoordinationLimits;
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
  /** The latest value this agent has (from a read, a watch or the sensor's schedule); null when none yet. */
  value: number | string | boolean | null;
  read_at: string | null;
}

export interface SensorReadResult {
  peer: string;
  sensor: string;
  value: number | string | boolean;
  unit: string | null;
  read_at: string;
}

export interface LeaseResult {
  peer: string;
  name: string;
  resource: string;
  granted: boolean;
  /** Who holds it now; null when free. */
  holder: string | null;
  holder_name: string | null;
  remaining_ms: number;
}

/** A lease this agent grants on its own resources, or holds (and renews) on another agent's. */
export interface LeaseInfo {
  /** The agent whose resource it is. */
  peer: string;
  name: string;
  resource: string;
  holder: string;
  holder_name: string | null;
  /** Time left; null for a lease this agent holds elsewhere (it renews it before it runs out). */
  remaining_ms: number | null;
}

export class Coordinator extends TypedEmitter<CoordinatorEvents> {
  readonly #options: CoordinatorOptions;
  readonly #latest = new Map<string, SensorReadingEvent>();
  readonly timeSync: TimeSync;
  readonly #executor: Executor;
  readonly #caller: Caller;
  readonly #sensors: SensorService;
  readonly #leases: LeaseTable;
  readonly #reads = new PendingRequests<SensorValueMessage>();
  readonly #leaseReplies = new PendingRequests<LeaseReplyMessage>();
  /** Leases this agent holds and renews, by "<peer id>/<resource>": their renewal timers. */
  readonly #held = new Map<string, NodeJS.Timeout>();

  constructor(options: CoordinatorOptions) {
    super();
    this.#options = options;
    const selfId = options.selfId;
    this.timeSync = new TimeSync({
      clock: options.clock,
      send: (peer, message) => this.#send(peer, message),
    });
    this.#leases = new LeaseTable();
    this.#executor = new Executor({
      selfId,
      registry: options.registry,
      timeSync: this.timeSync,
      leases: this.#leases,
      describe: (peerId) => this.#describe(peerId),
      counters: options.counters,
      limits: options.limits,
    });
    this.#caller = new Caller({
      selfId,
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
    this.#sensors = new SensorService({
      selfId,
      registry: options.registry,
      send: (peer, message) => this.#send(peer, message),
      learned: (peer, reading) => this.#learned(peer, reading),
      count: (name) => options.counters.increment(name),
    });
  }

  /** Starts the configured sensors' schedules. */
  start(): void {
    this.#sensors.start();
  }

  stop(): void {
    this.#sensors.stop();
    for (const key of [...this.#held.keys()]) this.#stopRenewing(key);
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

  /** The latest value of one sensor, by peer id or name. */
  latestValue(peerReference: string, sensor: string): SensorReadingEvent | undefined {
    const peer = this.#tryResolvePeer(peerReference);
    return peer === undefined ? undefined : this.#latest.get(`${peer.id}/${sensor}`);
  }

  call(request: CallRequest): Promise<CallOutcome[]> {
    return this.#caller.call(request);
  }

  /** Reads a sensor of this agent or of another one, now. */
  async read(peerReference: string, sensor: string): Promise<SensorReadResult> {
    const peer = this.#resolvePeer(peerReference);
    if (peer.id === this.#options.selfId) {
      try {
        return this.#readResult(peer.id, await this.#sensors.readLocal(sensor));
      } catch (error) {
        if (error instanceof SensorReadError) throw new CoordinationError(error.code, error.message);
        throw error;
      }
    }
    const { reading } = await this.#reads.request(
      peer.id,
      (requestId) => this.#send(peer.id, { kind: 'sensor-read', requestId, sensor }),
      READ_TIMEOUT_MS,
      () => new CoordinationError('timeout', `no reading from ${peer.name} within ${READ_TIMEOUT_MS} ms`),
    );
    if (!reading.ok) throw new CoordinationError(reading.error.code, reading.error.message);
    const learned = { sensor, value: reading.value, unit: reading.unit, readAtMs: reading.readAt };
    this.#learned(peer.id, learned);
    return this.#readResult(peer.id, learned);
  }

  /**
   * Keeps a sensor's readings coming (each one a 'reading' event and in the cache): polled here for this
   * agent's own sensors, pushed by the peer for remote ones. Returns the stop function.
   */
  watch(peerReference: string, sensor: string, intervalMs: number): () => void {
    const peer = this.#resolvePeer(peerReference);
    if (peer.id === this.#options.selfId) return this.#sensors.poll(sensor, intervalMs);
    return this.#sensors.watchRemote(peer.id, sensor, intervalMs);
  }

  /** Takes, renews (acquire again) or gives back a lease on a peer's resource (an action name). */
  async lease(
    peerReference: string,
    resource: string,
    op: 'acquire' | 'release',
    ttlMs: number,
  ): Promise<LeaseResult> {
    const peer = this.#resolvePeer(peerReference);
    const selfId = this.#options.selfId;
    if (op === 'release') this.#stopRenewing(`${peer.id}/${resource}`);
    let state: { granted: boolean; holder: string | null; remainingMs: number };
    if (peer.id === selfId) {
      state =
        op === 'acquire'
          ? this.#leases.acquire(selfId, resource, ttlMs)
          : this.#leases.release(selfId, resource);
    } else {
      state = await this.#leaseReplies.request(
        peer.id,
        (requestId) =>
          this.#send(peer.id, {
            kind: 'lease',
            requestId,
            op,
            resource,
            ttlMs: op === 'release' ? 0 : ttlMs,
          }),
        READ_TIMEOUT_MS,
        () =>
          new CoordinationError('timeout', `no lease answer from ${peer.name} within ${READ_TIMEOUT_MS} ms`),
      );
    }
    return {
      peer: peer.id,
      name: peer.name,
      resource,
      granted: state.granted,
      holder: state.holder,
      holder_name: state.holder === null ? null : (this.#nameOf(state.holder) ?? null),
      remaining_ms: state.remainingMs,
    };
  }

  /** The leases granted on this agent's resources, then those it holds on other agents' and renews. */
  leases(): LeaseInfo[] {
    const { selfId, name } = this.#options;
    const granted = this.#leases.entries().map(
      (lease): LeaseInfo => ({
        peer: selfId,
        name,
        resource: lease.resource,
        holder: lease.holder,
        holder_name: this.#nameOf(lease.holder) ?? null,
        remaining_ms: lease.remainingMs,
      }),
    );
    const held = [...this.#held.keys()].map((key): LeaseInfo => {
      const slash = key.indexOf('/');
      const peer = key.slice(0, slash);
      return {
        peer,
        name: this.#nameOf(peer) ?? peer,
        resource: key.slice(slash + 1),
        holder: selfId,
        holder_name: name,
        remaining_ms: null,
      };
    });
    return [...granted, ...held];
  }

  /**
   * Takes a lease and keeps renewing it (every third of `ttlMs`) until the returned stop function is called
   * or `forMs` has passed; stopping gives it back. Renewal stops when a renewal is refused.
   */
  async hold(
    peerReference: string,
    resource: string,
    ttlMs: number,
    forMs?: number,
  ): Promise<{ result: LeaseResult; stop: () => Promise<void> }> {
    const result = await this.lease(peerReference, resource, 'acquire', ttlMs);
    if (!result.granted) return { result, stop: async () => {} };
    const key = `${result.peer}/${resource}`;
    this.#stopRenewing(key);
    const renewal = (): void => {
      this.lease(peerReference, resource, 'acquire', ttlMs).then(
        (renewed) => {
          if (renewed.granted) return;
          this.#options.log.warn({ peer: result.peer, resource }, 'lease: renewal refused, lease lost');
          this.#stopRenewing(key);
        },
        () => this.#options.counters.increment('coordination.lease_renewals_failed'),
      );
    };
    const renew = setInterval(renewal, Math.max(100, Math.floor(ttlMs / 3)));
    renew.unref();
    this.#held.set(key, renew);
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      clearTimeout(limit);
      // Released only if this hold still owns the renewal (a --release or a newer hold may have taken over).
      if (this.#held.get(key) !== renew) return;
      await this.lease(peerReference, resource, 'release', 0).catch(() => {});
    };
    const limit = forMs === undefined ? undefined : setTimeout(() => void stop(), forMs);
    limit?.unref();
    return { result, stop };
  }

  #stopRenewing(key: string): void {
    clearInterval(this.#held.get(key));
    this.#held.delete(key);
  }

  /** Actions across the mesh: this agent's and every announced one. */
  actions(): ActionInfo[] {
    const self = { peer: this.#options.selfId, name: this.#options.name };
    const rows = [...this.#options.registry.actions.keys()].map((action) => ({ ...self, action }));
    for (const agent of this.#options.knownAgents()) {
      for (const action of agent.capabilities.actions)
        rows.push({ peer: agent.id, name: agent.name, action });
    }
    return rows;
  }

  /** Sensors across the mesh, with the latest value this agent has of each. */
  sensors(): SensorInfo[] {
    const self = { peer: this.#options.selfId, name: this.#options.name };
    const rows: SensorInfo[] = [...this.#options.registry.sensors.values()].map((sensor) =>
      this.#sensorRow(self.peer, self.name, sensor.name, sensor.unit),
    );
    for (const agent of this.#options.knownAgents()) {
      for (const sensor of agent.capabilities.sensors)
        rows.push(this.#sensorRow(agent.id, agent.name, sensor.name, sensor.unit));
    }
    return rows;
  }

  /** Takes coordination messages (and unknown kinds, to count them) from the agent's system inbox. */
  registerWith(inbox: SystemHandlers): void {
    inbox.register('coordination', (message) => this.receive(message.from, message.payload));
  }

  /**
   * A system message from a peer: decoded once, here, and handed to its part. An answer (RESULT,
   * TIME-REPLY, LEASE-REPLY, SENSOR-VALUE) to no question this agent asked that peer is dropped and
   * counted: a peer can only answer, never feed this agent results, clocks, leases or readings unasked.
   */
  receive(from: string, payload: Uint8Array): void {
    const { counters, log } = this.#options;
    const message = decodeCoordination(payload);
    if (message instanceof DecodeError) {
      counters.increment('coordination.dropped_malformed');
      log.debug({ peer: from, err: message }, 'coordination: malformed message dropped');
      return;
    }
    if (!this.#handle(from, message)) {
      counters.increment('coordination.unsolicited_dropped');
      log.debug({ peer: from, kind: message.kind }, 'coordination: an answer to nothing asked dropped');
    }
  }

  /** Hands a message to its part; false for an answer to nothing this agent asked `from`. */
  #handle(from: string, message: CoordinationMessage): boolean {
    switch (message.kind) {
      case 'call':
        void this.#executor.handle(from, message).then((result) => this.#send(from, result).catch(() => {}));
        return true;
      case 'result':
        return this.#caller.onResult(from, message);
      case 'time-request':
        this.timeSync.onRequest(from, message);
        return true;
      case 'time-reply':
        return this.timeSync.onReply(from, message);
      case 'lease': {
        const state =
          message.op === 'acquire'
            ? this.#leases.acquire(from, message.resource, message.ttlMs)
            : this.#leases.release(from, message.resource);
        void this.#send(from, { kind: 'lease-reply', requestId: message.requestId, ...state }).catch(
          () => {},
        );
        return true;
      }
      case 'lease-reply':
        return this.#leaseReplies.settle(from, message);
      case 'sensor-read':
        void this.#sensors.answerRead(from, message.requestId, message.sensor).catch(() => {});
        return true;
      case 'sensor-value':
        return message.requestId === 0
          ? this.#sensors.pushed(from, message)
          : this.#reads.settle(from, message);
      case 'sensor-watch':
        this.#sensors.serveWatch(from, message.sensor, message.intervalMs, message.ttlMs);
        return true;
    }
  }

  /** Records a reading in the cache and tells listeners (MQTT, rules). */
  #learned(peer: string, reading: Reading): void {
    const event: SensorReadingEvent = { peer, name: this.#nameOf(peer) ?? peer, ...reading };
    const key = `${peer}/${reading.sensor}`;
    setBounded(this.#latest, key, event, MAX_CACHED_READINGS);
    this.emit('reading', event);
  }

  #readResult(peer: string, reading: Reading): SensorReadResult {
    return {
      peer,
      sensor: reading.sensor,
      value: reading.value,
      unit: reading.unit,
      read_at: iso(reading.readAtMs),
    };
  }

  #sensorRow(peer: string, name: string, sensor: string, unit: string | null): SensorInfo {
    const latest = this.#latest.get(`${peer}/${sensor}`);
    return {
      peer,
      name,
      sensor,
      unit,
      value: latest?.value ?? null,
      read_at: latest === undefined ? null : iso(latest.readAtMs),
    };
  }

  async #send(peer: string, message: CoordinationMessage): Promise<void> {
    await this.#options.send(peer, encodeCoordination(message));
  }

  #resolveTargets(target: string): CallTarget[] {
    const selfId = this.#options.selfId;
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

  /** A peer id or name (this agent's too) as the peer it means; throws CoordinationError for an unknown one. */
  resolve(reference: string): { id: string; name: string } {
    return this.#resolvePeer(reference);
  }

  #resolvePeer(reference: string): { id: string; name: string } {
    const peer = this.#tryResolvePeer(reference);
    if (peer === undefined)
      throw new CoordinationError('unknown-peer', new UnknownPeerError(reference).message);
    return peer;
  }

  /** Like resolve(), but undefined for a peer the mesh does not know (yet). */
  tryResolve(reference: string): { id: string; name: string } | undefined {
    return this.#tryResolvePeer(reference);
  }

  #tryResolvePeer(reference: string): { id: string; name: string } | undefined {
    if (reference === this.#options.selfId || reference === this.#options.name) {
      return { id: this.#options.selfId, name: this.#options.name };
    }
    return this.#options.resolvePeer(reference);
  }

  #nameOf(peerId: string): string | undefined {
    if (peerId === this.#options.selfId) return this.#options.name;
    return (
      this.#options.knownAgents().find((known) => known.id === peerId)?.name ??
      this.#options.resolvePeer(peerId)?.name
    );
  }

  #describe(peerId: string): { name?: string; groups: readonly string[] } {
    if (peerId === this.#options.selfId) return { name: this.#options.name, groups: this.#options.groups };
    const agent = this.#options.knownAgents().find((known) => known.id === peerId);
    if (agent === undefined) return { groups: [] };
    const ownsName = this.#options.ownsName?.(peerId, agent.name) ?? true;
    return ownsName ? { name: agent.name, groups: agent.groups } : { groups: agent.groups };
  }
}

export class CoordinationError extends NearmeshError {}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
