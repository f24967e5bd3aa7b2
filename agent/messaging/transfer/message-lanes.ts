// One lane per transfer for the receiver: the messages of a transfer (and the receiver's own work on it)
// run one after another, in order, while different transfers go on side by side. A peer that queues more
// than its share on a lane (too many messages, or too many chunk bytes) has the excess dropped as a flood.
import type { Counters } from '../../core/counters.js';

export interface MessageLanesOptions {
  /** A peer's messages queued on one lane before more are dropped. */
  maxQueued: number;
  /** Chunk bytes queued on one lane before more are dropped. */
  maxQueuedBytes: number;
  /** Where drops ('flood') and work that threw ('internal-error') are counted. */
  counters: Counters;
}

interface Lane {
  tail: Promise<void>;
  depth: number;
  /** Chunk bytes queued. */
  bytes: number;
}

export class MessageLanes {
  readonly #maxQueued: number;
  readonly #maxQueuedBytes: number;
  readonly #counters: Counters;
  readonly #lanes = new Map<string, Lane>();

  constructor(options: MessageLanesOptions) {
    this.#maxQueued = options.maxQueued;
    this.#maxQueuedBytes = options.maxQueuedBytes;
    this.#counters = options.counters;
  }

  /** Whether work of the transfer is queued or running. */
  has(transferId: string): boolean {
    return this.#lanes.has(transferId);
  }

  /** Settles when the work queued for the transfer so far has run; undefined when there is none. */
  tail(transferId: string): Promise<void> | undefined {
    return this.#lanes.get(transferId)?.tail;
  }

  /** Settles when the work queued on every lane so far has run. */
  async drain(): Promise<void> {
    await Promise.all([...this.#lanes.values()].map((lane) => lane.tail));
  }

  /**
   * Runs `work` after everything queued for the transfer. A peer's message (`bytes` given: what it holds)
   * is dropped as a flood when too many messages or bytes are queued already; our own work never is.
   */
  run(transferId: string, work: () => Promise<void>, bytes: number | undefined): Promise<void> {
    let lane = this.#lanes.get(transferId);
    if (lane === undefined) {
      lane = { tail: Promise.resolve(), depth: 0, bytes: 0 };
      this.#lanes.set(transferId, lane);
    }
    const held = bytes ?? 0;
    if (bytes !== undefined && (lane.depth >= this.#maxQueued || lane.bytes + held > this.#maxQueuedBytes)) {
      this.#counters.increment('flood');
      return Promise.resolve();
    }
    lane.depth += 1;
    lane.bytes += held;
    const current = lane;
    const run = current.tail
      .then(work)
      .catch(() => this.#counters.increment('internal-error'))
      .finally(() => {
        current.depth -= 1;
        current.bytes -= held;
        if (current.depth === 0 && this.#lanes.get(transferId) === current) this.#lanes.delete(transferId);
      });
    current.tail = run;
    return run;
  }
}
