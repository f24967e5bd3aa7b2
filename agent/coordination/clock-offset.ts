// How far a peer's clock is from ours, so "run at 12:00:00.000 on every Pi" means the same instant
// everywhere. NTP's method: one request/reply exchange gives an offset whose error is at most half the
// round-trip delay (only the asymmetry of the two legs is unknowable), so of the last few exchanges the one
// with the smallest delay is the most trustworthy (NTP's clock filter). Pure arithmetic on timestamps the
// caller takes; no timers, no I/O.

import { NearmeshError } from '../core/errors.js';

/** NTP's clock filter keeps 8; enough to ride out a burst of queueing, short enough to follow drift. */
export const DEFAULT_CLOCK_WINDOW = 8;
/** A round trip longer than this says a link was stalled, and its offset could be off by seconds. */
export const DEFAULT_MAX_DELAY_MS = 10_000;

export interface ClockSample {
  /** Peer clock minus our clock: add it to our time to get the peer's. */
  readonly offsetMs: number;
  /** Round trip minus the peer's own processing time; the offset is good to within half of it. */
  readonly delayMs: number;
}

export interface ClockEstimate extends ClockSample {
  /** How many samples the window holds (the estimate comes from the best of them). */
  readonly samples: number;
}

export interface ClockOffsetOptions {
  windowSize?: number;
  maxDelayMs?: number;
}

/** Converting between clocks before any sample was accepted: there is nothing to convert with yet. */
export class ClockOffsetUnknownError extends NearmeshError {
  constructor() {
    super('clock-offset-unknown', 'no clock sample from this peer yet, so its clock offset is unknown');
  }
}

/**
 * One exchange: t1 request sent (our clock), t2 request received (peer clock), t3 reply sent (peer clock),
 * t4 reply received (our clock). All in milliseconds, fractions allowed.
 */
export function computeSample(t1: number, t2: number, t3: number, t4: number): ClockSample {
  return { offsetMs: (t2 - t1 + (t3 - t4)) / 2, delayMs: t4 - t1 - (t3 - t2) };
}

/** The offset to one peer, from its most recent samples. Create one per peer. */
export class ClockOffsetEstimator {
  readonly windowSize: number;
  readonly maxDelayMs: number;
  /** Accepted samples, oldest first. */
  readonly #samples: ClockSample[] = [];

  constructor(options: ClockOffsetOptions = {}) {
    this.windowSize = options.windowSize ?? DEFAULT_CLOCK_WINDOW;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    if (!Number.isInteger(this.windowSize) || this.windowSize < 1) {
      throw new RangeError(`clock window must be a positive integer, got ${this.windowSize}`);
    }
    if (!(this.maxDelayMs > 0)) throw new RangeError(`max delay must be positive, got ${this.maxDelayMs}`);
  }

  /** Records one exchange's four timestamps; false (and nothing recorded) when they cannot be right. */
  addExchange(t1: number, t2: number, t3: number, t4: number): boolean {
    if (![t1, t2, t3, t4].every(Number.isFinite) || t4 < t1 || t3 < t2) return false;
    return this.addSample(computeSample(t1, t2, t3, t4));
  }

  /**
   * Records a computed sample; false when it is rejected: a negative delay is impossible on a sane pair of
   * clocks, and a delay above maxDelayMs bounds the offset too loosely to be worth keeping.
   */
  addSample(sample: ClockSample): boolean {
    const { offsetMs, delayMs } = sample;
    if (!Number.isFinite(offsetMs) || !Number.isFinite(delayMs) || delayMs < 0 || delayMs > this.maxDelayMs) {
      return false;
    }
    this.#samples.push({ offsetMs, delayMs });
    if (this.#samples.length > this.windowSize) this.#samples.shift();
    return true;
  }

  /** The minimum-delay sample of the window (the newest on a tie), or undefined before any was accepted. */
  estimate(): ClockEstimate | undefined {
    let best: ClockSample | undefined;
    for (const sample of this.#samples) {
      if (best === undefined || sample.delayMs <= best.delayMs) best = sample;
    }
    return best && { offsetMs: best.offsetMs, delayMs: best.delayMs, samples: this.#samples.length };
  }

  /** Our clock reading as the peer's clock reads at the same instant. */
  toPeerTime(localMs: number): number {
    return localMs + this.#offset();
  }

  /** A peer clock reading (e.g. a scheduled start) as our clock reads at the same instant. */
  toLocalTime(peerMs: number): number {
    return peerMs - this.#offset();
  }

  /** Forgets every sample, e.g. when the peer restarted or its clock was stepped. */
  reset(): void {
    this.#samples.length = 0;
  }

  #offset(): number {
    const estimate = this.estimate();
    if (estimate === undefined) throw new ClockOffsetUnknownError();
    return estimate.offsetMs;
  }
}
