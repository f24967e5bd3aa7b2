// A bounded rate limit for warnings about what other devices send: each key (an advertiser's address, an mDNS
// instance) is reported at most once per interval, so a device that re-announces forever is said once, not at
// every rescan. Used by the BLE central and the mDNS resolver.

/** An advertiser or instance we cannot use (an agent of an older protocol version, bad data): said once per this. */
export const ADVERTISER_WARNING_INTERVAL_MS = 60 * 60_000;

/**
 * Whether a key may be reported now: at most once per interval each, in a table of at most maxKeys; what a full
 * table keeps out is counted in `dropped`, not reported.
 */
export class OncePerInterval {
  readonly #lastMs = new Map<string, number>();
  dropped = 0;

  constructor(
    readonly intervalMs: number,
    readonly maxKeys: number,
  ) {}

  allow(key: string, nowMs: number): boolean {
    const lastMs = this.#lastMs.get(key);
    if (lastMs !== undefined && nowMs - lastMs < this.intervalMs) return false;
    if (lastMs === undefined && this.#lastMs.size >= this.maxKeys) {
      for (const [other, otherMs] of this.#lastMs) {
        if (nowMs - otherMs >= this.intervalMs) this.#lastMs.delete(other);
      }
      if (this.#lastMs.size >= this.maxKeys) {
        this.dropped++;
        return false;
      }
    }
    this.#lastMs.set(key, nowMs);
    return true;
  }
}
