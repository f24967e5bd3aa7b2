// The mesh layer: routed DATA, ACK and ANNOUNCE over whatever direct links the link manager holds.
// Forwarding rules (PROTOCOL.md §13): each (source, type, id) is handled once; the hop budget (ttl) falls by
// one per hop; unicast follows the route learned from traffic and floods only on a miss; broadcasts and
// groups follow the source's shortest-path tree built from announcements, flooding where it is unknown.
import { randomInt } from 'node:crypto';
import { FrameTooLargeError } from '../errors.js';
import { TypedEmitter } from '../events.js';
import type { Counters } from '../ops/counters.js';
import {
  type Announcement,
  type Capabilities,
  MAX_TTL_HOPS,
  MessageType,
  type RoutedMessage,
} from '../protocol/index.js';
import { BROADCAST_ID, groupId } from './address.js';
import { DuplicateCache } from './duplicate-cache.js';
import { RouteTable } from './route-table.js';
import { type KnownAgent, MAX_KNOWN_AGENTS, Topology } from './topology.js';

/** A direct link, as the router sees it. */
export interface MeshNeighbour {
  readonly peerId: string;
  /** Sends one message on the link; false when it is closed. May throw FrameTooLargeError. */
  send(message: RoutedMessage): boolean;
}

/** A routed DATA for this agent: to it, to one of its groups, or to everyone. */
export interface MeshDelivery {
  source: string;
  /** A peer id, a group id (see address.ts) or BROADCAST_ID. */
  destination: string;
  id: number;
  payload: Uint8Array;
  ackRequested: boolean;
  /** Hops it travelled, as far as the source's announced hop budget tells. */
  hops: number;
  /** It came flooded (a retransmission): acknowledge it flooded too, the old route may be dead. */
  flooded: boolean;
  /** For the agent itself (coordination), not for apps. */
  system: boolean;
}

export interface RouterEvents {
  deliver: (delivery: MeshDelivery) => void;
  /** A routed ACK for a message this agent sent. */
  ack: (source: string, id: number) => void;
}

export interface RouterOptions {
  selfId: string;
  name: string;
  groups: readonly string[];
  /** The actions and sensors this agent announces (coordination). */
  capabilities?: Capabilities;
  /** Hop budget of the messages this agent originates (1..15). */
  ttl: number;
  /** Forward other agents' messages (off for battery devices: they only send and receive). */
  relay: boolean;
  counters: Counters;
  announceIntervalMs?: number;
  duplicateWindowMs?: number;
  routeExpiryMs?: number;
  /** Announce soon after a link comes or goes (default true; simulations drive announcements themselves). */
  announceOnChange?: boolean;
  now?: () => number;
}

export const DEFAULT_ANNOUNCE_INTERVAL_MS = 30_000;
/**
 * A copy of a message for this agent that arrives this long after the first is a retransmission (its
 * ACK was lost): it is handed up again so it can be acknowledged again. Copies of one flood come sooner.
 */
const REDELIVERY_AFTER_MS = 500;
/** Link changes are announced this soon, once for a burst of them. */
const ANNOUNCE_DEBOUNCE_MS = 300;

export class Router extends TypedEmitter<RouterEvents> {
  readonly selfId: string;
  readonly #options: RouterOptions;
  readonly #neighbours = new Map<string, MeshNeighbour>();
  readonly #duplicates: DuplicateCache;
  /** Messages for this agent handed up recently (see REDELIVERY_AFTER_MS). */
  readonly #recentlyDelivered = new DuplicateCache({ windowMs: REDELIVERY_AFTER_MS });
  readonly #routes: RouteTable;
  readonly #topology: Topology;
  readonly #groupIds: ReadonlySet<string>;
  readonly #now: () => number;
  /** Each agent's latest ANNOUNCE as it arrived here, to bring a newly linked neighbour up to date. */
  readonly #announcements = new Map<string, Extract<RoutedMessage, { type: 'announce' }>>();
  #nextId = randomInt(0, 2 ** 31);
  #announceTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  #capabilities: Capabilities | undefined;

  constructor(options: RouterOptions) {
    super();
    this.#capabilities = options.capabilities;
    if (!Number.isInteger(options.ttl) || options.ttl < 1 || options.ttl > MAX_TTL_HOPS) {
      throw new RangeError(`mesh ttl ${options.ttl} is not in 1..${MAX_TTL_HOPS}`);
    }
    this.selfId = options.selfId;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#duplicates = new DuplicateCache(
      options.duplicateWindowMs === undefined ? {} : { windowMs: options.duplicateWindowMs },
    );
    this.#routes = new RouteTable(options.routeExpiryMs);
    this.#topology = new Topology(options.selfId, options.routeExpiryMs);
    this.#topology.setOwn([], options.relay);
    this.#groupIds = new Set(options.groups.map(groupId));
  }

  /** Announces now and then periodically. */
  start(): void {
    this.announceNow();
    this.#announceTimer = setInterval(
      () => this.announceNow(),
      this.#options.announceIntervalMs ?? DEFAULT_ANNOUNCE_INTERVAL_MS,
    );
    this.#announceTimer.unref();
  }

  stop(): void {
    clearInterval(this.#announceTimer);
    clearTimeout(this.#debounceTimer);
  }

  /** A fresh id for a message this agent originates (one counter for all routed traffic). */
  nextId(): number {
    const id = this.#nextId;
    this.#nextId = (this.#nextId + 1) % 2 ** 32;
    return id;
  }

  addNeighbour(neighbour: MeshNeighbour): void {
    this.#neighbours.set(neighbour.peerId, neighbour);
    this.#routes.delete(neighbour.peerId);
    this.#topology.setOwn(this.#neighbours.keys(), this.#options.relay);
    this.#announceSoon();
    this.#bringUpToDate(neighbour);
  }

  /**
   * A new neighbour learns the agents this one knows now, not at their next announcement (up to 30 s):
   * their latest ANNOUNCEs go to it as if forwarded, one hop further.
   */
  #bringUpToDate(neighbour: MeshNeighbour): void {
    if (!this.#options.relay) return;
    const nowMs = this.#now();
    for (const [source, announcement] of this.#announcements) {
      if (this.#topology.get(source, nowMs) === undefined) {
        this.#announcements.delete(source);
        continue;
      }
      if (source === neighbour.peerId || announcement.route.ttlHops <= 1) continue;
      const forwarded = {
        ...announcement,
        route: { ...announcement.route, ttlHops: announcement.route.ttlHops - 1 },
      };
      if (neighbour.send(forwarded)) this.#options.counters.increment('mesh.announcements_synced');
    }
  }

  removeNeighbour(peerId: string): void {
    if (!this.#neighbours.delete(peerId)) return;
    const dropped = this.#routes.dropVia(peerId);
    this.#options.counters.increment('mesh.routes_dropped', dropped.length);
    this.#topology.setOwn(this.#neighbours.keys(), this.#options.relay);
    this.#announceSoon();
  }

  /**
   * Originates a routed DATA. Unicast goes along the learned route, or floods when there is none or
   * `flood` is set (retransmissions do, to get around a link that died). Returns the links it went out on.
   */
  sendData(
    destination: string,
    payload: Uint8Array,
    options: { id: number; ackRequested: boolean; flood?: boolean; system?: boolean },
  ): number {
    const message: RoutedMessage = {
      type: 'data',
      id: options.id,
      ackRequested: options.ackRequested,
      payload,
      route: { ttlHops: this.#options.ttl, source: this.selfId, destination },
      ...(options.flood === true && { flood: true }),
      ...(options.system === true && { system: true }),
    };
    this.#duplicates.add(this.selfId, MessageType.data, options.id, this.#now());
    return this.#dispatch(message, undefined);
  }

  /** Acknowledges a routed DATA back to its source; flooded when the DATA was. */
  sendAck(destination: string, id: number, options: { flood?: boolean } = {}): number {
    const message: RoutedMessage = {
      type: 'ack',
      id,
      route: { ttlHops: this.#options.ttl, source: this.selfId, destination },
      ...(options.flood === true && { flood: true }),
    };
    return this.#dispatch(message, undefined);
  }

  /** A routed message that arrived on the link to `from`. */
  receive(from: string, message: RoutedMessage): void {
    const { counters } = this.#options;
    const route = message.route;
    if (route === undefined) return;
    const nowMs = this.#now();
    const typeCode = MessageType[message.type];
    if (route.source === this.selfId) {
      counters.increment('mesh.dropped_own'); // our own flood, back around a loop
      return;
    }
    const initialTtl =
      message.type === 'announce'
        ? message.announcement.initialTtl
        : (this.#topology.get(route.source, nowMs)?.initialTtl ?? this.#options.ttl);
    const hops = Math.max(1, initialTtl - route.ttlHops + 1);
    if (!this.#duplicates.add(route.source, typeCode, message.id, nowMs)) {
      counters.increment('mesh.dropped_duplicate');
      // A retransmission for us after its ACK was lost: hand it up again (delivered once above us).
      if (route.destination === this.selfId && message.type === 'data')
        this.#deliverLocally(message, hops, nowMs);
      return;
    }
    if (message.type === 'announce') {
      this.#topology.update(route.source, message.announcement, message.relays, nowMs);
      this.#announcements.delete(route.source);
      if (this.#announcements.size >= MAX_KNOWN_AGENTS) {
        const oldest = this.#announcements.keys().next().value;
        if (oldest !== undefined) this.#announcements.delete(oldest);
      }
      this.#announcements.set(route.source, message);
    }
    // Routes only to agents that announced themselves: made-up sources in a flood must not fill the table.
    if (!this.#neighbours.has(route.source) && this.#topology.get(route.source, nowMs) !== undefined) {
      const isFresh = message.type === 'announce' || message.flood === true;
      if (isFresh) this.#routes.replace(route.source, from, hops, nowMs);
      else this.#routes.learn(route.source, from, hops, nowMs);
    }
    this.#deliverLocally(message, hops, nowMs);
    if (route.destination === this.selfId) return;
    if (!this.#options.relay) {
      counters.increment('mesh.not_relayed');
      return;
    }
    if (route.ttlHops <= 1) {
      counters.increment('mesh.dropped_ttl');
      return;
    }
    const forwarded = { ...message, route: { ...route, ttlHops: route.ttlHops - 1 } };
    if (this.#dispatch(forwarded, from) > 0) counters.increment('mesh.forwarded');
  }

  /** Agents known beyond the direct links: from announcements and learned routes. */
  remoteAgents(): {
    id: string;
    name: string | undefined;
    hops: number | undefined;
    nextHop: string | undefined;
  }[] {
    const nowMs = this.#now();
    const ids = new Set([
      ...this.#topology.agents(nowMs).map((agent) => agent.id),
      ...this.#routes.list(nowMs).map((route) => route.destination),
    ]);
    ids.delete(this.selfId);
    for (const neighbour of this.#neighbours.keys()) ids.delete(neighbour);
    return [...ids].map((id) => {
      const route = this.#routes.get(id, nowMs);
      return { id, name: this.#topology.get(id, nowMs)?.name, hops: route?.hops, nextHop: route?.nextHop };
    });
  }

  /** The route table: destination, next hop, hops, age. */
  routes(): { destination: string; nextHop: string; hops: number; ageMs: number }[] {
    const nowMs = this.#now();
    return this.#routes
      .list(nowMs)
      .map((route) => ({ ...route, ageMs: nowMs - route.updatedAtMs }))
      .map(({ destination, nextHop, hops, ageMs }) => ({ destination, nextHop, hops, ageMs }));
  }

  /** New actions or sensors to announce (an app registered or left): announced soon, not at the next interval. */
  setCapabilities(capabilities: Capabilities): void {
    this.#capabilities = capabilities;
    this.#announceSoon();
  }

  /** Every agent heard announcing itself (neighbours too), with what it announced. */
  knownAgents(): KnownAgent[] {
    return this.#topology.agents(this.#now()).filter((agent) => agent.id !== this.selfId);
  }

  agent(id: string): KnownAgent | undefined {
    return this.#topology.get(id, this.#now());
  }

  /** A known agent by name; ambiguous or unknown names give undefined. */
  agentNamed(name: string): KnownAgent | undefined {
    const matches = this.#topology.agents(this.#now()).filter((agent) => agent.name === name);
    return matches.length === 1 ? matches[0] : undefined;
  }

  hasRoute(destination: string): boolean {
    return this.#neighbours.has(destination) || this.#routes.get(destination, this.#now()) !== undefined;
  }

  #deliverLocally(message: RoutedMessage, hops: number, nowMs: number): void {
    const destination = message.route?.destination;
    if (destination === undefined || message.route === undefined) return;
    const isForUs =
      destination === this.selfId || destination === BROADCAST_ID || this.#groupIds.has(destination);
    if (!isForUs) return;
    if (message.type === 'data') {
      if (!this.#recentlyDelivered.add(message.route.source, MessageType.data, message.id, nowMs)) return;
      this.emit('deliver', {
        source: message.route.source,
        destination,
        id: message.id,
        payload: message.payload,
        ackRequested: message.ackRequested,
        hops,
        flooded: message.flood === true,
        system: message.system === true,
      });
    } else if (message.type === 'ack' && destination === this.selfId) {
      this.emit('ack', message.route.source, message.id);
    }
  }

  /** Sends a routed message on to the right links; returns how many it went out on. */
  #dispatch(message: RoutedMessage, from: string | undefined): number {
    const route = message.route;
    if (route === undefined) return 0;
    let outgoing = message;
    let targets = this.#manyTargets(message);
    if (targets === undefined) {
      const nextHop = this.#nextHop(message, from);
      if (nextHop !== undefined) {
        targets = [nextHop];
      } else {
        // No usable route: flood, and say so, so that every hop floods and the answer comes back flooded.
        this.#options.counters.increment('mesh.flooded');
        if (outgoing.type !== 'announce' && outgoing.flood !== true) outgoing = { ...outgoing, flood: true };
        targets = this.#neighbours.keys();
      }
    }
    let sent = 0;
    for (const target of targets) {
      if (target === from || target === route.source) continue;
      const neighbour = this.#neighbours.get(target);
      if (neighbour === undefined) continue;
      try {
        if (neighbour.send(outgoing)) sent++;
      } catch (error) {
        if (!(error instanceof FrameTooLargeError)) throw error;
        this.#options.counters.increment('mesh.dropped_too_large');
      }
    }
    this.#options.counters.increment('mesh.transmissions', sent);
    return sent;
  }

  /** For announcements, broadcasts and groups: the source tree's next links (all links where unknown). */
  #manyTargets(message: RoutedMessage): Iterable<string> | undefined {
    const route = message.route;
    if (route === undefined) return undefined;
    const nowMs = this.#now();
    const isMany =
      message.type === 'announce' ||
      route.destination === BROADCAST_ID ||
      this.#groupIds.has(route.destination) ||
      this.#topology.isGroup(route.destination);
    if (!isMany) return undefined;
    return this.#topology.childrenFor(route.source, nowMs) ?? this.#neighbours.keys();
  }

  /** For unicast: the direct link or the learned next hop, unless the message floods or would bounce. */
  #nextHop(message: RoutedMessage, from: string | undefined): string | undefined {
    const destination = message.route?.destination;
    if (destination === undefined) return undefined;
    if (this.#neighbours.has(destination)) return destination;
    if (message.type !== 'announce' && message.flood === true) return undefined;
    const route = this.#routes.get(destination, this.#now());
    if (route === undefined || route.nextHop === from || !this.#neighbours.has(route.nextHop))
      return undefined;
    return route.nextHop;
  }

  #announceSoon(): void {
    if (this.#options.announceOnChange === false) return;
    clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => this.announceNow(), ANNOUNCE_DEBOUNCE_MS);
    this.#debounceTimer.unref();
  }

  /** Floods this agent's announcement now (the timer does it every announceIntervalMs). */
  announceNow(): void {
    const announcement: Announcement = {
      initialTtl: this.#options.ttl,
      name: this.#options.name,
      groups: [...this.#options.groups],
      neighbours: [...this.#neighbours.keys()],
      ...(this.#capabilities !== undefined && { capabilities: this.#capabilities }),
    };
    const id = this.nextId();
    this.#duplicates.add(this.selfId, MessageType.announce, id, this.#now());
    const message: RoutedMessage = {
      type: 'announce',
      id,
      relays: this.#options.relay,
      announcement,
      route: { ttlHops: this.#options.ttl, source: this.selfId, destination: BROADCAST_ID },
    };
    this.#dispatch(message, undefined);
  }
}
