// Turns transports and resolvers into authenticated peer connections: dials what resolvers find
// (with backoff), accepts inbound links, keeps at most one connection per peer and medium (traffic on
// the best one, the others on standby), and delivers acked messages.
import { randomInt } from 'node:crypto';
import { OncePerInterval } from '../../transports/once-per-interval.js';
import type { PeerCandidate, Resolver, ResolverEvents } from '../../transports/resolver.js';
import type { FrameLink, Medium, Transport } from '../../transports/transport.js';
import { Backoff } from '../core/backoff.js';
import type { Counters } from '../core/counters.js';
import { FrameTooLargeError, PeerUnreachableError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import { DEFAULT_ACK_TIMEOUT_MS, PendingAcks } from '../core/pending-acks.js';
import { RecentIds } from '../core/recent-ids.js';
import type { Identity } from '../identity/identity.js';
import { CloseCode, type Message, type RoutedMessage, type SyncMessage } from '../protocol/index.js';
import { MAX_ENDPOINTS } from '../protocol/messages.js';
import type { SecureLink } from '../security/secure-channel.js';
import { HandoverOrder } from './handover-order.js';
import { type AdmissionOptions, LinkAdmission } from './link-admission.js';
import {
  DEFAULT_KEEPALIVE,
  type FrameTap,
  type KeepaliveOptions,
  LAN_KEEPALIVE,
  PeerConnection,
  WIFI_KEEPALIVE,
} from './peer-connection.js';
import { bestConnection, PeerDirectory, type PeerInfo, type PeerRecord } from './peer-directory.js';
import { checkCandidate, ResolverBook, type ResolverInfo } from './resolver-book.js';

/** The link manager's own resolver: the Wi-Fi endpoints a peer linked over another medium told us. */
const ENDPOINTS_SOURCE = 'endpoints';

/** Room for the envelope and the cipher tag inside a link frame. */
const FRAME_OVERHEAD_BYTES = 64;

export interface ReceivedMessage {
  from: string;
  fromName: string;
  payload: Uint8Array;
  receivedAtMs: number;
}

export interface SendOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** For the peer agent itself (coordination), not for its apps: delivered as a 'system' event. */
  system?: boolean;
}

/** One message sent or received on a direct link, as `trace` sees it (emitted only while a tracer is attached). */
export interface LinkFrame {
  /** The peer at the other end of the link. */
  peer: string;
  peerName: string;
  medium: Medium;
  direction: 'in' | 'out';
  atMs: number;
  /** The decoded message. A DATA payload may be a view of a buffer reused later: read it in the listener only. */
  message: Message;
}

export interface LinkManagerEvents {
  /** A message for this agent's apps. */
  message: (message: ReceivedMessage) => void;
  /** A message for this agent itself (coordination). */
  system: (message: ReceivedMessage) => void;
  'peer-up': (peer: PeerInfo) => void;
  'peer-down': (peer: PeerInfo) => void;
  /** Every message on every direct link, while a tracer is attached (traceFrames); never otherwise. */
  frame: (frame: LinkFrame) => void;
  /** A routed message (the mesh layer's) handed over by a direct neighbour. */
  routed: (neighbour: string, message: RoutedMessage) => void;
  /** A direct neighbour's summary of what it holds (the mesh layer's). */
  sync: (neighbour: string, message: SyncMessage) => void;
}

export interface LinkManagerOptions extends AdmissionOptions {
  identity: Identity;
  name: string;
  /**
   * The mesh keys a handshake may use: the current one first, then older ones still accepted during a key
   * rotation. Dials use the first, and the next one when a peer refuses it.
   */
  meshKeys: () => readonly Uint8Array[];
  /**
   * Told of every completed handshake before the link is used; a reason refuses the link (a revoked or
   * shunned identity, an old key from a stranger).
   */
  onAuthenticated?: (link: SecureLink, usedRetiredKey: boolean) => string | undefined;
  transports: Transport[];
  resolvers: Resolver[];
  log: Logger;
  counters: Counters;
  keepalive?: KeepaliveOptions;
  redial?: { initialMs: number; maxMs: number };
  /** The last RSSI heard from a peer (BLE advertisements), for the peer table. */
  rssiOf?: (peerId: string) => number | undefined;
  /**
   * Where this agent accepts Wi-Fi/LAN links ("host:port"): told to peers linked over another medium only,
   * so a pair that met over BLE can add a Wi-Fi link without mDNS or static peers.
   */
  localEndpoints?: () => string[];
  /**
   * False while the agent holds no mesh key yet (it waits to be invited): candidates are remembered but not
   * dialled, since no handshake could succeed. redialAll() once it may.
   */
  mayDial?: () => boolean;
}

interface DialTarget {
  readonly address: string;
  readonly transport: Transport;
  readonly sources: Set<string>;
  peerId: string | undefined;
  readonly backoff: Backoff;
  timer: NodeJS.Timeout | undefined;
  isDialling: boolean;
  /** The address turned out to be this agent itself. */
  isSelf: boolean;
  /** Which of the accepted mesh keys the next dial uses: the next one after a peer refused one. */
  keyIndex: number;
}

/** A message sent and not yet acknowledged: sent again on the peer's next link until it is. */
interface PendingSend {
  readonly payload: Uint8Array;
  readonly system: boolean;
}

interface PeerState {
  readonly pending: PendingAcks<PendingSend>;
  readonly delivered: RecentIds;
  /** Delivery in order across a move of the peer's traffic from one link to another. */
  readonly order: HandoverOrder<PeerConnection, { message: ReceivedMessage; system: boolean }>;
  nextMessageId: number;
}

export class LinkManager extends TypedEmitter<LinkManagerEvents> {
  readonly directory = new PeerDirectory();
  readonly #targets = new Map<string, DialTarget>();
  readonly #peerState = new Map<string, PeerState>();
  readonly #admission: LinkAdmission;
  readonly #resolverBook = new ResolverBook();
  readonly #resolverListeners = new Map<Resolver, ResolverEvents>();
  /** A resolver that keeps reporting bad candidates is said once a minute, counted always. */
  readonly #candidateWarnings = new OncePerInterval(60_000, 64);
  readonly #log: Logger;
  #isRunning = false;
  /** Shared by every connection: frames are reported only while `tracers` is above 0. */
  readonly #tap: FrameTap & { tracers: number } = {
    tracers: 0,
    frame: (connection, direction, message) =>
      this.emit('frame', {
        peer: connection.peerId,
        peerName: connection.link.peerName,
        medium: connection.link.medium,
        direction,
        atMs: Date.now(),
        message,
      }),
  };

  constructor(private readonly options: LinkManagerOptions) {
    super();
    this.#log = options.log;
    this.#resolverBook.add({ name: ENDPOINTS_SOURCE });
    this.#admission = new LinkAdmission({
      ...options,
      isKnownSource: (source) => this.#isKnownSource(source),
    });
  }

  get peerId(): string {
    return this.options.identity.peerId;
  }

  async start(): Promise<void> {
    this.#isRunning = true;
    this.#resolverBook.started(ENDPOINTS_SOURCE);
    for (const transport of this.options.transports) {
      transport.on('link', (link) => void this.#accept(link));
      transport.on('warning', (error) =>
        this.#log.warn({ err: error, medium: transport.medium }, 'transport warning'),
      );
      await transport.start();
    }
    for (const resolver of this.options.resolvers) {
      this.#resolverBook.add(resolver);
      await this.#startResolver(resolver);
    }
  }

  async stop(): Promise<void> {
    // First no new links: a peer dialling now is refused by the medium. Accepted and then closed unanswered,
    // it would count a refused mesh key and try its next one.
    await Promise.all(this.options.transports.map((transport) => transport.stopAccepting().catch(() => {})));
    this.#isRunning = false;
    for (const target of this.#targets.values()) clearTimeout(target.timer);
    for (const resolver of this.options.resolvers) await this.#stopResolver(resolver);
    this.#resolverBook.stopped(ENDPOINTS_SOURCE);
    this.#admission.closeAll();
    const closing = this.directory.records().flatMap((record) =>
      [...record.connections.values()].flatMap((connection) => {
        if (!connection.isOpen) return [];
        const closed = new Promise<void>((resolve) => connection.once('close', () => resolve()));
        connection.close(CloseCode.shutdown, 'agent stopping');
        return [closed];
      }),
    );
    await Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    for (const state of this.#peerState.values())
      state.pending.failAll(() => new PeerUnreachableError('-', 'agent stopping'));
    for (const transport of this.options.transports) await transport.stop().catch(() => {});
  }

  /**
   * Adds a resolver once the agent runs (mDNS must know the port the listener actually got), holding at most
   * its maxCandidates. Throws ResolverError for a malformed or taken name.
   */
  async addResolver(resolver: Resolver): Promise<void> {
    this.#resolverBook.add(resolver);
    this.options.resolvers.push(resolver);
    await this.#startResolver(resolver);
  }

  /** Each resolver, its state and what it found, for `nearmesh resolvers`. */
  resolvers(): ResolverInfo[] {
    return this.#resolverBook.list();
  }

  /**
   * A resolver that cannot start is reported (log, counter, `nearmesh resolvers`), not fatal: the agent still
   * serves its own device and links through the others.
   */
  async #startResolver(resolver: Resolver): Promise<void> {
    const { name } = resolver;
    const listeners: ResolverEvents = {
      found: (candidate) => this.#found(name, candidate),
      lost: (candidate) => this.#lost(name, candidate),
      // The message says it all; a stack would only point into the resolver's reporting code.
      warning: (error) => this.#log.warn({ resolver: name }, `resolver ${name}: ${error.message}`),
    };
    this.#resolverListeners.set(resolver, listeners);
    resolver.on('found', listeners.found);
    resolver.on('lost', listeners.lost);
    resolver.on('warning', listeners.warning);
    try {
      await resolver.start();
      this.#resolverBook.started(name);
    } catch (error) {
      this.#resolverBook.failed(name, error);
      this.counters.increment('resolvers.start_failures');
      this.#log.error({ err: error, resolver: name }, `resolver ${name} did not start; the others go on`);
    }
  }

  async #stopResolver(resolver: Resolver): Promise<void> {
    await resolver
      .stop()
      .catch((error: unknown) =>
        this.#log.warn({ err: error, resolver: resolver.name }, `resolver ${resolver.name}: stop failed`),
      );
    const listeners = this.#resolverListeners.get(resolver);
    if (listeners !== undefined) {
      resolver.off('found', listeners.found);
      resolver.off('lost', listeners.lost);
      resolver.off('warning', listeners.warning);
      this.#resolverListeners.delete(resolver);
    }
    this.#resolverBook.stopped(resolver.name);
  }

  peers(): PeerInfo[] {
    return this.directory.list(this.options.rssiOf);
  }

  /**
   * Attaches a tracer: every message sent or received on a direct link reaches `listener` as a 'frame'
   * event (synchronously) until the returned function detaches it. With no tracer attached the links
   * build nothing for tracing.
   */
  traceFrames(listener: (frame: LinkFrame) => void): () => void {
    this.#tap.tracers++;
    this.on('frame', listener);
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      this.#tap.tracers--;
      this.off('frame', listener);
    };
  }

  /** Sends `payload` to a peer (id or unique name); resolves once the peer acknowledged it. */
  send(reference: string, payload: Uint8Array, options: SendOptions = {}): Promise<{ peer: string }> {
    const record = this.directory.resolve(reference);
    if (record === 'ambiguous') {
      return Promise.reject(
        new PeerUnreachableError(reference, 'several peers have that name; use the peer id'),
      );
    }
    if (record === undefined) return Promise.reject(new PeerUnreachableError(reference, 'unknown peer'));
    const limitBytes = (record.connection?.link.maxMessageBytes ?? 1 << 20) - FRAME_OVERHEAD_BYTES;
    if (payload.length > limitBytes)
      return Promise.reject(new FrameTooLargeError(payload.length, limitBytes));
    const state = this.#stateOf(record.id);
    const id = state.nextMessageId;
    state.nextMessageId = (state.nextMessageId + 1) % 2 ** 32;
    const system = options.system === true;
    const acknowledged = state.pending.wait(
      id,
      { payload, system },
      {
        timeoutMs: options.timeoutMs ?? DEFAULT_ACK_TIMEOUT_MS,
        signal: options.signal,
        describe: () =>
          `message to ${record.name} (${record.id}): ${record.connection?.isOpen === true ? 'no acknowledgement' : 'peer not connected'};`,
      },
    );
    if (options.signal?.aborted !== true) record.connection?.sendData(id, payload, true, system);
    return acknowledged.then(() => ({ peer: record.id }));
  }

  /**
   * A routed message (the mesh layer's) over whichever link carries the peer's traffic now; false when none
   * is open, or when it is `relayed` and the peer is behind (PeerConnection.sendRouted).
   */
  sendRouted(peerId: string, message: RoutedMessage, relayed = false): boolean {
    return this.directory.get(peerId)?.connection?.sendRouted(message, relayed) ?? false;
  }

  /** The mesh layer's summary to a direct neighbour, on the link that carries its traffic now. */
  sendSync(peerId: string, message: SyncMessage): boolean {
    return this.directory.get(peerId)?.connection?.sendSync(message) ?? false;
  }

  /**
   * Unreliable mode (like MCSession's): goes out now on the peer's link without an acknowledgement, or is
   * dropped (and counted) when no link can take it; never queued, never sent again.
   */
  sendUnreliable(peerId: string, payload: Uint8Array, options: { system?: boolean } = {}): boolean {
    const record = this.directory.get(peerId);
    const connection = record?.connection;
    const limitBytes = (connection?.link.maxMessageBytes ?? 0) - FRAME_OVERHEAD_BYTES;
    if (record === undefined || connection?.isOpen !== true || payload.length > limitBytes) {
      this.counters.increment('messages.unreliable_dropped');
      return false;
    }
    const state = this.#stateOf(record.id);
    const id = state.nextMessageId;
    state.nextMessageId = (state.nextMessageId + 1) % 2 ** 32;
    this.counters.increment('messages.unreliable_sent');
    return connection.sendData(id, payload, false, options.system === true);
  }

  #stateOf(peerId: string): PeerState {
    let state = this.#peerState.get(peerId);
    if (state === undefined) {
      // A random first id keeps a restarted sender's ids clear of what the receiver remembers.
      const order = new HandoverOrder<PeerConnection, { message: ReceivedMessage; system: boolean }>(
        ({ message, system }) => this.emit(system ? 'system' : 'message', message),
        (connection) => connection.isOpen,
      );
      state = {
        pending: new PendingAcks(),
        delivered: new RecentIds(),
        order,
        nextMessageId: randomInt(0, 2 ** 31),
      };
      this.#peerState.set(peerId, state);
    }
    return state;
  }

  /** A candidate from resolver `source`, checked here: resolvers may be users' code or scripts. */
  #found(source: string, reported: PeerCandidate): void {
    if (!this.#isRunning) return;
    const mediums = this.options.transports.map((transport) => transport.medium);
    const verdict = checkCandidate(reported, source, mediums);
    if (!verdict.ok) {
      this.#resolverBook.invalid(source);
      this.counters.increment('resolvers.invalid_candidates');
      if (this.#candidateWarnings.allow(source, Date.now()))
        this.#log.warn({ resolver: source }, `resolver ${source}: candidate refused (${verdict.reason})`);
      return;
    }
    const candidate = verdict.candidate;
    if (this.#resolverBook.found(candidate) === 'full') {
      this.counters.increment('resolvers.candidates_dropped');
      if (this.#candidateWarnings.allow(source, Date.now()))
        this.#log.warn(
          { resolver: source },
          `resolver ${source}: holds its bound of candidates, more dropped`,
        );
      return;
    }
    const transport = this.options.transports.find((t) => t.medium === candidate.medium);
    if (transport === undefined) return;
    let target = this.#targets.get(candidate.address);
    if (target === undefined) {
      const redial = this.options.redial ?? { initialMs: 500, maxMs: 8_000 };
      target = {
        address: candidate.address,
        transport,
        sources: new Set(),
        peerId: candidate.peerId,
        backoff: new Backoff(redial),
        timer: undefined,
        isDialling: false,
        isSelf: false,
        keyIndex: 0,
      };
      this.#targets.set(candidate.address, target);
    }
    target.sources.add(source);
    if (candidate.peerId !== undefined) target.peerId = candidate.peerId;
    if (target.peerId === this.peerId) target.isSelf = true;
    this.#scheduleDial(target, 0);
  }

  #lost(source: string, candidate: PeerCandidate): void {
    const address = (candidate as Partial<PeerCandidate> | null)?.address;
    if (typeof address !== 'string' || !this.#resolverBook.lost(source, address)) return;
    const target = this.#targets.get(address);
    if (target === undefined) return;
    target.sources.delete(source);
    if (target.sources.size === 0) {
      clearTimeout(target.timer);
      this.#targets.delete(address);
    }
  }

  /** Dials every known candidate now (the agent just got its mesh key). */
  redialAll(): void {
    for (const target of this.#targets.values()) {
      target.backoff.reset();
      this.#scheduleDial(target, 0);
    }
  }

  #scheduleDial(target: DialTarget, delayMs: number): void {
    if (
      !this.#isRunning ||
      this.options.mayDial?.() === false ||
      target.isSelf ||
      target.isDialling ||
      this.#targets.get(target.address) !== target
    )
      return;
    clearTimeout(target.timer);
    target.timer = setTimeout(() => void this.#dial(target), delayMs);
    target.timer.unref();
  }

  /** A dial is pointless when the peer already has a link on that medium. */
  #isLinked(peerId: string | undefined, medium: Medium): boolean {
    return peerId !== undefined && this.directory.get(peerId)?.connections.get(medium)?.isOpen === true;
  }

  async #dial(target: DialTarget): Promise<void> {
    target.timer = undefined;
    if (!this.#isRunning || target.isSelf || this.#isLinked(target.peerId, target.transport.medium)) return;
    target.isDialling = true;
    this.#resolverBook.dialled(target.sources);
    try {
      const link = await target.transport.dial(target.address, { timeoutMs: 5_000 });
      const outcome = await this.#authenticate(link, target.keyIndex);
      if (outcome !== undefined && outcome !== 'rejected' && outcome !== this.peerId)
        this.#resolverBook.linked(target.sources);
      if (outcome === 'rejected') {
        // Perhaps a peer that missed a key rotation: the next dial tries the next key still accepted.
        target.keyIndex = (target.keyIndex + 1) % Math.max(1, this.options.meshKeys().length);
      } else if (outcome !== undefined) {
        target.peerId = outcome;
        target.isSelf = outcome === this.peerId;
        target.keyIndex = 0;
        target.backoff.reset();
      }
    } catch (error) {
      this.counters.increment('links.dial_failures');
      this.#log.debug({ address: target.address, err: error }, 'dial failed');
    } finally {
      target.isDialling = false;
    }
    if (!this.#isLinked(target.peerId, target.transport.medium))
      this.#scheduleDial(target, target.backoff.next());
  }

  get counters(): Counters {
    return this.options.counters;
  }

  async #accept(link: FrameLink): Promise<void> {
    if (!this.#isRunning) {
      link.close();
      return;
    }
    await this.#authenticate(link);
  }

  /**
   * Runs the handshake on a fresh link (a dial seals with accepted key `keyIndex`) and adopts the result;
   * gives the proven peer id, 'rejected' when the peer closed without answering, or undefined.
   */
  async #authenticate(link: FrameLink, keyIndex = 0): Promise<string | 'rejected' | undefined> {
    const outcome = await this.#admission.admit(link, keyIndex);
    if (outcome.admitted !== undefined) {
      const secure = outcome.admitted;
      this.#adopt(
        new PeerConnection(
          secure,
          this.counters,
          this.#log,
          {
            ...(this.options.keepalive ?? this.#keepaliveFor(secure.medium)),
            // Both ends agree without a word: the side that accepted the link leads. A hub is usually dialled
            // by its peers, so it pings them all on one tick and their PONGs come back together.
            leads: !secure.isInitiator,
          },
          this.#tap,
        ),
      );
    }
    return outcome.peerId;
  }

  /**
   * Wi-Fi links keep the fast keep-alive only when this agent has another medium that could take over (BLE):
   * the fallback's promise needs it; with nothing to fall back to it would cost twice the frames per peer.
   */
  #keepaliveFor(medium: Medium): KeepaliveOptions {
    if (medium !== 'wifi') return DEFAULT_KEEPALIVE;
    return this.options.transports.some((transport) => transport.medium !== 'wifi')
      ? WIFI_KEEPALIVE
      : LAN_KEEPALIVE;
  }

  /** A source address (a host, or a BLE address) a known peer linked from, or one this agent dials. */
  #isKnownSource(source: string): boolean {
    const isFrom = (address: string): boolean =>
      address === source || address.startsWith(`${source}:`) || address.startsWith(`[${source}]:`);
    for (const target of this.#targets.values()) if (isFrom(target.address)) return true;
    return this.directory.records().some((record) => [...record.addresses].some(isFrom));
  }

  /** Closes every link to a peer (it was revoked or shunned). */
  disconnect(peerId: string, reason: string): void {
    for (const connection of this.directory.get(peerId)?.connections.values() ?? []) {
      connection.close(CloseCode.refused, reason);
    }
  }

  /**
   * Keeps exactly one connection per peer and medium (both agents pick the same survivor without talking)
   * and moves traffic to the best medium linked.
   */
  #adopt(connection: PeerConnection): void {
    const secure = connection.link;
    const record = this.directory.upsert(secure.peerId, secure.peerName);
    const existing = record.connections.get(secure.medium);
    if (existing?.isOpen === true) {
      const keepNew = this.#prefers(connection, existing);
      const loser = keepNew ? existing : connection;
      this.counters.increment('links.duplicates_closed');
      loser.close(CloseCode.duplicateLink, 'duplicate link');
      if (!keepNew) return;
    }
    const previous = record.connection?.isOpen === true ? record.connection : undefined;
    record.connections.set(secure.medium, connection);
    record.connection = bestConnection(record);
    record.addresses.add(secure.remoteAddress);
    record.lastSeenMs = Date.now();
    const wasDown = previous === undefined;
    if (wasDown) record.connectedSinceMs = Date.now();
    const state = this.#stateOf(record.id);
    connection.on('data', (payload, id, system) => {
      record.lastSeenMs = Date.now();
      if (!state.delivered.add(id)) {
        this.counters.increment('messages.duplicates_dropped');
        return;
      }
      this.counters.increment('messages.received');
      const message = { from: record.id, fromName: record.name, payload, receivedAtMs: Date.now() };
      state.order.receive(connection, { message, system });
    });
    connection.on('cutover', () => state.order.cutover(connection));
    connection.on('ack', (id) => state.pending.settle(id));
    connection.on('endpoints', (addresses) => this.#endpointsHeard(record, addresses));
    connection.on('close', (error) => this.#connectionClosed(record, connection, error));
    connection.on('routed', (message) => this.emit('routed', record.id, message));
    connection.on('sync', (message) => this.emit('sync', record.id, message));
    this.#offerEndpoints(record, connection);
    if (record.connection === connection) this.#resendPending(state, connection);
    if (wasDown) {
      this.#log.info(
        { peer: record.id, name: record.name, medium: secure.medium, address: secure.remoteAddress },
        'peer linked',
      );
      this.emit('peer-up', this.directory.info(record));
    } else if (
      record.connection === connection &&
      previous !== undefined &&
      previous.link.medium !== secure.medium
    ) {
      // The last write on the old link: the peer delivers what is in flight there before this link's.
      previous.sendCutover();
      this.counters.increment('links.media_switched');
      this.#log.info(
        { peer: record.id, name: record.name, from: previous?.link.medium, to: secure.medium },
        `peer traffic moved to ${secure.medium}`,
      );
    }
  }

  /** Over a link that is not Wi-Fi, tells the peer where to reach this agent over Wi-Fi, unless they already are. */
  #offerEndpoints(record: PeerRecord, connection: PeerConnection): void {
    if (connection.link.medium === 'wifi' || record.connections.get('wifi')?.isOpen === true) return;
    const addresses = this.options.localEndpoints?.() ?? [];
    if (addresses.length === 0) return;
    connection.sendEndpoints(addresses.slice(0, MAX_ENDPOINTS));
    this.counters.increment('links.endpoints_offered');
  }

  /** A peer's Wi-Fi endpoints, heard over another medium: dialled like any found address (the dial proves who answers). */
  #endpointsHeard(record: PeerRecord, addresses: string[]): void {
    this.counters.increment('links.endpoints_heard');
    if (record.connections.get('wifi')?.isOpen === true) return;
    // The one line that says why this agent starts dialling a peer's LAN address (an upgrade under way).
    this.#log.info(
      { peer: record.id, name: record.name, addresses },
      'peer told its Wi-Fi endpoints: dialling',
    );
    // The latest list replaces the earlier one (a peer whose address changed leaves no stale targets).
    this.#forgetEndpoints(record.id);
    for (const address of addresses) {
      this.#found(ENDPOINTS_SOURCE, { medium: 'wifi', address, peerId: record.id, source: ENDPOINTS_SOURCE });
    }
  }

  /** Stops dialling the Wi-Fi endpoints a peer told over another medium (it is gone, or told new ones). */
  #forgetEndpoints(peerId: string): void {
    for (const target of [...this.#targets.values()]) {
      if (target.peerId === peerId && target.sources.has(ENDPOINTS_SOURCE))
        this.#lost(ENDPOINTS_SOURCE, { medium: 'wifi', address: target.address, source: ENDPOINTS_SOURCE });
    }
  }

  /**
   * Sends every unacknowledged message again on the connection the peer's traffic moved to, in id order;
   * one too large for this link (a Wi-Fi-sized message falling back to BLE) fails instead of going out.
   */
  #resendPending(state: PeerState, connection: PeerConnection): void {
    const limitBytes = connection.link.maxMessageBytes - FRAME_OVERHEAD_BYTES;
    for (const [id, pending] of state.pending.entries()) {
      if (pending.payload.length > limitBytes)
        state.pending.settle(id, new FrameTooLargeError(pending.payload.length, limitBytes));
      else connection.sendData(id, pending.payload, true, pending.system);
    }
  }

  /** Both sides agree: the connection dialled by the smaller peer id wins; a re-dial by the same side replaces. */
  #prefers(candidate: PeerConnection, existing: PeerConnection): boolean {
    const dialler = (c: PeerConnection): string => (c.link.isInitiator ? this.peerId : c.peerId);
    const a = dialler(candidate);
    const b = dialler(existing);
    if (a === b) return true;
    return a < b;
  }

  #connectionClosed(record: PeerRecord, connection: PeerConnection, error: Error | undefined): void {
    record.lastSeenMs = Math.max(record.lastSeenMs, connection.lastHeardAtMs);
    const medium = connection.link.medium;
    this.#stateOf(record.id).order.closed(connection);
    if (record.connections.get(medium) !== connection) return;
    record.connections.delete(medium);
    const wasActive = record.connection === connection;
    record.connection = bestConnection(record);
    for (const target of this.#targets.values()) {
      if (target.peerId === record.id && target.transport.medium === medium) {
        this.#scheduleDial(target, target.backoff.next());
      }
    }
    const fallback = record.connection;
    if (fallback !== undefined) {
      if (!wasActive) return;
      // Traffic falls back to the standby medium: what the lost link had not delivered goes again there.
      this.counters.increment('links.media_switched');
      this.#log.info(
        {
          peer: record.id,
          name: record.name,
          from: medium,
          to: fallback.link.medium,
          reason: error?.message ?? 'closed',
        },
        `peer traffic fell back to ${fallback.link.medium}`,
      );
      this.#resendPending(this.#stateOf(record.id), fallback);
      return;
    }
    record.connectedSinceMs = undefined;
    this.#forgetEndpoints(record.id);
    this.#log.info(
      { peer: record.id, name: record.name, reason: error?.message ?? 'closed' },
      'peer unlinked',
    );
    this.emit('peer-down', this.directory.info(record));
  }
}
