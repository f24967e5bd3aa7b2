// Work done for many sources (client sockets, say) in one event-loop turn, shared by all of them. Past the
// budget a source stops and waits for a later turn, so that many clients sending big packets at once take
// turns instead of holding the loop (and every timer and link behind it) for the sum of their work.

import { performance } from 'node:perf_hooks';

/** Milliseconds of work per turn before sources wait: small against the 50 ms no operation may block. */
export const DEFAULT_TURN_BUDGET_MS = 10;

export class TurnBudget {
  /** When this turn's work started; undefined before any work in this turn. */
  #startedAt: number | undefined;
  #turnEnd: NodeJS.Immediate | undefined;
  readonly #waiting: Array<() => void> = [];

  constructor(private readonly budgetMs: number = DEFAULT_TURN_BUDGET_MS) {}

  /** Sources waiting for a later turn. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** True while this turn's budget lasts (the first call of a turn starts its clock). */
  available(): boolean {
    if (this.#startedAt === undefined) {
      this.#startedAt = performance.now();
      // setImmediate runs after this turn's I/O callbacks, and one scheduled from it in the next turn.
      this.#turnEnd ??= setImmediate(() => this.#endTurn());
      return true;
    }
    return !this.#spent();
  }

  /** Calls `resume` in a later turn, after the sources that waited before it. */
  wait(resume: () => void): void {
    this.#waiting.push(resume);
    this.#turnEnd ??= setImmediate(() => this.#endTurn());
  }

  /**
   * For a reader past the budget: the returned function stops `stream` reading until a later turn, when
   * `work` goes on (unless `isClosed`), and starts it reading again unless `work` ran out once more.
   * Calling it while already waiting does nothing.
   */
  pausingWaiter(
    stream: { pause(): unknown; resume(): unknown },
    work: () => void,
    isClosed: () => boolean,
  ): () => void {
    let waiting = false;
    const wait = (): void => {
      if (waiting) return;
      waiting = true;
      stream.pause();
      this.wait(() => {
        waiting = false;
        if (isClosed()) return;
        work();
        if (!waiting) stream.resume();
      });
    };
    return wait;
  }

  /** Forgets the waiting sources (their owner is closing). */
  clear(): void {
    this.#waiting.length = 0;
    if (this.#turnEnd !== undefined) clearImmediate(this.#turnEnd);
    this.#turnEnd = undefined;
    this.#startedAt = undefined;
  }

  #endTurn(): void {
    this.#turnEnd = undefined;
    this.#startedAt = undefined;
    // Only those waiting now: a source that runs out again waits behind them for the next turn.
    const resumed = this.#waiting.splice(0, this.#waiting.length);
    for (let i = 0; i < resumed.length; i++) {
      if (this.#spent()) {
        // available() started this turn's clock, and with it the next turn's end.
        this.#waiting.unshift(...resumed.slice(i));
        return;
      }
      (resumed[i] as () => void)();
    }
  }

  #spent(): boolean {
    return this.#startedAt !== undefined && performance.now() - this.#startedAt >= this.budgetMs;
  }
}
