// Lets an event through at most once per interval per key: a peer with the wrong mesh key that
// retries every second must not fill the journal.

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
    // Bounded memory under a flood of distinct keys: forget the oldest entry.
    if (this.#lastMs.size >= this.maxKeys && last === undefined) {
      const oldest = this.#lastMs.keys().next().value;
      if (oldest !== undefined) this.#lastMs.delete(oldest);
    }
    this.#lastMs.delete(key);
    this.#lastMs.set(key, nowMs);
    return true;
  }
}
