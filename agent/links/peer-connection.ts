// One authenticated connection to a peer: speaks protocol v1 messages over a secure link, keeps it
// alive (ping/pong, RTT), acknowledges data, and reports bad frames as counted drops.

import type { Counters } from '../core/counters.js';
import { NearmeshError, TimeoutError } from '../core/errors.js';
import { TypedEmitter } from '../core/events.js';
import type { Logger } from '../core/logger.js';
import {
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  type Message,
  type RoutedMessage,
  type SyncMessage,
} from '../protocol/index.js';
import type { SecureLink } from '../security/secure-channel.js';
import { type KeepaliveClock, sharedKeepaliveClock } from './keepalive-clock.js';

export interface KeepaliveOptions {
  /** How often the leading side pings; every PING is answered with a PONG. */
  intervalMs: number;
  /** Silence after which the peer is declared gone (must be well under 10 s). */
  deadAfterMs: number;
  /**
   * Whether this side leads the keep-alive (default true). One side leading is enough: its PINGs and their
   * PONGs keep both sides hearing each other, at half the frames of both pinging. The other side pings only
   * every FOLLOWER_PING_FACTOR intervals, for its own RTT figure.
   */
  leads?: boolean;
}

/** How much less often the side that does not lead the keep-alive pings (for its RTT only). */
export const FOLLOWER_PING_FACTOR = 10;

/** BLE links. Silence is checked every half ping interval, at most every quarter of `deadAfterMs`. */
export const DEFAULT_KEEPALIVE: KeepaliveOptions = { intervalMs: 2_000, deadAfterMs: 7_000 };
/**
 * Wi-Fi links where BLE could take over: a lost one is noticed within 2.25 s (2 s silent + one check), inside
 * the 3 s the fallback to BLE promises with room for a loaded machine. Bytes of a frame still arriving count
 * as heard, so a busy slow link is not mistaken for a silent one.
 */
export const WIFI_KEEPALIVE: KeepaliveOptions = { intervalMs: 500, deadAfterMs: 2_000 };
/**
 * Wi-Fi links of an agent with nothing to fall back to (no BLE): a quarter of the frames, so an idle linked peer
 * costs a hub little CPU; a lost link is noticed within 7 s (6 s silent + one check) — the mesh routes data around
 * it sooner, on its own retransmissions — and a loaded machine's stall of up to 5 s does not drop a link.
 */
export const LAN_KEEPALIVE: KeepaliveOptions = { intervalMs: 2_000, deadAfterMs: 6_000 };

/**
 * Where a connection reports the messages it sends and receives, for `trace`. `tracers` is read before
 * anything is built: with no tracer attached a frame costs one integer compare.
 */
export interface FrameTap {
  readonly tracers: number;
  /** Called synchronously; a DATA payload may be a view of a buffer that is reused once this returns. */
  frame(connection: PeerConnection, direction: 'in' | 'out', message: Message): void;
}

const NO_TAP: FrameTap = { tracers: 0, frame: () => {} };

/**
 * A neighbour this far behind gets no traffic that may be lost anyway (relayed for others, or best effort):
 * queueing it for a link that does not drain would only pile it up here.
 */
export const RELAY_BUFFER_LIMIT_BYTES = 1 << 20;
/**
 * A neighbour this far behind is not reading at all (pinging, say, but never reading), and its link is cut.
 * Above what a bulk transfer keeps in flight (an 8 MiB window of 960 KiB chunks); what else may reach it past
 * 1 MiB waits for acknowledgements, so a peer that does not read stops it long before.
 */
export const MAX_BUFFERED_BYTES = 16 << 20;

/** The peer stopped reading: more than MAX_BUFFERED_BYTES waited to be sent to it. */
export class SlowPeerError extends NearmeshError {
  constructor(bufferedBytes: number) {
    super(
      'slow-peer',
      `the peer stopped reading: ${Math.round(bufferedBytes / 2 ** 20)} MiB waited to be sent`,
    );
  }
}

export interface ConnectionEvents {
  /** A link-local DATA message arrived; `id` is the sender's message id (used to drop duplicates). */
  data: (payload: Uint8Array, id: number, system: boolean) => void;
  ack: (id: number) => void;
  /** A message with a route (DATA, ACK, ANNOUNCE): the mesh layer's, acknowledged end to end, not here. */
  routed: (message: RoutedMessage) => void;
  /** The peer's summary of what it holds (the mesh layer's). */
  sync: (message: SyncMessage) => void;
  /** The peer told where it accepts Wi-Fi/LAN links ("host:port"). */
  endpoints: (addresses: string[]) => void;
  /** The peer moved its traffic off this link: everything it sent here has arrived. */
  cutover: () => void;
  close: (error: Error | undefined) => void;
}

export class PeerConnection extends TypedEmitter<ConnectionEvents> {
  readonly openedAtMs = Date.now();
  lastHeardAtMs = Date.now();
  rttMs: number | undefined;
  /** Set when the remote said goodbye, so the manager knows why the link went. */
  remoteCloseCode: number | undefined;
  readonly #pingSentAtMs = new Map<number, number>();
  #nextPingId = 0;
  /** 0: the first tick pings (one runs as soon as the link is up), so both sides have an RTT at once. */
  #lastPingAtMs = 0;
  #lastDataIdSent: number | undefined;

  constructor(
    readonly link: SecureLink,
    private readonly counters: Counters,
    private readonly log: Logger,
    private readonly keepalive: KeepaliveOptions = DEFAULT_KEEPALIVE,
    private readonly tap: FrameTap = NO_TAP,
    clock: KeepaliveClock = sharedKeepaliveClock,
  ) {
    super();
    link.on('message', (plaintext) => this.#receive(plaintext));
    link.on('close', (error) => {
      clock.remove(this);
      this.emit('close', error);
    });
    clock.add(this, Math.min(keepalive.intervalMs / 2, keepalive.deadAfterMs / 4));
    // The first PING goes now, not at the shared clock's next tick (up to a second away): `peers` and the web
    // view show a new link's RTT within a round trip. After the caller has attached its listeners.
    queueMicrotask(() => this.tick(Date.now()));
  }

  get peerId(): string {
    return this.link.peerId;
  }

  get isOpen(): boolean {
    return this.link.isOpen;
  }

  sendData(id: number, payload: Uint8Array, ackRequested: boolean, system = false): boolean {
    if (!this.link.isOpen) return false;
    this.#lastDataIdSent = id;
    const message: Message = { type: 'data', id, ackRequested, payload, ...(system && { system: true }) };
    // In parts: a bulk payload reaches the cipher without being copied into an envelope first.
    this.link.send(encodeMessageParts(message));
    if (this.tap.tracers !== 0) this.tap.frame(this, 'out', message);
    this.#cutIfNotReading();
    return true;
  }

  /**
   * Sends a routed message (the mesh layer's); false on a closed link, or, while this peer is behind, for one
   * relayed for others or sent best effort (counted): not worth queueing on a link that does not drain.
   */
  sendRouted(message: RoutedMessage, relayed = false): boolean {
    if (!this.link.isOpen) return false;
    const mayBeLost = relayed || (message.type === 'data' && !message.ackRequested);
    if (mayBeLost && this.link.bufferedBytes > RELAY_BUFFER_LIMIT_BYTES) {
      this.counters.increment('links.dropped_slow_peer');
      return false;
    }
    this.link.send(encodeMessageParts(message));
    if (this.tap.tracers !== 0) this.tap.frame(this, 'out', message);
    this.#cutIfNotReading();
    return true;
  }

  /** Ends this link's use for traffic: the last write on it (the peer then delivers the next link's messages). */
  sendCutover(): boolean {
    if (!this.link.isOpen) return false;
    this.#send({ type: 'cutover', id: this.#lastDataIdSent ?? 0 });
    return true;
  }

  /** Tells the peer what this agent holds (the mesh layer's summary); false on a closed link. */
  sendSync(message: SyncMessage): boolean {
    if (!this.link.isOpen) return false;
    this.#send(message);
    return true;
  }

  /** Tells the peer where this agent accepts Wi-Fi/LAN links. */
  sendEndpoints(addresses: string[]): boolean {
    if (!this.link.isOpen) return false;
    this.#send({ type: 'endpoints', addresses });
    return true;
  }

  /** Says goodbye with a reason, then closes. */
  close(code: number, reason: string): void {
    if (!this.link.isOpen) return;
    this.#send({ type: 'close', code, reason });
    void this.link.drained().finally(() => this.link.close());
  }

  #send(message: Message): boolean {
    if (!this.link.isOpen) return false;
    this.link.send(encodeMessage(message));
    if (this.tap.tracers !== 0) this.tap.frame(this, 'out', message);
    this.#cutIfNotReading();
    return true;
  }

  /** Cuts the link (at once: a peer that does not read would never take a goodbye) past MAX_BUFFERED_BYTES. */
  #cutIfNotReading(): void {
    const buffered = this.link.bufferedBytes;
    if (buffered <= MAX_BUFFERED_BYTES) return;
    this.counters.increment('links.slow_peers_cut');
    this.log.warn(
      { peer: this.peerId, medium: this.link.medium, buffered },
      'peer stopped reading: link cut',
    );
    this.link.close(new SlowPeerError(buffered));
  }

  /** From the keep-alive clock: closes a link silent for too long, and pings when a PING is due. */
  tick(nowMs: number): void {
    if (!this.link.isOpen) return;
    // A message still arriving counts: a 960 KiB chunk takes seconds on a slow Wi-Fi link (3 s at 2.6 Mbit/s).
    const silentMs = nowMs - Math.max(this.lastHeardAtMs, this.link.lastReceivedAtMs);
    if (silentMs >= this.keepalive.deadAfterMs) {
      this.counters.increment('links.keepalive_timeouts');
      this.link.close(new TimeoutError(`keep-alive of peer ${this.peerId}`, this.keepalive.deadAfterMs));
      return;
    }
    const periodMs = this.keepalive.intervalMs * (this.keepalive.leads === false ? FOLLOWER_PING_FACTOR : 1);
    // The shared clock's ticks drift by a few ms against this link's own period: within 10 % is on time.
    if (nowMs - this.#lastPingAtMs < periodMs * 0.9) return;
    this.#lastPingAtMs = nowMs;
    const id = this.#nextPingId++;
    this.#pingSentAtMs.set(id, performance.now());
    // Only the latest few pings can still be answered in time; older ones are lost causes.
    for (const old of this.#pingSentAtMs.keys()) if (old < id - 4) this.#pingSentAtMs.delete(old);
    this.#send({ type: 'ping', id });
  }

  #receive(plaintext: Uint8Array): void {
    this.lastHeardAtMs = Date.now();
    // The secure link hands over a freshly decrypted buffer that nothing else holds: no copy needed.
    const result = decodeMessage(plaintext, { payloadView: true });
    if (result.kind === 'error') {
      this.counters.increment('protocol.decode_errors');
      this.log.debug({ peer: this.peerId, reason: result.error.reason }, 'dropped malformed message');
      return;
    }
    if (result.kind === 'unknown-type') {
      this.counters.increment('protocol.unknown_types');
      return;
    }
    if (result.ignoredFields > 0) this.counters.increment('protocol.ignored_fields', result.ignoredFields);
    const message = result.message;
    if (this.tap.tracers !== 0) this.tap.frame(this, 'in', message);
    switch (message.type) {
      case 'data':
        if (message.route !== undefined) {
          this.emit('routed', message);
          return;
        }
        this.emit('data', message.payload, message.id, message.system === true);
        if (message.ackRequested) this.#send({ type: 'ack', id: message.id });
        return;
      case 'ack':
        if (message.route !== undefined) this.emit('routed', message);
        else this.emit('ack', message.id);
        return;
      case 'announce':
        this.emit('routed', message);
        return;
      case 'ping':
        this.#send({ type: 'pong', id: message.id });
        return;
      case 'pong': {
        const sentAtMs = this.#pingSentAtMs.get(message.id);
        if (sentAtMs === undefined) return;
        this.#pingSentAtMs.delete(message.id);
        this.rttMs = Math.round((performance.now() - sentAtMs) * 100) / 100;
        return;
      }
      case 'endpoints':
        this.emit('endpoints', message.addresses);
        return;
      case 'sync':
        this.emit('sync', message);
        return;
      case 'cutover':
        this.emit('cutover');
        return;
      case 'close':
        this.remoteCloseCode = message.code;
        this.log.debug({ peer: this.peerId, code: message.code, reason: message.reason }, 'peer closed link');
        this.link.close();
        return;
    }
  }
}
