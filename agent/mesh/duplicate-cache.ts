// Which routed messages this agent has already handled, by (source, type, id): a flood reaches every agent
// once per path, and only the first copy may be delivered or forwarded. Bounded twice over: entries leave
// after a time window (so a source's deliberate retransmission passes again) and the oldest leave first
// past a fixed count, so memory stays flat under any load, a hostile flood included.

export const DEFAULT_DUPLICATE_WINDOW_MS = 2_000;
/** At 1,000 messages/s a 2 s window holds 2,000 keys; the cap leaves room for bursts. */
export const DEFAULT_DUPLICATE_CAPACITY = 16_384;

export interface DuplicateCacheOptions {
  windowMs?: number;
  capacity?: number;
}

export class DuplicateCache {
  /** Each key seen, with the most hops any of its copies had left. */
  readonly #seen = new Map<string, number>();
  // Keys in the order they came, with when, in a ring that grows up to `capacity`: the oldest is always at
  // `#head`. (Walking the Set for the oldest would cross every deleted slot at its front again on each call.)
  readonly #order: string[] = [];
  readonly #seenAtMs: number[] = [];
  #head = 0;
  readonly windowMs: number;
  readonly capacity: number;

  constructor(options: DuplicateCacheOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_DUPLICATE_WINDOW_MS;
    this.capacity = options.capacity ?? DEFAULT_DUPLICATE_CAPACITY;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) {
      throw new RangeError(`duplicate cache capacity ${this.capacity} is not a positive integer`);
    }
  }

  get size(): number {
    return this.#seen.size;
  }

  /**
   * Records the message; false when it was seen within the window (a duplicate). `variant` tells apart
   * messages that share (source, type, id) but are not copies of each other (a forgery and the original).
   */
  add(source: string, typeCode: number, id: number, nowMs: number, variant = '', hopsLeft = 0): boolean {
    this.#expire(nowMs);
    const key = cacheKey(source, typeCode, id, variant);
    if (this.#seen.has(key)) return false;
    if (this.#seen.size >= this.capacity) this.#dropOldest();
    const slot = (this.#head + this.#seen.size) % this.capacity;
    this.#order[slot] = key;
    this.#seenAtMs[slot] = nowMs;
    this.#seen.set(key, hopsLeft);
    return true;
  }

  /**
   * For a duplicate: true when this copy has more hops left than every copy before it (and remembers that). A
   * flood's first copy may come the long way round with its hop budget nearly spent; the copy that came the
   * short way must then go on where the first could not, or agents at the edge of the budget never get it.
   */
  hasMoreHops(source: string, typeCode: number, id: number, variant: string, hopsLeft: number): boolean {
    const key = cacheKey(source, typeCode, id, variant);
    const most = this.#seen.get(key);
    if (most === undefined || hopsLeft <= most) return false;
    this.#seen.set(key, hopsLeft);
    return true;
  }

  #expire(nowMs: number): void {
    while (this.#seen.size > 0 && nowMs - (this.#seenAtMs[this.#head] as number) >= this.windowMs) {
      this.#dropOldest();
    }
  }

  #dropOldest(): void {
    this.#seen.delete(this.#order[this.#head] as string);
    this.#head = (this.#head + 1) % this.capacity;
  }
}

function cacheKey(source: string, typeCode: number, id: number, variant: string): string {
  return `${source}${typeCode}:${id}:${variant}`;
}
