// Next hops that lost messages (PROTOCOL.md §13.3): a reliable send that needed its flooded retransmissions
// to get through says its route may run through an agent that swallows traffic. Two such outcomes in a row
// for one (destination, next hop) and that next hop is avoided for that destination for a while, so the
// next shortest path, or a flood, carries the traffic. One outcome alone can be an ordinary lost frame.
import { setBounded } from '../core/bounded-map.js';

/** Failures in a row that make a next hop avoided. */
const FAILURES_TO_PENALISE = 2;
export const ROUTE_PENALTY_MS = 120_000;
/** Destinations with failures or penalties tracked at once; the oldest entry goes first. */
const MAX_TRACKED = 1_024;

interface HopRecord {
  failuresInRow: number;
  avoidedUntilMs: number;
}

interface DestinationRecord {
  readonly hops: Map<string, HopRecord>;
  /**
   * The next hops avoided now, built when a penalty starts or expires, not per message: routing asks for
   * every message, and keeps its routes around an avoided set for as long as the set is the same object.
   */
  avoided: ReadonlySet<string> | undefined;
  /** Until when `avoided` holds (the first of its penalties to expire); -Infinity: to be rebuilt. */
  validUntilMs: number;
}

export class RoutePenalties {
  readonly #byDestination = new Map<string, DestinationRecord>();

  /** Records a failure; true when it makes the next hop avoided now. */
  failed(destination: string, nextHop: string, nowMs: number): boolean {
    let tracked = this.#byDestination.get(destination);
    if (tracked === undefined) {
      tracked = { hops: new Map(), avoided: undefined, validUntilMs: Number.POSITIVE_INFINITY };
      setBounded(this.#byDestination, destination, tracked, MAX_TRACKED);
    }
    const record = tracked.hops.get(nextHop) ?? { failuresInRow: 0, avoidedUntilMs: 0 };
    tracked.hops.set(nextHop, record);
    record.failuresInRow++;
    if (record.failuresInRow < FAILURES_TO_PENALISE) return false;
    record.failuresInRow = 0;
    record.avoidedUntilMs = nowMs + ROUTE_PENALTY_MS;
    tracked.validUntilMs = Number.NEGATIVE_INFINITY;
    return true;
  }

  succeeded(destination: string, nextHop: string): void {
    const tracked = this.#byDestination.get(destination);
    const record = tracked?.hops.get(nextHop);
    if (tracked === undefined || record === undefined) return;
    record.failuresInRow = 0;
    // Nothing left to remember about a next hop that is not avoided (an expired one goes at the rebuild).
    if (tracked.avoided?.has(nextHop) === true) return;
    tracked.hops.delete(nextHop);
    if (tracked.hops.size === 0) this.#byDestination.delete(destination);
  }

  /** The next hops avoided for `destination` now (undefined when none); the same set until it changes. */
  avoided(destination: string, nowMs: number): ReadonlySet<string> | undefined {
    const tracked = this.#byDestination.get(destination);
    if (tracked === undefined) return undefined;
    if (nowMs < tracked.validUntilMs) return tracked.avoided;
    const avoided = new Set<string>();
    let validUntilMs = Number.POSITIVE_INFINITY;
    for (const [nextHop, record] of tracked.hops) {
      if (record.avoidedUntilMs > nowMs) {
        avoided.add(nextHop);
        validUntilMs = Math.min(validUntilMs, record.avoidedUntilMs);
      } else if (record.failuresInRow === 0) {
        tracked.hops.delete(nextHop);
      }
    }
    if (tracked.hops.size === 0) {
      this.#byDestination.delete(destination);
      return undefined;
    }
    tracked.avoided = avoided.size === 0 ? undefined : avoided;
    tracked.validUntilMs = validUntilMs;
    return tracked.avoided;
  }
}
