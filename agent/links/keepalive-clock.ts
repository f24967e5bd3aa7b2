// One timer for every link's keep-alive: each connection is ticked from it rather than from a timer of its
// own, so an agent with 50 idle peers wakes twice a second, not a hundred times. The clock runs at the finest
// period a registered connection asks for and stops when none is left.

export interface KeepaliveTicked {
  /** Checks silence and sends a PING when one is due; `nowMs` is Date.now() of this tick. */
  tick(nowMs: number): void;
}

export class KeepaliveClock {
  readonly #members = new Set<KeepaliveTicked>();
  #timer: NodeJS.Timeout | undefined;
  #periodMs = Number.POSITIVE_INFINITY;

  /** Ticks `member` at least every `periodMs` until `remove`. */
  add(member: KeepaliveTicked, periodMs: number): void {
    this.#members.add(member);
    if (periodMs < this.#periodMs) this.#restart(periodMs);
  }

  remove(member: KeepaliveTicked): void {
    this.#members.delete(member);
    if (this.#members.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#periodMs = Number.POSITIVE_INFINITY;
  }

  #restart(periodMs: number): void {
    clearInterval(this.#timer);
    this.#periodMs = periodMs;
    this.#timer = setInterval(() => {
      const nowMs = Date.now();
      // A member that closes during its tick removes itself: iterate over a copy.
      for (const member of [...this.#members]) member.tick(nowMs);
    }, periodMs);
    this.#timer.unref();
  }
}

/** The clock every link of this process shares. */
export const sharedKeepaliveClock = new KeepaliveClock();
