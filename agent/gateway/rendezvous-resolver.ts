// The rendezvous resolver: agents of one site that cannot hear each other (different subnets, multicast
// blocked, addresses from DHCP) meet through the site's MQTT broker. Each leaves a retained record there,
// sealed under the mesh key and signed by its identity (PROTOCOL.md §19), with the endpoints where it accepts
// links; each reads the records of its mesh and reports their endpoints as candidates, so the agents link
// directly and the broker (or the bridge relaying through it) is only how they met.
//
// The record is refreshed every third of its TTL, withdrawn (an empty retained message) on a clean stop, and
// the broker withdraws it for us (our will) if we vanish. Records that are expired, older than one already
// seen from that agent, from a revoked identity, or that do not open or verify are counted and ignored.

import type { PeerCandidate, Resolver, ResolverEvents, ResolverHealth } from '../../transports/resolver.js';
import { Counters } from '../core/counters.js';
import { TypedEmitter } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import type { Identity } from '../identity/identity.js';
import { MAX_RENDEZVOUS_ENDPOINTS, type RendezvousClaims } from '../protocol/rendezvous.js';
import {
  openRendezvousRecord,
  type RendezvousKeys,
  rendezvousKeys,
  rendezvousSlot,
  sealRendezvousRecord,
} from '../security/rendezvous-seal.js';
import type { BridgedMessage, UpstreamBridge, UpstreamBridgeOptions } from './upstream-bridge.js';

const RENDEZVOUS_SOURCE = 'rendezvous';
/** A record issued this far in the future (by our clock) is not believed: clocks must roughly agree. */
const MAX_CLOCK_AHEAD_MS = 5 * 60_000;
const HEX32 = /^[0-9a-f]{32}$/;

/** How to reach the broker: what the upstream bridge takes, minus what the rendezvous decides itself. */
export type RendezvousConnection = Omit<
  UpstreamBridgeOptions,
  | 'out'
  | 'in'
  | 'remotePrefix'
  | 'originId'
  | 'will'
  | 'sessionExpirySeconds'
  | 'counters'
  | 'log'
  | 'maxQueued'
>;

export interface RendezvousOptions {
  connection: RendezvousConnection;
  /** Topic prefix of every record ("nearmesh/rendezvous/"), ending in "/". */
  prefix: string;
  identity: Identity;
  name: string;
  /** The accepted mesh keys, the current one first: records are left under the first, read under all. */
  meshKeys: () => readonly Uint8Array[];
  /** False while the agent has no mesh yet: nothing is left on the broker. */
  hasMesh: () => boolean;
  /** Where this agent accepts links, as peers on other subnets should dial it. */
  endpoints: () => string[];
  ttlS: number;
  isRevoked: (peerId: string) => boolean;
  /** Records held at once; more are counted and ignored. */
  maxRecords: number;
  /** Builds the broker connection (the upstream bridge, loaded only when a rendezvous is configured). */
  connect: (options: UpstreamBridgeOptions) => UpstreamBridge;
  counters: Counters;
  log: Logger;
  now?: () => number;
}

interface HeldRecord {
  peerId: string;
  name: string;
  endpoints: string[];
  issuedAtMs: number;
  expiresAtMs: number;
}

export class RendezvousResolver extends TypedEmitter<ResolverEvents> implements Resolver {
  readonly name = RENDEZVOUS_SOURCE;
  readonly maxCandidates: number;
  readonly #options: RendezvousOptions;
  readonly #now: () => number;
  /** Records by their topic below the prefix ("tag/slot"). */
  readonly #records = new Map<string, HeldRecord>();
  /**
   * The newest record seen from each agent, until it expires: an older one, or the same one again after its
   * agent withdrew it, is a replay. Pruned of expired entries at each sweep; bounded at 4 × maxRecords.
   */
  readonly #newest = new Map<string, { issuedAtMs: number; expiresAtMs: number }>();
  /** Records naming each address: one is lost only when no record names it any more. */
  readonly #addressUses = new Map<string, number>();
  #keyring: RendezvousKeys[] = [];
  /** Where our own record lives ("tag/slot"), while it is there. */
  #ownTopic: string | undefined;
  #bridge: UpstreamBridge | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #isRunning = false;

  constructor(options: RendezvousOptions) {
    super();
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.maxCandidates = options.maxRecords * MAX_RENDEZVOUS_ENDPOINTS;
  }

  async start(): Promise<void> {
    if (this.#isRunning) return;
    this.#isRunning = true;
    this.#connect();
    const periodMs = (this.#options.ttlS * 1000) / 3;
    this.#refreshTimer = setInterval(() => this.#publish(), periodMs);
    this.#refreshTimer.unref();
    this.#sweepTimer = setInterval(() => this.#sweep(), Math.min(periodMs, 10_000));
    this.#sweepTimer.unref();
  }

  async stop(): Promise<void> {
    if (!this.#isRunning) return;
    this.#isRunning = false;
    clearInterval(this.#refreshTimer);
    clearInterval(this.#sweepTimer);
    await this.#disconnect();
    this.#records.clear();
    this.#newest.clear();
    this.#addressUses.clear();
  }

  /** The mesh key changed (a rotation, or this device joined a mesh): move our record, read the new tag. */
  async rekey(): Promise<void> {
    if (!this.#isRunning) return;
    await this.#disconnect();
    if (this.#isRunning) this.#connect();
  }

  health(): ResolverHealth {
    const state = this.#bridge?.state();
    const records = `${this.#records.size} record${this.#records.size === 1 ? '' : 's'}`;
    if (state === undefined) return { state: 'stopped' };
    return state.connected
      ? {
          state: 'running',
          detail: `${state.url}: ${records}, ours ${this.#ownTopic === undefined ? 'not left' : 'left'}`,
        }
      : { state: 'connecting', detail: `${state.url} not reachable yet; ${records} held` };
  }

  #connect(): void {
    const options = this.#options;
    this.#keyring = options.meshKeys().map(rendezvousKeys);
    const current = this.#keyring[0];
    const ownSlot =
      current === undefined || !options.hasMesh()
        ? undefined
        : `${current.tagHex}/${rendezvousSlot(current, options.identity.publicKey)}`;
    const bridge = options.connect({
      ...options.connection,
      remotePrefix: options.prefix,
      in: this.#keyring.map((keys) => `${keys.tagHex}/+`),
      out: ownSlot === undefined ? [] : [ownSlot],
      originId: options.identity.peerId,
      // Records are retained: a fresh session each time gets them all again when it subscribes.
      sessionExpirySeconds: 0,
      maxQueued: 4,
      ...(ownSlot !== undefined && {
        will: { topic: ownSlot, payload: Buffer.alloc(0), qos: 1, retain: true },
      }),
      // Its own counters: the upstream bridge's (mqtt.upstream.*) stay about the bridge.
      counters: new Counters(),
      log: options.log.child({ component: 'rendezvous' }),
    });
    this.#ownTopic = ownSlot;
    let wasConnected = false;
    bridge.on('message', (message) => this.#received(message));
    bridge.on('state', (state) => {
      // Each (re)connect leaves the record again: the broker withdrew it (our will) if the connection broke.
      if (state.connected && !wasConnected) this.#publish();
      wasConnected = state.connected;
    });
    this.#bridge = bridge;
    bridge.start();
  }

  async #disconnect(): Promise<void> {
    const bridge = this.#bridge;
    this.#bridge = undefined;
    if (bridge === undefined) return;
    if (this.#ownTopic !== undefined)
      bridge.forward({ topic: this.#ownTopic, payload: Buffer.alloc(0), qos: 1, retain: true });
    this.#ownTopic = undefined;
    await bridge.stop();
  }

  #claims(): Omit<RendezvousClaims, 'publicKey'> {
    return {
      name: this.#options.name,
      endpoints: this.#options.endpoints().slice(0, MAX_RENDEZVOUS_ENDPOINTS),
      issuedAtMs: this.#now(),
      ttlS: this.#options.ttlS,
    };
  }

  /** Leaves (or refreshes) our record; nothing while we have no mesh or nowhere to be dialled. */
  #publish(): void {
    const bridge = this.#bridge;
    const current = this.#keyring[0];
    if (bridge === undefined || current === undefined || this.#ownTopic === undefined) return;
    const claims = this.#claims();
    if (claims.endpoints.length === 0) return;
    const { payload } = sealRendezvousRecord(current, this.#options.identity, claims);
    if (bridge.forward({ topic: this.#ownTopic, payload: Buffer.from(payload), qos: 1, retain: true }))
      this.#options.counters.increment('rendezvous.published');
  }

  #received(message: BridgedMessage): void {
    if (!this.#isRunning) return;
    const { counters } = this.#options;
    const [tagHex, slot, extra] = message.topic.split('/');
    if (
      tagHex === undefined ||
      slot === undefined ||
      extra !== undefined ||
      !HEX32.test(tagHex) ||
      !HEX32.test(slot)
    )
      return void counters.increment('rendezvous.ignored_bad');
    const topic = `${tagHex}/${slot}`;
    if (topic === this.#ownTopic) return;
    if (message.payload.length === 0) {
      this.#forget(topic);
      return;
    }
    const opened = openRendezvousRecord(this.#keyring, tagHex, slot, message.payload);
    if (!opened.ok) {
      counters.increment(opened.kind === 'foreign' ? 'rendezvous.ignored_foreign' : 'rendezvous.ignored_bad');
      if (opened.kind === 'bad')
        this.emit('warning', new Error(`a record at ${topic} ignored: ${opened.reason}`));
      return;
    }
    const { record, peerId } = opened;
    const nowMs = this.#now();
    const expiresAtMs = record.issuedAtMs + record.ttlS * 1000;
    if (peerId === this.#options.identity.peerId) return;
    if (this.#options.isRevoked(peerId)) return void counters.increment('rendezvous.ignored_revoked');
    if (expiresAtMs <= nowMs) return void counters.increment('rendezvous.ignored_expired');
    if (record.issuedAtMs > nowMs + MAX_CLOCK_AHEAD_MS)
      return void counters.increment('rendezvous.ignored_future');
    const previous = this.#records.get(topic);
    const newest = this.#newest.get(peerId);
    const isReplay =
      newest !== undefined &&
      (record.issuedAtMs < newest.issuedAtMs ||
        (record.issuedAtMs === newest.issuedAtMs && previous?.issuedAtMs !== record.issuedAtMs));
    if (isReplay) return void counters.increment('rendezvous.ignored_replayed');
    if (previous?.issuedAtMs === record.issuedAtMs) return; // the same record again (a reconnect)
    if (previous === undefined && this.#records.size >= this.#options.maxRecords)
      return void counters.increment('rendezvous.ignored_full');
    if (newest !== undefined || this.#newest.size < 4 * this.#options.maxRecords)
      this.#newest.set(peerId, { issuedAtMs: record.issuedAtMs, expiresAtMs });
    const held: HeldRecord = {
      peerId,
      name: record.name,
      endpoints: record.endpoints,
      issuedAtMs: record.issuedAtMs,
      expiresAtMs,
    };
    this.#records.set(topic, held);
    counters.increment('rendezvous.records_read');
    for (const address of held.endpoints) this.#use(address, held);
    if (previous !== undefined) for (const address of previous.endpoints) this.#release(address, previous);
  }

  /** Records past their TTL (their agent stopped refreshing without a goodbye the broker passed on). */
  #sweep(): void {
    const nowMs = this.#now();
    for (const [topic, held] of this.#records) if (held.expiresAtMs <= nowMs) this.#forget(topic);
    for (const [peerId, newest] of this.#newest) if (newest.expiresAtMs <= nowMs) this.#newest.delete(peerId);
  }

  #forget(topic: string): void {
    const held = this.#records.get(topic);
    if (held === undefined) return;
    this.#records.delete(topic);
    for (const address of held.endpoints) this.#release(address, held);
  }

  #use(address: string, held: HeldRecord): void {
    this.#addressUses.set(address, (this.#addressUses.get(address) ?? 0) + 1);
    this.emit('found', this.#candidate(address, held));
  }

  #release(address: string, held: HeldRecord): void {
    const uses = (this.#addressUses.get(address) ?? 1) - 1;
    if (uses > 0) {
      this.#addressUses.set(address, uses);
      return;
    }
    this.#addressUses.delete(address);
    this.emit('lost', this.#candidate(address, held));
  }

  #candidate(address: string, held: HeldRecord): PeerCandidate {
    return { medium: 'wifi', address, peerId: held.peerId, name: held.name, source: RENDEZVOUS_SOURCE };
  }
}
