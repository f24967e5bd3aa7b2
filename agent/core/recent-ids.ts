// A bounded memory of recently delivered message ids from one peer, so a message re-sent on a new
// connection (after a duplicate-link tie-break or a reconnect) is acknowledged but delivered once.

export class RecentIds {
  readonly #ids = new Set<number>();

  constructor(private readonly capacity = 4096) {}

  /** Records `id`; false when it was already there. */
  add(id: number): boolean {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.capacity) {
      const oldest = this.#ids.values().next().value;
      if (oldest !== undefined) this.#ids.delete(oldest);
    }
    return true;
  }
}
