// Which routed messages this agent has already handled, by (source, type, id): a flood reaches every agent
// once per path, and only the first copy may be delivered or forwarded. Bounded twice over: entries leave
// after a time window (so a source's deliberate retransmission passes again) and the oldest leave first
// past a fixed count, so memory stays flat under any load, a hostile flood included.
import { setBounded } from '../ops/bounded-map.js';

export const DEFAULT_DUPLICATE_WINDOW_MS = 2_000;
/** At 1,000 messages/s a 2 s window holds 2,000 keys; the cap leaves room for bursts. */
export const DEFAULT_DUPLICATE_CAPACITY = 16_384;

export interface DuplicateCacheOptions {
  windowMs?: number;
  capacity?: number;
}

export class DuplicateCache {
  /** Key → time first seen; Map order is insertion order, so the oldest entry is always first. */
  readonly #seenAtMs = new Map<string, number>();
  readonly windowMs: number;
  readonly capacity: number;

  constructor(options: DuplicateCacheOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
    this.capacity = options.capacity ?? DEFAULT_DUPLICATE_CAPACITY;
  }

  get size(): number {
    return this.#seenAtMs.size;
  }

  /**
   * Records the message; false when it was seen within the window (a duplicate). `variant` tells apart
   * messages that share (source, type, id) but are not copies of each other (a forgery and the original).
   */
  add(source: string, typeCode: number, id: number, nowMs: number, variant = ''): boolean {
    this.#expire(nowMs);
    const key = `${source}${typeCode}:${id}:${variant}`;
    if (this.#seenAtMs.has(key)) return false;
    setBounded(this.#seenAtMs, key, nowMs, this.capacity);
    return true;
  }

  #expire(nowMs: number): void {
    for (const [key, seenAtMs] of this.#seenAtMs) {
      if (nowMs - seenAtMs < this.windowMs) return;
      this.#seenAtMs.delete(key);
    }
  }
}
