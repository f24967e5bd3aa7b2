// Named event counters (frames dropped, decode errors, handshakes refused ...) that `status` reports.
// Counting instead of logging is how hostile or noisy input stays visible without flooding the log.

export class Counters {
  readonly #values = new Map<string, number>();

  increment(name: string, by = 1): void {
    this.#values.set(name, (this.#values.get(name) ?? 0) + by);
  }

  get(name: string): number {
    return this.#values.get(name) ?? 0;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#values.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
}
