// The one way tests wait for something to happen: poll a condition until it holds, or fail naming what was
// awaited. Use it instead of a fixed sleep: a test then waits exactly as long as the system needs, and a
// system that never gets there fails with a message instead of passing by luck or hanging.
//
// It keeps real time under vi.useFakeTimers() (the timer and clock it uses are taken at import), so a test
// that fakes the system's timers can still wait for real I/O.

const realSetTimeout = globalThis.setTimeout;
const realNow = Date.now;

export interface UntilOptions {
  /** Give up after this long (default 15 s, under the 30 s test timeout, so the reason is what fails). */
  timeoutMs?: number;
  /**
   * Pause between checks (default 10 ms). A check that takes longer than this (one that runs a CLI command,
   * say) is followed by a pause as long as it took, so polling never keeps a core busy.
   */
  intervalMs?: number;
}

/** What `until` returns: the condition's value, known not to be falsy. */
export type Truthy<T> = Exclude<Awaited<T>, false | 0 | 0n | '' | null | undefined>;

/**
 * Checks `condition` (sync or async) until it returns a truthy value, and returns that value. Fails with
 * "timed out after N ms waiting for <what>" when it does not within `timeoutMs`; `what` may be a function,
 * called only then, to tell what state things were in. An error the condition throws is not retried: it
 * fails the wait at once (a child that exited, say, is not going to answer later).
 */
export async function until<T>(
  what: string | (() => string),
  condition: () => T,
  options: UntilOptions = {},
): Promise<Truthy<T>> {
  const { timeoutMs = 15_000, intervalMs = 10 } = options;
  const startedMs = realNow();
  for (;;) {
    const checkedAtMs = realNow();
    const value = await condition();
    if (value) return value as Truthy<T>;
    const nowMs = realNow();
    const leftMs = startedMs + timeoutMs - nowMs;
    if (leftMs <= 0) {
      const description = typeof what === 'string' ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    }
    const pauseMs = Math.min(leftMs, Math.max(intervalMs, nowMs - checkedAtMs));
    await new Promise((resolve) => realSetTimeout(resolve, pauseMs));
  }
}

/** `promise`, or an error naming `what` once `timeoutMs` passed: a wait that says what it waited for. */
export async function within<T>(
  promise: Promise<T>,
  what: string | (() => string),
  timeoutMs = 15_000,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const described = typeof what === 'string' ? what : what();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${described}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
