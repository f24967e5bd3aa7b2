// Next hops that lost messages (PROTOCOL.md §13.3): a reliable send that needed its flooded retransmissions
// to get through says its route may run through an agent that swallows traffic. Two such outcomes in a row
// for one (destination, next hop) and that next hop is avoided for that destination for a while, so the
// next shortest path, or a flood, carries the traffic. One outcome alone can be an ordinary lost frame.
import { setBounded } from '../ops/bounded-map.js';

/** Failures in a row that make a next hop avoided. */
const FAILURES_TO_PENALISE = 2;
export const ROUTE_PENALTY_MS = 120_000;
/** Destinations with failures or penalties tracked at once; the oldest entry goes first. */
const MAX_TRACKED = 1_024;

interface HopRecord {
  failuresInRow: number;
  avoidedUntilMs: number;
}

export class RoutePenalties {
  readonly #byDestination = new Map<string, Map<string, HopRecord>>();

  /** Records a failure; true when it makes the next hop avoided now. */
  failed(destination: string, nextHop: string, nowMs: number): boolean {
    let hops = this.#byDestination.get(destination);
    if (hops === undefined) {
      hops = new Map();
      setBounded(this.#byDestination, destination, hops, MAX_TRACKED);
    }
    const record = hops.get(nextHop) ?? { failuresInRow: 0, avoidedUntilMs: 0 };
    hops.set(nextHop, record);
    record.failuresInRow++;
    if (record.failuresInRow < FAILURES_TO_PENALISE) return false;
    record.failuresInRow = 0;
    record.avoidedUntilMs = nowMs + ROUTE_PENALTY_MS;
    return true;
  }

  succeeded(destination: string, nextHop: string): void {
    const record = this.#byDestination.get(destination)?.get(nextHop);
    if (record !== undefined) record.failuresInRow = 0;
  }

  /** The next hops avoided for `destination` now (undefined when none). */
  avoided(destination: string, nowMs: number): ReadonlySet<string> | undefined {
    const hops = this.#byDestination.get(destination);
    if (hops === undefined) return undefined;
    const avoided = new Set<string>();
    for (const [nextHop, record] of hops) {
      if (record.avoidedUntilMs > nowMs) avoided.add(nextHop);
      else if (record.failuresInRow === 0) hops.delete(nextHop);
    }
    if (hops.size === 0) this.#byDestination.delete(destination);
    return avoided.size === 0 ? undefined : avoided;
  }
}
