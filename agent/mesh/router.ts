// The mesh layer: routed DATA, ACK and ANNOUNCE over whatever direct links the link manager holds.
// Every routed message is sealed by its origin and checked by whoever can (PROTOCOL.md §2.1); a message that
// fails is dropped and blamed on the neighbour that handed it over when that neighbour must have made it.
// Each (source, sequence number) is accepted once (§13.4). Unicast follows a shortest path over the links
// the signed announcements show (link state, §13.3), avoiding next hops that lost messages, and floods when
// no path is known; broadcasts and groups follow the source's shortest-path tree. Neighbours compare what they
// hold with a periodic SYNC and hand each other the announcements the other lacks (§13.2): announcements are
// flooded when something changes and renewed only hourly, so control traffic per agent does not grow with
// the mesh.

import { setBounded } from '../core/bounded-map.js';
import type { Counters } from '../core/counters.js';
import { FrameTooLargeError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import {
  type AgentAbout,
  type Announcement,
  announceMessage,
  type Capabilities,
  MAX_TTL_HOPS,
  MessageType,
  type RoutedMessage,
  type SyncMessage,
} from '../protocol/index.js';
import type { AuthFailure, OriginAuth, OriginVerdict } from '../security/origin-auth.js';
import { BROADCAST_ID, groupId } from './address.js';
import { DuplicateCache } from './duplicate-cache.js';
import { type Holdings, holdingsDigest } from './holdings.js';
import type { ReplayGuard } from './replay-guard.js';
import { RoutePenalties } from './route-penalties.js';
import type { SequenceCounter } from './sequence.js';
import { type KnownAgent, MAX_KNOWN_AGENTS, Topology } from './topology.js';

/** A direct link, as the router sees it. */
export interface MeshNeighbour {
  readonly peerId: string;
  /**
   * Sends one message on the link; false when it is closed, or when it is `relayed` (for others) and the
   * neighbour is too far behind to take it. May throw FrameTooLargeError.
   */
  send(message: RoutedMessage, relayed: boolean): boolean;
  /** Sends this agent's SYNC on the link; false when it is closed. */
  sendSync(message: SyncMessage): boolean;
}

/** A routed DATA for this agent: to it, to one of its groups, or to everyone. Its origin is verified. */
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
  /** A copy of a message already handed up: to be acknowledged again, not delivered again. */
  repeat: boolean;
}

export interface RouterEvents {
  deliver: (delivery: MeshDelivery) => void;
  /** A routed ACK for a message this agent sent; `routeLost`: the copy sent along the route never arrived. */
  ack: (source: string, id: number, routeLost: boolean) => void;
  /** A new verified ANNOUNCE, as it arrived from `neighbour`. */
  announcement: (source: string, announcement: Announcement, neighbour: string) => void;
  /** A direct neighbour's SYNC: the mesh key epoch and the revocation list's digest it holds. */
  'neighbour-sync': (neighbour: string, keyEpoch: number, revocationDigest: Uint8Array) => void;
  'auth-failure': (failure: AuthFailure) => void;
  /** A next hop lost messages for `destination` twice in a row and is avoided for a while. */
  'route-penalised': (destination: string, nextHop: string) => void;
}

/** What the router needs to seal, check and number routed messages. */
export interface RouterTrust {
  readonly origin: OriginAuth;
  readonly replay: ReplayGuard;
  readonly sequence: SequenceCounter;
  /** Revoked identities: nothing from or through them is accepted. */
  isRevoked(peerId: string): boolean;
  /** The mesh key epoch this agent holds, announced so that a neighbour behind it catches up. */
  keyEpoch(): number;
  /** The digest of this agent's revocation list, announced so that neighbours notice a difference. */
  revocationDigest(): Uint8Array;
}

export interface RouterOptions {
  name: string;
  groups: readonly string[];
  /** The actions and sensors this agent announces (coordination). */
  capabilities?: Capabilities;
  /** The board and software version this agent announces. */
  about?: AgentAbout;
  /** Hop budget of the messages this agent originates (1..15). */
  ttl: number;
  /** Forward other agents' messages (off for battery devices: they only send and receive). */
  relay: boolean;
  counters: Counters;
  trust: RouterTrust;
  announceIntervalMs?: number;
  syncIntervalMs?: number;
  duplicateWindowMs?: number;
  /**
   * Announce and SYNC soon after a link comes or goes (default true; simulations drive both themselves).
   */
  announceOnChange?: boolean;
  now?: () => number;
}

/**
 * An agent floods its announcement when its links (or what it announces) change, and hourly besides: a safety
 * net. What a neighbour missed comes from the SYNC exchange, not from the renewal.
 */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 3_600_000;
/** Each agent tells each neighbour what it holds this often (SYNC: one small frame per link). */
export const DEFAULT_SYNC_INTERVAL_MS = 30_000;
/**
 * After links come or go, neighbours compare what they hold this soon (once for a burst of changes): a flood
 * that crossed the mesh while agents' views of it differed can miss an agent, which then catches up here
 * rather than at the next period.
 */
const SYNC_AFTER_CHANGE_MS = 3_000;
/**
 * A copy of a message for this agent that arrives this long after the first is a retransmission (its
 * ACK was lost): it is handed up again so it can be acknowledged again. Copies of one flood come sooner.
 */
const REDELIVERY_AFTER_MS = 500;
/** Link changes are announced this soon, once for a burst of them. */
const ANNOUNCE_DEBOUNCE_MS = 300;

const NO_CAPABILITIES: Capabilities = { actions: [], sensors: [] };
/** The last bytes of a message's auth tell a genuine copy from a forged one with the same (source, id). */
const AUTH_TAIL_BYTES = 8;

/** The last AUTH_TAIL_BYTES of a message's auth as a short string key, one character per byte. */
function authTail(auth: Uint8Array): string {
  let tail = '';
  for (let i = Math.max(0, auth.length - AUTH_TAIL_BYTES); i < auth.length; i++) {
    tail += String.fromCharCode(auth[i] as number);
  }
  return tail;
}

export class Router extends TypedEmitter<RouterEvents> {
  readonly selfId: string;
  readonly #options: RouterOptions;
  readonly #trust: RouterTrust;
  readonly #neighbours = new Map<string, MeshNeighbour>();
  readonly #duplicates: DuplicateCache;
  /** Messages for this agent handed up recently (see REDELIVERY_AFTER_MS). */
  readonly #recentlyDelivered = new DuplicateCache({ windowMs: REDELIVERY_AFTER_MS });
  readonly #topology: Topology;
  readonly #penalties: RoutePenalties;
  readonly #groupIds: ReadonlySet<string>;
  readonly #now: () => number;
  /** Each agent's latest ANNOUNCE as it arrived here, to bring a newly linked neighbour up to date. */
  readonly #announcements = new Map<string, Extract<RoutedMessage, { type: 'announce' }>>();
  /** This agent's latest ANNOUNCE, as it went out: a neighbour that lacks it gets it again (see receiveSync). */
  #ownAnnouncement: Extract<RoutedMessage, { type: 'announce' }> | undefined;
  /**
   * Per neighbour, what the two should both hold, summed up (see #pairHoldings), for as long as the topology's
   * version (every announcement learnt or forgotten changes it) and this agent's own announcement stay the same.
   */
  readonly #pairHoldingsCache = new Map<string, { topology: number; own: number; holdings: Holdings }>();
  /**
   * Per neighbour, the pair of digests (ours, theirs) it was last brought up to date for: it is not sent
   * everything again while neither side's holdings changed (agents at the edge of a hop budget legitimately
   * hold different sets).
   */
  readonly #syncedFor = new Map<string, string>();
  #announceTimer: NodeJS.Timeout | undefined;
  #syncTimer: NodeJS.Timeout | undefined;
  #debounceTimer: NodeJS.Timeout | undefined;
  #syncDebounceTimer: NodeJS.Timeout | undefined;
  #capabilities: Capabilities;

  constructor(options: RouterOptions) {
    super();
    this.#capabilities = options.capabilities ?? NO_CAPABILITIES;
    if (!Number.isInteger(options.ttl) || options.ttl < 1 || options.ttl > MAX_TTL_HOPS) {
      throw new RangeError(`mesh ttl ${options.ttl} is not in 1..${MAX_TTL_HOPS}`);
    }
    this.#trust = options.trust;
    this.selfId = options.trust.origin.selfId;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#duplicates = new DuplicateCache(
      options.duplicateWindowMs === undefined ? {} : { windowMs: options.duplicateWindowMs },
    );
    this.#topology = new Topology(this.selfId);
    this.#topology.setOwn([], options.relay);
    this.#penalties = new RoutePenalties();
    this.#groupIds = new Set(options.groups.map(groupId));
  }

  /** Announces now and then periodically, and sends SYNCs periodically. */
  start(): void {
    this.announceNow();
    this.#announceTimer = setInterval(
      () => this.announceNow(),
      this.#options.announceIntervalMs ?? DEFAULT_ANNOUNCE_INTERVAL_MS,
    );
    this.#announceTimer.unref();
    this.#syncTimer = setInterval(
      () => this.syncNow(),
      this.#options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS,
    );
    this.#syncTimer.unref();
  }

  stop(): void {
    clearInterval(this.#announceTimer);
    clearInterval(this.#syncTimer);
    clearTimeout(this.#debounceTimer);
    clearTimeout(this.#syncDebounceTimer);
    this.#trust.replay.flush();
  }

  /** A fresh sequence number for a message this agent originates (one counter for all routed traffic). */
  nextId(): number {
    return this.#trust.sequence.next();
  }

  addNeighbour(neighbour: MeshNeighbour): void {
    this.#neighbours.set(neighbour.peerId, neighbour);
    this.#topology.setOwn(this.#neighbours.keys(), this.#options.relay);
    this.announceSoon();
    this.#syncSoon();
    this.#bringUpToDate(neighbour, false);
  }

  /**
   * A neighbour learns the agents this one knows now, not at their next announcement: their latest ANNOUNCEs
   * go to it as if forwarded, one hop further (a relay's only), and this agent's own when `withOwn` (a new
   * neighbour gets a fresh one soon anyway). Each still carries its origin's seal. The hop budget each goes
   * with is what a copy along a shortest path would have left here, less one, if the one held has less: a
   * first copy that came the long way round must not keep the agents at the edge of the budget from ever
   * learning the origin (ttl is not sealed; it only bounds how far a message travels).
   */
  #bringUpToDate(neighbour: MeshNeighbour, withOwn: boolean): void {
    if (withOwn && this.#ownAnnouncement !== undefined && neighbour.send(this.#ownAnnouncement, false)) {
      this.#options.counters.increment('mesh.announcements_synced');
    }
    if (!this.#options.relay) return;
    const nowMs = this.#now();
    const distances = this.#topology.distancesFrom(this.selfId, nowMs);
    for (const [source, announcement] of this.#announcements) {
      const known = this.#topology.get(source, nowMs);
      if (known === undefined || this.#trust.isRevoked(source)) {
        this.#announcements.delete(source);
        continue;
      }
      const alongShortestPath = known.initialTtl - (distances.get(source) ?? known.initialTtl);
      const ttlHops = Math.max(announcement.route.ttlHops - 1, alongShortestPath);
      if (source === neighbour.peerId || ttlHops < 1) continue;
      const forwarded = { ...announcement, route: { ...announcement.route, ttlHops } };
      if (neighbour.send(forwarded, true)) this.#options.counters.increment('mesh.announcements_synced');
    }
  }

  removeNeighbour(peerId: string): void {
    if (!this.#neighbours.delete(peerId)) return;
    this.#syncedFor.delete(peerId);
    this.#pairHoldingsCache.delete(peerId);
    this.#topology.setOwn(this.#neighbours.keys(), this.#options.relay);
    this.announceSoon();
    this.#syncSoon();
  }

  /** Forgets everything an agent announced (it was revoked): no route leads to or through it any more. */
  forgetAgent(peerId: string): void {
    this.#announcements.delete(peerId);
    this.#topology.forget(peerId);
  }

  /** Sends every neighbour this agent's SYNC now (the timer does it every syncIntervalMs). */
  syncNow(): void {
    if (this.#neighbours.size === 0) return;
    const keyEpoch = this.#trust.keyEpoch();
    const revocationDigest = this.#trust.revocationDigest();
    for (const neighbour of this.#neighbours.values()) {
      const { digest, count } = this.#pairHoldings(neighbour.peerId);
      const message: SyncMessage = { type: 'sync', digest, count, keyEpoch, revocationDigest };
      if (neighbour.sendSync(message)) this.#options.counters.increment('mesh.syncs_sent');
    }
  }

  /**
   * A neighbour's SYNC: when it holds other announcements than this agent, it is sent every one this agent
   * holds (what it has it drops unchecked), once for each pair of holdings; equal holdings cost nothing.
   */
  receiveSync(from: string, message: SyncMessage): void {
    const neighbour = this.#neighbours.get(from);
    if (neighbour === undefined) return;
    this.emit('neighbour-sync', from, message.keyEpoch, message.revocationDigest);
    const own = this.#pairHoldings(from);
    if (own.count === message.count && Buffer.from(own.digest).equals(message.digest)) {
      this.#syncedFor.delete(from);
      return;
    }
    const pair = `${Buffer.from(own.digest).toString('hex')}:${Buffer.from(message.digest).toString('hex')}`;
    if (this.#syncedFor.get(from) === pair) {
      this.#options.counters.increment('mesh.syncs_unchanged');
      return;
    }
    this.#syncedFor.set(from, pair);
    this.#options.counters.increment('mesh.syncs_differed');
    this.#bringUpToDate(neighbour, true);
  }

  /**
   * What this agent and `neighbour` should both hold, summed up: the latest ANNOUNCE of every agent one of the
   * two passes on to the other (it is that agent, or relays and is within the agent's hop budget less one,
   * by the links the announcements show), this agent's own included. Agents at the edge of a hop budget
   * hold different sets for good; this is the part on which two neighbours agree once up to date.
   */
  #pairHoldings(neighbour: string): Holdings {
    const own = this.#ownAnnouncement?.id ?? -1;
    const cached = this.#pairHoldingsCache.get(neighbour);
    if (cached?.topology === this.#topology.version && cached.own === own) return cached.holdings;
    const nowMs = this.#now();
    const fromSelf = this.#topology.distancesFrom(this.selfId, nowMs);
    const fromNeighbour = this.#topology.distancesFrom(neighbour, nowMs);
    const neighbourRelays = this.#topology.get(neighbour, nowMs)?.relays ?? false;
    // One of the two holds it with hops left and passes it on: it relays, or it is the origin.
    const passable = (source: string, initialTtl: number): boolean =>
      ((fromSelf.get(source) ?? initialTtl) < initialTtl &&
        (this.#options.relay || source === this.selfId)) ||
      ((fromNeighbour.get(source) ?? initialTtl) < initialTtl && (neighbourRelays || source === neighbour));
    const latest: [string, number][] = own < 0 ? [] : [[this.selfId, own]];
    for (const [source, announcement] of this.#announcements) {
      const known = this.#topology.get(source, nowMs);
      if (known === undefined || this.#trust.isRevoked(source) || !passable(source, known.initialTtl))
        continue;
      latest.push([source, announcement.id]);
    }
    const holdings = holdingsDigest(latest);
    const topology = this.#topology.version;
    setBounded(this.#pairHoldingsCache, neighbour, { topology, own, holdings }, MAX_KNOWN_AGENTS);
    return holdings;
  }

  /**
   * Originates a routed DATA. Unicast goes along the shortest known path, or floods when there is none or
   * `flood` is set (retransmissions do, to get around a link or relay that failed). `signed` seals it with
   * the signature form, which any destination can check (retransmissions use it, in case the destination
   * does not know this agent's key). Returns the links it went out on and, for a unicast that followed a
   * route instead of flooding, the neighbour it went to.
   */
  sendData(
    destination: string,
    payload: Uint8Array,
    options: { id: number; ackRequested: boolean; flood?: boolean; system?: boolean; signed?: boolean },
  ): { links: number; nextHop: string | undefined } {
    const unsealed: RoutedMessage = {
      type: 'data',
      id: options.id,
      ackRequested: options.ackRequested,
      payload,
      route: { ttlHops: this.#options.ttl, source: this.selfId, destination },
      ...(options.flood === true && { flood: true }),
      ...(options.system === true && { system: true }),
    };
    const isForMany = this.#isForMany(unsealed);
    const signatureForm = isForMany || options.signed === true;
    const message = { ...unsealed, auth: this.#trust.origin.seal(unsealed, signatureForm) };
    const nextHop = isForMany ? undefined : this.#nextHop(message, undefined);
    return { links: this.#dispatch(message, undefined, isForMany, nextHop), nextHop };
  }

  /**
   * Acknowledges a routed DATA back to its source; flooded when the DATA was. `routeLost`: the first copy that
   * arrived was a flooded retransmission (the one sent along the route was lost on the way).
   */
  sendAck(destination: string, id: number, options: { flood?: boolean; routeLost?: boolean } = {}): number {
    const unsealed: RoutedMessage = {
      type: 'ack',
      id,
      route: { ttlHops: this.#options.ttl, source: this.selfId, destination },
      ...(options.flood === true && { flood: true }),
      ...(options.routeLost === true && { routeLost: true }),
    };
    return this.#dispatch({ ...unsealed, auth: this.#trust.origin.seal(unsealed, false) }, undefined);
  }

  /** A routed message that arrived on the link to `from`. */
  receive(from: string, message: RoutedMessage): void {
    const { counters } = this.#options;
    const { route, auth } = message;
    if (route === undefined || auth === undefined) return;
    if (route.source === this.selfId) {
      counters.increment('mesh.dropped_own'); // our own flood, back around a loop
      return;
    }
    if (this.#trust.isRevoked(route.source) || this.#trust.isRevoked(from)) {
      counters.increment('auth.dropped_revoked');
      return;
    }
    const nowMs = this.#now();
    const hops = this.#hopsTravelled(message, nowMs);
    const [typeCode, tail] = [MessageType[message.type], authTail(auth)];
    if (!this.#duplicates.add(route.source, typeCode, message.id, nowMs, tail, route.ttlHops)) {
      if (this.#duplicates.hasMoreHops(route.source, typeCode, message.id, tail, route.ttlHops)) {
        this.#forwardFurther(message, from);
        return;
      }
      counters.increment('mesh.dropped_duplicate');
      // A retransmission for us after its ACK was lost: hand it up again to be acknowledged, not delivered.
      if (route.destination === this.selfId) this.#deliverLocally(message, hops, nowMs, true);
      return;
    }
    // The announcement held from its source, handed over again (a neighbour catching this agent up sends all
    // it holds): dropped before its signature is checked. Any other copy with that number is a forgery. (An
    // older one is still checked: a forgery is blamed on the neighbour that made it.)
    if (message.type === 'announce' && this.#isHeld(message, nowMs)) {
      counters.increment('mesh.dropped_duplicate');
      return;
    }
    // Neither for this agent nor to be forwarded: dropped before its origin is checked (a signature costs
    // far more than the counter). An ANNOUNCE is for everyone: it is always checked and learnt.
    if (message.type !== 'announce' && !this.#isForUs(route.destination)) {
      if (!this.#options.relay) {
        counters.increment('mesh.not_relayed');
        return;
      }
      if (route.ttlHops <= 1) {
        counters.increment('mesh.dropped_ttl');
        return;
      }
    }
    const isForMany = this.#isForMany(message);
    const verdict = this.#checkOrigin(message, from, isForMany);
    if (verdict === undefined) return;
    // Windows only hold what this agent checked itself; an ACK's id is its DATA's, not the acker's number.
    if (verdict === 'ok' && message.type !== 'ack' && (isForMany || route.destination === this.selfId)) {
      const replay = this.#trust.replay.accept(route.source, message.id);
      if (replay !== 'fresh') {
        // The announcement held from its source, come again with more hops left (its first copy came the long
        // way round, or from a neighbour's store): it goes on, as within the duplicate window.
        if (replay === 'repeat' && this.#isHeldWithFewerHops(message)) {
          this.#sendOnWithMoreHops(message, from, isForMany);
          return;
        }
        counters.increment(replay === 'stale' ? 'auth.dropped_stale' : 'auth.dropped_repeat');
        if (route.destination === this.selfId && replay === 'repeat') {
          this.#deliverLocally(message, hops, nowMs, true);
        }
        // After a restart the replay marks remember what the topology forgot: an agent's latest ANNOUNCE,
        // handed over again by a neighbour, still tells where it is (its own signed words), but it is
        // neither forwarded nor delivered again.
        if (message.type === 'announce' && this.#topology.get(route.source, nowMs) === undefined) {
          this.#learn(message, from, nowMs);
        }
        return;
      }
    }
    if (message.type === 'announce') {
      // The replay window takes numbers out of order; an announcement is only news if it is the latest.
      if (this.#isOvertaken(message, nowMs)) {
        counters.increment('mesh.announcements_overtaken');
        return;
      }
      this.#learn(message, from, nowMs);
    }
    this.#deliverLocally(message, hops, nowMs, false);
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
    if (this.#dispatch(forwarded, from, isForMany) > 0) counters.increment('mesh.forwarded');
  }

  /**
   * A copy of a message already handled that came with more hops left than any before it (the first came the
   * long way round): it goes on, checked again, so that it reaches where the first one's hop budget did not.
   * Not delivered or learnt again: that happened with the first copy.
   */
  #forwardFurther(message: RoutedMessage, from: string): void {
    const isForMany = this.#isForMany(message);
    if (this.#checkOrigin(message, from, isForMany) === undefined) return;
    this.#sendOnWithMoreHops(message, from, isForMany);
  }

  /** Whether the announcement held from `message`'s source has its number and at least its hops left. */
  #isHeld(message: Extract<RoutedMessage, { type: 'announce' }>, nowMs: number): boolean {
    const held = this.#announcements.get(message.route.source);
    return (
      held?.id === message.id &&
      held.route.ttlHops >= message.route.ttlHops &&
      this.#topology.get(message.route.source, nowMs) !== undefined
    );
  }

  /** Whether `message` is the announcement held from its source, with more hops left than the held copy. */
  #isHeldWithFewerHops(message: RoutedMessage): boolean {
    if (message.type !== 'announce') return false;
    const held = this.#announcements.get(message.route.source);
    return held?.id === message.id && held.route.ttlHops < message.route.ttlHops;
  }

  /**
   * A copy handled once already, its origin checked, with more hops left than before: forwarded (not delivered
   * or learnt again), and held instead of the earlier copy if it is an announcement, so that new neighbours get
   * it with its larger budget too.
   */
  #sendOnWithMoreHops(message: RoutedMessage, from: string, isForMany: boolean): void {
    const route = message.route;
    if (route === undefined || route.destination === this.selfId || !this.#options.relay) return;
    if (message.type === 'announce' && this.#announcements.get(route.source)?.id === message.id)
      this.#announcements.set(route.source, message);
    if (route.ttlHops <= 1) return;
    const forwarded = { ...message, route: { ...route, ttlHops: route.ttlHops - 1 } };
    if (this.#dispatch(forwarded, from, isForMany) > 0)
      this.#options.counters.increment('mesh.forwarded_more_hops');
  }

  /** The origin's verdict when it may go on ('ok', or a tag only its destination can check); else refused. */
  #checkOrigin(message: RoutedMessage, from: string, isForMany: boolean): 'ok' | 'unverifiable' | undefined {
    const verdict = this.#trust.origin.verify(message, isForMany);
    if (verdict === 'ok' || verdict === 'unverifiable') return verdict;
    this.#refuse(from, message.route?.source ?? from, verdict);
    return undefined;
  }

  #refuse(from: string, source: string, reason: Exclude<OriginVerdict, 'ok' | 'unverifiable'>): void {
    this.#options.counters.increment(`auth.dropped_${reason.replaceAll('-', '_')}`);
    // An origin whose key this agent does not know yet proves nothing false: no one is blamed for it.
    if (reason === 'unknown-origin') return;
    const attributable = reason === 'bad-signature' || (reason === 'bad-tag' && source === from);
    this.emit('auth-failure', { neighbour: from, source, reason, attributable });
  }

  /**
   * An ANNOUNCE older than the one held from its source (a copy that took a slower path, or one handed over
   * from a neighbour's store after a newer one came by flood): learning it would undo what the newer said.
   */
  #isOvertaken(message: Extract<RoutedMessage, { type: 'announce' }>, nowMs: number): boolean {
    const held = this.#announcements.get(message.route.source);
    return (
      held !== undefined &&
      held.id > message.id &&
      this.#topology.get(message.route.source, nowMs) !== undefined
    );
  }

  /** A verified ANNOUNCE: the topology (hence routes) and the latest copy to pass on to new neighbours. */
  #learn(message: Extract<RoutedMessage, { type: 'announce' }>, from: string, nowMs: number): void {
    const source = message.route.source;
    this.#topology.update(source, message.announcement, message.relays, nowMs);
    setBounded(this.#announcements, source, message, MAX_KNOWN_AGENTS);
    this.emit('announcement', source, message.announcement, from);
  }

  /** Hops a message travelled, from the source's announced hop budget (informational: ttl is not sealed). */
  #hopsTravelled(message: RoutedMessage, nowMs: number): number {
    const route = message.route;
    if (route === undefined) return 0;
    const initialTtl =
      message.type === 'announce'
        ? message.announcement.initialTtl
        : (this.#topology.get(route.source, nowMs)?.initialTtl ?? this.#options.ttl);
    return Math.max(1, initialTtl - route.ttlHops + 1);
  }

  /**
   * How a reliable send to `destination` through `nextHop` went: the copy sent along the route arrived, or it
   * was lost and only a flooded retransmission got through (the destination says so in its ACK). A next hop
   * that lost two in a row is avoided for a while, as long as another path exists: a relay that swallows
   * traffic costs latency, not delivery, and only until another path is used.
   */
  routeOutcome(destination: string, nextHop: string, arrivedAlongRoute: boolean): void {
    if (arrivedAlongRoute) {
      this.#penalties.succeeded(destination, nextHop);
      return;
    }
    const nowMs = this.#now();
    const avoided = new Set([...(this.#penalties.avoided(destination, nowMs) ?? []), nextHop]);
    if (this.#topology.routeTo(destination, nowMs, avoided) === undefined) {
      // The last path there: avoiding it would leave only floods, which cross it anyway.
      this.#penalties.succeeded(destination, nextHop);
      return;
    }
    if (this.#penalties.failed(destination, nextHop, nowMs)) {
      this.#options.counters.increment('mesh.routes_penalised');
      this.emit('route-penalised', destination, nextHop);
    }
  }

  /** The neighbour a unicast to `destination` goes to now, if it does not flood. */
  nextHopTo(destination: string): string | undefined {
    return this.#nextHopTo(destination, false, undefined);
  }

  /** Agents known beyond the direct links, from announcements, with their routes. */
  remoteAgents(): {
    id: string;
    name: string | undefined;
    hops: number | undefined;
    nextHop: string | undefined;
  }[] {
    const nowMs = this.#now();
    return this.#topology
      .agents(nowMs)
      .filter((agent) => agent.id !== this.selfId && !this.#neighbours.has(agent.id))
      .map((agent) => {
        const route = this.#route(agent.id, nowMs);
        return { id: agent.id, name: agent.name, hops: route?.hops, nextHop: route?.nextHop };
      });
  }

  /** The routes beyond the direct links: destination, next hop, hops, age of what shows the path. */
  routes(): { destination: string; nextHop: string; hops: number; ageMs: number }[] {
    const nowMs = this.#now();
    return this.remoteAgents().flatMap((agent) => {
      if (agent.nextHop === undefined || agent.hops === undefined) return [];
      const heardAtMs = this.#topology.get(agent.id, nowMs)?.heardAtMs ?? nowMs;
      return [{ destination: agent.id, nextHop: agent.nextHop, hops: agent.hops, ageMs: nowMs - heardAtMs }];
    });
  }

  /** New actions or sensors to announce (an app registered or left): announced soon, not at the next interval. */
  setCapabilities(capabilities: Capabilities): void {
    this.#capabilities = capabilities;
    this.announceSoon();
  }

  /** Every agent heard announcing itself (neighbours too), with what it announced. */
  knownAgents(): KnownAgent[] {
    return this.#topology.agents(this.#now()).filter((agent) => agent.id !== this.selfId);
  }

  agent(id: string): KnownAgent | undefined {
    return this.#topology.get(id, this.#now());
  }

  hasRoute(destination: string): boolean {
    return this.#neighbours.has(destination) || this.#route(destination, this.#now()) !== undefined;
  }

  #route(destination: string, nowMs: number) {
    return this.#topology.routeTo(destination, nowMs, this.#penalties.avoided(destination, nowMs));
  }

  #deliverLocally(message: RoutedMessage, hops: number, nowMs: number, repeat: boolean): void {
    const route = message.route;
    if (route === undefined) return;
    const destination = route.destination;
    if (!this.#isForUs(destination)) return;
    if (message.type === 'data') {
      if (!this.#recentlyDelivered.add(route.source, MessageType.data, message.id, nowMs)) return;
      this.emit('deliver', {
        source: route.source,
        destination,
        id: message.id,
        payload: message.payload,
        ackRequested: message.ackRequested,
        hops,
        flooded: message.flood === true,
        system: message.system === true,
        repeat,
      });
    } else if (message.type === 'ack' && destination === this.selfId && !repeat) {
      this.emit('ack', route.source, message.id, message.routeLost === true);
    }
  }

  /** To this agent, one of its groups or everyone. */
  #isForUs(destination: string): boolean {
    return destination === this.selfId || destination === BROADCAST_ID || this.#groupIds.has(destination);
  }

  /**
   * Sends a routed message on to the right links; returns how many it went out on. `nextHop`: where a
   * unicast goes (see #nextHop), when the caller already knows.
   */
  #dispatch(
    message: RoutedMessage,
    from: string | undefined,
    isForMany = this.#isForMany(message),
    nextHop = isForMany ? undefined : this.#nextHop(message, from),
  ): number {
    const route = message.route;
    if (route === undefined) return 0;
    let outgoing = message;
    let targets: Iterable<string>;
    if (isForMany) {
      // The source tree's next links (all links where the tree is unknown).
      targets = this.#topology.childrenFor(route.source, this.#now()) ?? this.#neighbours.keys();
    } else if (nextHop !== undefined) {
      targets = [nextHop];
    } else {
      // No usable route: flood, and say so, so that every hop floods and the answer comes back flooded.
      this.#options.counters.increment('mesh.flooded');
      if (outgoing.type !== 'announce' && outgoing.flood !== true) outgoing = { ...outgoing, flood: true };
      targets = this.#neighbours.keys();
    }
    let sent = 0;
    for (const target of targets) {
      if (target === from || target === route.source) continue;
      const neighbour = this.#neighbours.get(target);
      if (neighbour === undefined) continue;
      try {
        if (neighbour.send(outgoing, from !== undefined)) sent++;
      } catch (error) {
        if (!(error instanceof FrameTooLargeError)) throw error;
        this.#options.counters.increment('mesh.dropped_too_large');
      }
    }
    this.#options.counters.increment('mesh.transmissions', sent);
    return sent;
  }

  #isForMany(message: RoutedMessage): boolean {
    const destination = message.route?.destination;
    return (
      message.type === 'announce' ||
      destination === BROADCAST_ID ||
      (destination !== undefined && (this.#groupIds.has(destination) || this.#topology.isGroup(destination)))
    );
  }

  /** Where a unicast goes next (see #nextHopTo), undefined when it floods. */
  #nextHop(message: RoutedMessage, from: string | undefined): string | undefined {
    const destination = message.route?.destination;
    if (destination === undefined) return undefined;
    return this.#nextHopTo(destination, message.type !== 'announce' && message.flood === true, from);
  }

  /**
   * For unicast: the direct link or the first hop of the shortest path, unless it floods or would bounce
   * back to `from`, the neighbour that handed it over (nextHopTo and every dispatch ask here).
   */
  #nextHopTo(destination: string, flood: boolean, from: string | undefined): string | undefined {
    if (this.#neighbours.has(destination)) return destination;
    if (flood) return undefined;
    const route = this.#route(destination, this.#now());
    if (route === undefined || route.nextHop === from || !this.#neighbours.has(route.nextHop))
      return undefined;
    return route.nextHop;
  }

  /** Announces soon (once for a burst of changes): the links, capabilities, key or revocations changed. */
  announceSoon(): void {
    if (this.#options.announceOnChange === false) return;
    clearTimeout(this.#debounceTimer);
    this.#debounceTimer = setTimeout(() => this.announceNow(), ANNOUNCE_DEBOUNCE_MS);
    this.#debounceTimer.unref();
  }

  /** SYNCs soon (once for a burst of link changes): see SYNC_AFTER_CHANGE_MS. */
  #syncSoon(): void {
    if (this.#options.announceOnChange === false) return;
    clearTimeout(this.#syncDebounceTimer);
    this.#syncDebounceTimer = setTimeout(() => this.syncNow(), SYNC_AFTER_CHANGE_MS);
    this.#syncDebounceTimer.unref();
  }

  /** Floods this agent's announcement now (the timer does it every announceIntervalMs). */
  announceNow(): void {
    const announcement: Announcement = {
      initialTtl: this.#options.ttl,
      name: this.#options.name,
      groups: [...this.#options.groups],
      neighbours: [...this.#neighbours.keys()],
      capabilities: this.#capabilities,
      keyEpoch: this.#trust.keyEpoch(),
      revocationDigest: this.#trust.revocationDigest(),
      about: this.#options.about,
    };
    const unsealed = announceMessage({
      id: this.nextId(),
      relays: this.#options.relay,
      announcement,
      route: { ttlHops: this.#options.ttl, source: this.selfId, destination: BROADCAST_ID },
      auth: new Uint8Array(0),
    });
    const sealed = { ...unsealed, auth: this.#trust.origin.seal(unsealed, true) };
    this.#ownAnnouncement = sealed;
    this.#dispatch(sealed, undefined);
  }
}
