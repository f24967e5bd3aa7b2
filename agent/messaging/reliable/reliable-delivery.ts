// Reliable messages that survive a restart or a crash of either side: a send is
// queued durably first (DurableQueue, SQLite WAL) and leaves the queue only when the receiver says it has
// recorded it as handed to its apps (RECEIVED, cumulative). Between the two, QUEUED messages go to the peer
// over whatever reaches it (a direct link or the mesh), a bounded window of them unconfirmed, in seq order; a
// failed or stalled send rewinds to the last confirmed seq and sends again later. The receiver hands each
// seq over once and in order (it keeps the highest delivered seq per sender in its own queue file), drops
// duplicates and anything after a gap, stores what it takes in the app inbox (in the same transaction)
// and confirms what it holds; what a full inbox refuses is not confirmed, so its sender sends it again
// later.

import type { Counters } from '../../core/counters.js';
import { FrameTooLargeError, NearmeshError } from '../../core/errors.js';
import { TypedEmitter } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import { DEFAULT_ACK_TIMEOUT_MS } from '../../core/pending-acks.js';
import type { ReceivedMessage } from '../../links/link-manager.js';
import { DecodeError } from '../../protocol/errors.js';
import { decodeQueued, encodeQueued, QUEUED_OVERHEAD_BYTES } from '../../protocol/queued.js';
import type { SystemHandlers } from '../../protocol/system-kind.js';
import type { DeliveredMark, DurableQueue, ReceivedReliable } from './durable-queue.js';
import { countInboxChanges, noInboxChanges } from './inbox-changes.js';

/**
 * Messages sent but not yet confirmed, per peer: enough in flight that the link stays busy while the
 * receiver records a batch (one fsync) and confirms it.
 */
export const WINDOW_MESSAGES = 256;
/** Their payload bytes: large messages keep no more in flight than 64 of the largest (60 KiB) would. */
export const WINDOW_BYTES = 4 * 1024 * 1024;
/** Messages handed to the link per turn: the receiver takes in one burst while the next is on its way. */
const BURST = 64;
/** Unconfirmed messages with no confirmation for this long are sent again. */
const STALL_MS = 5_000;
/** How often peers with queued messages are looked at (a route may have appeared). */
const TICK_MS = 1_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 8_000;
/**
 * The longest pause between probes to a peer no link or route reaches: each probe floods the whole mesh,
 * so one to a peer gone for good costs every node a message per this long, not one every ~13 s. A peer
 * that comes back (a link, or a route heard) ends the pause at once.
 */
const PROBE_RETRY_MAX_MS = 120_000;
/** How long `send` waits for the confirmation when the caller names no timeout. */
export const DEFAULT_WAIT_MS = DEFAULT_ACK_TIMEOUT_MS;

/** The message is safely queued but the peer has not confirmed it yet; it goes when the peer is reachable. */
export class NotYetDeliveredError extends NearmeshError {
  constructor(
    readonly peer: string,
    readonly seq: number,
    why: string,
  ) {
    super(
      'not-yet-delivered',
      `message #${seq} to ${peer} is queued but not yet delivered (${why}); it stays queued and goes when the peer is reachable`,
    );
  }
}

export interface ReliableDeliveryOptions {
  queue: DurableQueue;
  /** One system payload to a peer over a direct link or the mesh; resolves on the link's acknowledgement. */
  send: (peer: string, payload: Uint8Array) => Promise<unknown>;
  /** Whether a direct link or a mesh route reaches the peer now (else only a probe goes, flooded). */
  isReachable: (peer: string) => boolean;
  /** The peer's name for received messages. */
  nameOf: (peer: string) => string;
  /** Largest system payload every route takes. */
  maxPayloadBytes: number;
  counters: Counters;
  log: Logger;
}

/** A reliable message as apps get it: with the hops it travelled (1 over a direct link), stored in the inbox. */
export interface ReliableMessage extends ReceivedMessage {
  hops: number;
  inboxId: number;
}

export interface ReliableDeliveryEvents {
  /** A reliable message stored in the app inbox, once and in order per sender. */
  message: (message: ReliableMessage) => void;
}

export interface QueuedSend {
  peer: string;
  /** Position in this agent's queue to that peer (1, 2, 3 ...). */
  seq: number;
}

interface Waiter {
  seq: number;
  settle: (error?: Error) => void;
}

interface Outbound {
  /** Highest seq handed to the link (this generation). */
  sentUpTo: number;
  /** Highest seq the peer confirmed. */
  confirmedUpTo: number;
  /** Payload sizes of the seqs after confirmedUpTo up to sentUpTo, in order, and their sum. */
  readonly inFlightSizes: number[];
  inFlightBytes: number;
  /** A pump for the next burst waits for the next turn. */
  isPumpScheduled: boolean;
  /** Bumped on every rewind: late outcomes of older sends are ignored. */
  generation: number;
  lastProgressMs: number;
  retryAtMs: number;
  retryMs: number;
  /** The pause (retryAtMs) follows a probe: it ends as soon as a link or route reaches the peer. */
  probing: boolean;
  readonly waiters: Waiter[];
}

export class ReliableDelivery extends TypedEmitter<ReliableDeliveryEvents> {
  readonly #options: ReliableDeliveryOptions;
  readonly #outbound = new Map<string, Outbound>();
  /** Peers owed a RECEIVED (with the epoch to confirm), sent at the end of the turn. */
  readonly #confirmDue = new Map<string, string>();
  /** Messages taken this turn, in arrival order, and the highest seq taken per "peer/epoch". */
  readonly #accepted: ReceivedReliable[] = [];
  readonly #acceptedUpTo = new Map<string, DeliveredMark>();
  #turnScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: ReliableDeliveryOptions) {
    super();
    this.#options = options;
  }

  /** Largest app payload a reliable message takes (it must fit every route it may take). */
  get maxMessageBytes(): number {
    return this.#options.maxPayloadBytes - QUEUED_OVERHEAD_BYTES;
  }

  start(): void {
    this.#ticking();
    for (const peer of this.#options.queue.peersWithPending()) this.#pump(peer);
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const [peer, outbound] of this.#outbound) {
      for (const waiter of outbound.waiters.splice(0)) {
        waiter.settle(new NotYetDeliveredError(peer, waiter.seq, 'the agent is stopping'));
      }
    }
  }

  /**
   * Queues messages for `peer` durably (all or none, in order) and starts sending them: when it returns,
   * they are stored. Throws FrameTooLargeError, QueueFullError or QueueStorageError when nothing was queued.
   */
  queue(peer: string, payloads: readonly Uint8Array[]): QueuedSend[] {
    for (const payload of payloads) {
      if (payload.length > this.maxMessageBytes)
        throw new FrameTooLargeError(payload.length, this.maxMessageBytes);
    }
    if (payloads.length === 0) return [];
    const seqs = this.#options.queue.enqueueMany(peer, payloads);
    this.#ticking();
    this.#options.counters.increment('messages.queued', seqs.length);
    this.#pump(peer);
    return seqs.map((seq) => ({ peer, seq }));
  }

  /**
   * queue(), then with `waitMs` settles when the peer confirmed the last of them, or rejects with
   * NotYetDeliveredError after that long (they stay queued); without it, as soon as they are queued.
   */
  async send(peer: string, payloads: readonly Uint8Array[], waitMs?: number): Promise<QueuedSend[]> {
    const sent = this.queue(peer, payloads);
    const last = sent[sent.length - 1];
    // A confirmation comes from the network, never within this call: waiting from here misses none.
    if (waitMs !== undefined && last !== undefined)
      await this.#confirmation(peer, this.#outboundOf(peer), last.seq, waitMs);
    return sent;
  }

  /** The peer may be reachable now (a link came up): send what waits for it. */
  reachable(peer: string): void {
    const outbound = this.#outbound.get(peer);
    if (outbound !== undefined) outbound.retryAtMs = 0;
    this.#pump(peer);
  }

  /** Queued (unconfirmed) messages and bytes over all peers. */
  queued(): { messages: number; bytes: number } {
    return this.#options.queue.totals();
  }

  /** Takes QUEUED and RECEIVED from the agent's system inbox. */
  registerWith(inbox: SystemHandlers): void {
    inbox.register('queued', (message) => this.handle(message.from, message.payload, message.hops));
  }

  /** A QUEUED or RECEIVED from `from`, `hops` away. Never throws: what does not decode or fit is counted. */
  handle(from: string, payload: Uint8Array, hops = 1): void {
    const message = decodeQueued(payload);
    if (message instanceof DecodeError) {
      this.#options.counters.increment('messages.queued_malformed');
      return;
    }
    if (message.kind === 'received') {
      if (message.epoch !== this.#options.queue.epoch) {
        this.#options.counters.increment('messages.confirmations_stale');
        return;
      }
      this.#confirmed(from, message.upTo);
      return;
    }
    this.#receive(from, message, hops);
  }

  /**
   * Takes the next seq from a sender into this turn's batch (in memory); duplicates and gaps are dropped.
   * The batch is recorded in one transaction (one fsync) at the end of the turn, then handed over.
   */
  #receive(
    from: string,
    { epoch, seq, payload }: { epoch: string; seq: number; payload: Uint8Array },
    hops: number,
  ): void {
    const key = deliveryKey(from, epoch);
    let last = this.#acceptedUpTo.get(key)?.seq;
    if (last === undefined) {
      try {
        last = this.#options.queue.lastDelivered(from, epoch);
      } catch (error) {
        this.#storageFailed(from, error);
        return;
      }
    }
    if (seq === last + 1) {
      this.#acceptedUpTo.set(key, { peer: from, epoch, seq });
      this.#accepted.push({ peer: from, epoch, seq, payload, hops, receivedAtMs: Date.now() });
    } else {
      this.#options.counters.increment(seq <= last ? 'messages.duplicates_dropped' : 'messages.gaps_dropped');
    }
    this.#confirmDue.set(from, epoch);
    if (!this.#turnScheduled) {
      this.#turnScheduled = true;
      setImmediate(() => this.#endTurn());
    }
  }

  /** Stores this turn's messages in the inbox, hands them to the apps in order, and confirms to each sender. */
  #endTurn(): void {
    this.#turnScheduled = false;
    const accepted = this.#accepted.splice(0);
    this.#acceptedUpTo.clear();
    const changes = noInboxChanges();
    let ids: Array<number | undefined>;
    try {
      // Stored before they are handed over, in the same turn: a crash in between cannot deliver one twice.
      ids = this.#options.queue.receiveMany(accepted, changes);
    } catch (error) {
      this.#storageFailed(accepted[0]?.peer ?? '-', error);
      this.#confirmDue.clear();
      return;
    }
    countInboxChanges(this.#options.counters, changes);
    const storedUpTo = new Map<string, number>();
    accepted.forEach((message, i) => {
      const inboxId = ids[i];
      if (inboxId === undefined) return;
      storedUpTo.set(deliveryKey(message.peer, message.epoch), message.seq);
      this.#options.counters.increment('messages.reliable_received');
      this.emit('message', {
        from: message.peer,
        fromName: this.#options.nameOf(message.peer),
        payload: message.payload,
        receivedAtMs: message.receivedAtMs,
        hops: message.hops,
        inboxId,
      });
    });
    for (const [peer, epoch] of this.#confirmDue) {
      const confirmedUpTo =
        storedUpTo.get(deliveryKey(peer, epoch)) ?? this.#lastDeliveredOrZero(peer, epoch);
      const payload = encodeQueued({ kind: 'received', epoch, upTo: confirmedUpTo });
      this.#options.send(peer, payload).catch(() => {
        // Lost with its link: the sender's next QUEUED (a resend) brings another confirmation.
      });
    }
    this.#confirmDue.clear();
  }

  /** The receiver's queue file failed (disk full, read-only): not delivered, not confirmed, sent again later. */
  #storageFailed(peer: string, error: unknown): void {
    this.#options.counters.increment('messages.receive_storage_failures');
    this.#options.log.warn({ peer, err: error }, 'reliable message not recorded; the sender will resend');
  }

  #lastDeliveredOrZero(peer: string, epoch: string): number {
    try {
      return this.#options.queue.lastDelivered(peer, epoch);
    } catch {
      return 0;
    }
  }

  #confirmed(peer: string, upTo: number): void {
    const outbound = this.#outboundOf(peer);
    if (upTo <= outbound.confirmedUpTo) return;
    try {
      this.#options.queue.acknowledge(peer, upTo);
    } catch (error) {
      // Still queued: sent again later and confirmed again, the receiver drops the duplicates.
      this.#options.log.warn(
        { peer, err: error },
        'reliable messages confirmed but not removed from the queue',
      );
      return;
    }
    this.#options.counters.increment('messages.delivered', upTo - outbound.confirmedUpTo);
    for (const size of outbound.inFlightSizes.splice(0, upTo - outbound.confirmedUpTo))
      outbound.inFlightBytes -= size;
    outbound.confirmedUpTo = upTo;
    outbound.sentUpTo = Math.max(outbound.sentUpTo, upTo);
    outbound.lastProgressMs = Date.now();
    outbound.retryMs = RETRY_MIN_MS;
    while (outbound.waiters[0] !== undefined && outbound.waiters[0].seq <= upTo)
      outbound.waiters.shift()?.settle();
    this.#pump(peer);
  }

  #confirmation(peer: string, outbound: Outbound, seq: number, waitMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = outbound.waiters.indexOf(waiter);
        if (index >= 0) outbound.waiters.splice(index, 1);
        const why = this.#options.isReachable(peer)
          ? `no confirmation within ${waitMs} ms`
          : 'the peer is not reachable';
        reject(new NotYetDeliveredError(peer, seq, why));
      }, waitMs);
      const waiter: Waiter = {
        seq,
        settle: (error) => {
          clearTimeout(timer);
          if (error === undefined) resolve();
          else reject(error);
        },
      };
      outbound.waiters.push(waiter);
    });
  }

  #outboundOf(peer: string): Outbound {
    let outbound = this.#outbound.get(peer);
    if (outbound === undefined) {
      // Everything before the first queued seq was confirmed (possibly before a restart).
      const first = this.#options.queue.pending(peer, { limit: 1 })[0]?.seq;
      const confirmedUpTo = first === undefined ? this.#options.queue.stats(peer).lastSeq : first - 1;
      outbound = {
        sentUpTo: confirmedUpTo,
        confirmedUpTo,
        inFlightSizes: [],
        inFlightBytes: 0,
        isPumpScheduled: false,
        generation: 0,
        lastProgressMs: Date.now(),
        retryAtMs: 0,
        retryMs: RETRY_MIN_MS,
        probing: false,
        waiters: [],
      };
      this.#outbound.set(peer, outbound);
    }
    return outbound;
  }

  /**
   * Sends queued messages to `peer` while the window has room, a burst a turn. With no link or route to it,
   * only one goes at a time, a probe: the mesh floods it, it finds the peer wherever it is (a route that was
   * evicted or not announced yet), and the flooded acknowledgement teaches the route the rest then take.
   */
  #pump(peer: string): void {
    const outbound = this.#outboundOf(peer);
    const reachable = this.#options.isReachable(peer);
    const window = reachable ? WINDOW_MESSAGES : 1;
    const room = window - (outbound.sentUpTo - outbound.confirmedUpTo);
    if (room <= 0 || (Date.now() < outbound.retryAtMs && !(outbound.probing && reachable))) return;
    // The byte window full: reading rows (payloads included) only to send none of them is wasted work.
    if (outbound.inFlightBytes >= WINDOW_BYTES) return;
    const burst = Math.min(room, BURST);
    let rows: ReturnType<DurableQueue['pending']>;
    try {
      rows = this.#options.queue.pending(peer, { afterSeq: outbound.sentUpTo, limit: burst });
    } catch (error) {
      this.#options.log.warn({ peer, err: error }, 'cannot read the message queue');
      return;
    }
    if (rows.length > 0 && outbound.sentUpTo === outbound.confirmedUpTo) outbound.lastProgressMs = Date.now();
    const { generation } = outbound;
    const epoch = this.#options.queue.epoch;
    let sent = 0;
    for (const row of rows) {
      const size = row.payload.length;
      if (outbound.inFlightBytes + size > WINDOW_BYTES && outbound.inFlightSizes.length > 0) break;
      sent += 1;
      outbound.sentUpTo = row.seq;
      outbound.inFlightSizes.push(size);
      outbound.inFlightBytes += size;
      const payload = encodeQueued({ kind: 'queued', epoch, seq: row.seq, payload: row.payload });
      this.#options.counters.increment('messages.queued_sent');
      this.#options.send(peer, payload).catch((error: unknown) => {
        if (outbound.generation !== generation) return;
        this.#rewind(peer, outbound, error instanceof Error ? error.message : String(error));
      });
    }
    if (sent === BURST && room > BURST && !outbound.isPumpScheduled) {
      outbound.isPumpScheduled = true;
      setImmediate(() => {
        outbound.isPumpScheduled = false;
        if (!this.#stopped) this.#pump(peer);
      });
    }
  }

  /**
   * Back to the last confirmed seq; the rest goes again after a pause that doubles while sends keep
   * failing, up to RETRY_MAX_MS, or PROBE_RETRY_MAX_MS while nothing reaches the peer.
   */
  #rewind(peer: string, outbound: Outbound, why: string): void {
    this.#options.counters.increment('messages.queued_rewinds');
    this.#options.log.debug(
      { peer, from: outbound.confirmedUpTo + 1, why },
      'reliable messages: sending again later',
    );
    outbound.generation += 1;
    outbound.sentUpTo = outbound.confirmedUpTo;
    outbound.inFlightSizes.length = 0;
    outbound.inFlightBytes = 0;
    outbound.probing = !this.#options.isReachable(peer);
    const longest = outbound.probing ? PROBE_RETRY_MAX_MS : RETRY_MAX_MS;
    const pause = Math.min(outbound.retryMs, longest);
    outbound.retryAtMs = Date.now() + pause;
    outbound.retryMs = Math.min(pause * 2, longest);
  }

  /**
   * The tick (stalls, retries) runs while anything is queued; an agent with nothing queued has no timer here:
   * on an idle agent every wake-up counts.
   */
  #ticking(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  #tick(): void {
    const now = Date.now();
    for (const [peer, outbound] of this.#outbound) {
      if (outbound.sentUpTo > outbound.confirmedUpTo && now - outbound.lastProgressMs > STALL_MS) {
        this.#rewind(peer, outbound, `no confirmation for ${STALL_MS} ms`);
      }
    }
    let peers: string[];
    try {
      peers = this.#options.queue.peersWithPending();
    } catch {
      return;
    }
    // Empty: every message ever queued was confirmed (so nothing is in flight either).
    if (peers.length === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
    for (const peer of peers) this.#pump(peer);
  }
}

function deliveryKey(peer: string, epoch: string): string {
  return `${peer}/${epoch}`;
}
