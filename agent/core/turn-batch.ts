// Items gathered during one turn of the event loop and handed over together at its end: setImmediate runs
// after the turn's I/O callbacks, so writes that many sockets' data cause at once cost one commit (one fsync)
// instead of one each. Bounded: once `max` items wait they are handed over at once.

export interface TurnBatchOptions<T> {
  /** Items waiting at most; the one that reaches it hands the batch over at once. */
  max: number;
  /** Takes the items, in the order they were added. */
  write: (items: readonly T[]) => void;
  /** What `write` threw; its items are not handed over again. */
  onError: (error: unknown) => void;
}

export class TurnBatch<T> {
  #items: T[] = [];
  #turnEnd: NodeJS.Immediate | undefined;

  constructor(private readonly options: TurnBatchOptions<T>) {
    if (!Number.isInteger(options.max) || options.max < 1)
      throw new RangeError('max must be a positive integer');
  }

  /** Items waiting for the end of the turn. */
  get size(): number {
    return this.#items.length;
  }

  add(item: T): void {
    this.#items.push(item);
    if (this.#items.length >= this.options.max) this.flush();
    else this.#turnEnd ??= setImmediate(() => this.flush());
  }

  /** Hands over what waits now (before a write that must come after it, or a close). */
  flush(): void {
    if (this.#turnEnd !== undefined) {
      clearImmediate(this.#turnEnd);
      this.#turnEnd = undefined;
    }
    if (this.#items.length === 0) return;
    const items = this.#items;
    this.#items = [];
    try {
      this.options.write(items);
    } catch (error) {
      this.options.onError(error);
    }
  }
}
