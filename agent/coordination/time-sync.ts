// Mesh time: each agent estimates its clock's offset to the peers it coordinates with (the NTP
// four-timestamp exchange, over the mesh, filtered by minimum delay) so that "fire at T" means the same
// instant everywhere without trusting that the system clocks agree.
import { performance } from 'node:perf_hooks';
import { setBounded } from '../core/bounded-map.js';
import type { TimeReplyMessage, TimeRequestMessage } from '../protocol/coordination.js';
import { type ClockEstimate, ClockOffsetEstimator } from './clock-offset.js';

/** Exchanges in one burst: enough for the minimum-delay filter to find a quiet one. */
const BURST_EXCHANGES = 8;
/** An estimate older than this is refreshed before it is relied on (crystal drift is ~50 ppm: 3 ms/min). */
const FRESH_FOR_MS = 60_000;
/** One exchange that gets no answer in this long is given up. */
const EXCHANGE_TIMEOUT_MS = 1_000;
/** Peers with an estimate kept at once. */
const MAX_PEERS = 256;

/** This agent's clock: wall time in ms with sub-millisecond resolution. */
export type Clock = () => number;

export const systemClock: Clock = () => performance.timeOrigin + performance.now();

export interface TimeSyncOptions {
  clock: Clock;
  /** Sends a coordination message to a peer (best effort). */
  send(peer: string, message: TimeRequestMessage | TimeReplyMessage): Promise<void>;
}

interface PeerClock {
  readonly estimator: ClockOffsetEstimator;
  syncedAtMs: number;
  burst: Promise<ClockEstimate | undefined> | undefined;
}

export class TimeSync {
  readonly #options: TimeSyncOptions;
  readonly #peers = new Map<string, PeerClock>();
  /** Exchanges in flight, by their t1 (unique per agent: the clock only moves forward within a burst). */
  readonly #waiting = new Map<number, { peer: string; resolve: () => void }>();

  constructor(options: TimeSyncOptions) {
    this.#options = options;
  }

  now(): number {
    return this.#options.clock();
  }

  /** Answers a peer's request: t2 on arrival, t3 just before the reply leaves. */
  onRequest(from: string, request: TimeRequestMessage): void {
    const t2 = this.now();
    void this.#options.send(from, { kind: 'time-reply', t1: request.t1, t2, t3: this.now() }).catch(() => {});
  }

  /** A peer's TIME-REPLY; false when it answers no exchange in flight with that peer (late, or never asked). */
  onReply(from: string, reply: TimeReplyMessage): boolean {
    const t4 = this.now();
    const waiting = this.#waiting.get(reply.t1);
    if (waiting === undefined || waiting.peer !== from) return false;
    this.#waiting.delete(reply.t1);
    this.#peerClock(from).estimator.addExchange(reply.t1, reply.t2, reply.t3, t4);
    waiting.resolve();
    return true;
  }

  /** The current estimate for a peer, refreshed first when it is missing or stale; undefined if it never answers. */
  async estimate(peer: string): Promise<ClockEstimate | undefined> {
    const clock = this.#peerClock(peer);
    const current = clock.estimator.estimate();
    if (current !== undefined && this.now() - clock.syncedAtMs < FRESH_FOR_MS) return current;
    clock.burst ??= this.#burst(peer, clock).finally(() => {
      clock.burst = undefined;
    });
    return clock.burst;
  }

  /** The last estimate without waiting for the network. */
  known(peer: string): ClockEstimate | undefined {
    return this.#peers.get(peer)?.estimator.estimate();
  }

  /** Exchanges one after another (a burst in parallel would queue behind itself and inflate the delays). */
  async #burst(peer: string, clock: PeerClock): Promise<ClockEstimate | undefined> {
    for (let i = 0; i < BURST_EXCHANGES; i++) await this.#exchange(peer);
    clock.syncedAtMs = this.now();
    return clock.estimator.estimate();
  }

  #exchange(peer: string): Promise<void> {
    let t1 = this.now();
    while (this.#waiting.has(t1)) t1 += 0.001;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(t1);
        resolve();
      }, EXCHANGE_TIMEOUT_MS);
      this.#waiting.set(t1, {
        peer,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      this.#options.send(peer, { kind: 'time-request', t1 }).catch(() => {
        clearTimeout(timer);
        this.#waiting.delete(t1);
        resolve();
      });
    });
  }

  #peerClock(peer: string): PeerClock {
    let clock = this.#peers.get(peer);
    if (clock === undefined) {
      clock = { estimator: new ClockOffsetEstimator(), syncedAtMs: 0, burst: undefined };
      setBounded(this.#peers, peer, clock, MAX_PEERS);
    }
    return clock;
  }
}
