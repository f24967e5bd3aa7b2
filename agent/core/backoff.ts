// Exponential backoff with full jitter for re-dialling: agents that lose a peer at the same moment
// must not retry in lock step.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  random?: () => number;
}

export class Backoff {
  #attempt = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** The delay before the next attempt: uniform in [ceiling/2, ceiling], ceiling doubling to maxMs. */
  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    const random = this.options.random ?? Math.random;
    return Math.round(ceiling / 2 + (random() * ceiling) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
