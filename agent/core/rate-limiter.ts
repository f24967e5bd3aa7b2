// Lets an event through at most once per interval per key: a peer with the wrong mesh key that
// retries every second must not fill the journal.
import { setBounded } from './bounded-map.js';

export class RateLimiter {
  readonly #lastMs = new Map<string, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly maxKeys = 1024,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `key` has not been let through within the interval. */
  allow(key: string): boolean {
    const nowMs = this.now();
    const last = this.#lastMs.get(key);
    if (last !== undefined && nowMs - last < this.intervalMs) return false;
    // Bounded memory under a flood of distinct keys: the oldest entry is forgotten.
    setBounded(this.#lastMs, key, nowMs, this.maxKeys);
    return true;
  }
}
