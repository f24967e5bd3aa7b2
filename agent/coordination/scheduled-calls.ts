// Calls waiting for their instant (`--in`, `--at`, up to a day ahead) hold memory and a timer until they
// fire, so they are bounded: per caller, so that one peer cannot take every place, and across the agent.

export interface ScheduledLimits {
  /** Calls waiting for their instant, from every caller together. */
  readonly total: number;
  /** Calls waiting for their instant from one caller. */
  readonly perCaller: number;
}

export class ScheduledCalls {
  readonly #limits: ScheduledLimits;
  /** Waiting calls by caller; a caller with none has no entry, so this holds at most `total` entries. */
  readonly #byCaller = new Map<string, number>();
  #total = 0;

  constructor(limits: ScheduledLimits) {
    this.#limits = limits;
  }

  /** Takes a place for a call from `caller`; the reason it may not have one, or undefined when it took it. */
  reserve(caller: string): string | undefined {
    const mine = this.#byCaller.get(caller) ?? 0;
    if (mine >= this.#limits.perCaller) {
      return `this agent holds ${this.#limits.perCaller} scheduled calls from the caller already`;
    }
    if (this.#total >= this.#limits.total) {
      return `this agent holds ${this.#limits.total} scheduled calls already`;
    }
    this.#byCaller.set(caller, mine + 1);
    this.#total++;
    return undefined;
  }

  /** Gives back a place `reserve` took: the call fired or failed. */
  release(caller: string): void {
    const mine = this.#byCaller.get(caller) ?? 0;
    if (mine === 0) return;
    if (mine === 1) this.#byCaller.delete(caller);
    else this.#byCaller.set(caller, mine - 1);
    this.#total--;
  }
}
