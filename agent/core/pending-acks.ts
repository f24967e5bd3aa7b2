// Messages waiting for their acknowledgement, by id: each wait ends exactly once, acknowledged (resolved),
// failed (rejected with the error given), timed out or aborted. The link layer waits for a peer's ACK
// over one link and reliable unicast for an end-to-end ACK through the mesh; both wait here.
import { TimeoutError } from './errors.js';

/** How long a message waits for its acknowledgement unless its sender says otherwise (links and mesh alike). */
export const DEFAULT_ACK_TIMEOUT_MS = 10_000;
/**
 * The agent's own messages of a longer exchange (stream data, transfer control, trust updates) wait longer:
 * the peer may be busy writing to disk, and giving up means starting the exchange over.
 */
export const SYSTEM_ACK_TIMEOUT_MS = 15_000;

export interface AckWait {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** What the wait is for, for the timeout's message: "message to bravo (0123…): no acknowledgement;". */
  describe: () => string;
  /** Runs once, synchronously, however the wait ends (to clear a retransmission timer). */
  onSettled?: () => void;
}

export class PendingAcks<T> {
  readonly #waiting = new Map<number, { readonly value: T; readonly settle: (error?: Error) => void }>();

  get size(): number {
    return this.#waiting.size;
  }

  get(id: number): T | undefined {
    return this.#waiting.get(id)?.value;
  }

  /** What is waiting, in the order the waits began. */
  entries(): [number, T][] {
    return [...this.#waiting].map(([id, { value }]) => [id, value]);
  }

  /**
   * Waits for `settle(id)`. The entry exists as soon as this returns, so the message may be sent after it;
   * an already aborted signal rejects at once and leaves no entry.
   */
  wait(id: number, value: T, options: AckWait): Promise<void> {
    const { signal } = options;
    return new Promise((resolve, reject) => {
      const abortError = (): Error =>
        signal?.reason instanceof Error ? signal.reason : new Error('aborted');
      if (signal?.aborted === true) {
        options.onSettled?.();
        reject(abortError());
        return;
      }
      const onAbort = (): void => settle(abortError());
      const timer = setTimeout(
        () => settle(new TimeoutError(options.describe(), options.timeoutMs)),
        options.timeoutMs,
      );
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#waiting.delete(id);
        options.onSettled?.();
        if (error === undefined) resolve();
        else reject(error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.set(id, { value, settle });
    });
  }

  /** Ends the wait for `id`: acknowledged, or failed with `error`. False when nothing waited for it. */
  settle(id: number, error?: Error): boolean {
    const waiting = this.#waiting.get(id);
    if (waiting === undefined) return false;
    waiting.settle(error);
    return true;
  }

  /** Fails every wait (the agent is stopping). */
  failAll(error: (value: T) => Error): void {
    for (const { value, settle } of [...this.#waiting.values()]) settle(error(value));
  }
}
