// A byte total shared by many holders (connections, sessions) and bounded: each holder takes what it
// adds and gives back what it lets go.

export class ByteBudget {
  #used = 0;

  constructor(readonly limit: number) {}

  /** Takes `bytes` when they fit under the limit; false, taking nothing, when they do not. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}
